"""Persist the inbox cursor between runs of an app, so a restart resumes without duplicates.

The file holds ``{"cursor": N}``. It is replaced atomically (write a temporary file next to it,
then ``os.replace``), so a crash leaves either the old or the new cursor, never a torn file. It is
not fsynced: it survives the app dying, not necessarily the machine losing power (then the
cursor may go back a little and some events are delivered again).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

__all__ = ["StateFile"]

logger = logging.getLogger(__name__)


class StateFile:
    """The cursor file of one client. :meth:`save` is thread-safe and never moves the cursor back."""

    __slots__ = ("_lock", "_path", "_saved")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._saved: int | None = None

    @property
    def path(self) -> Path:
        return self._path

    def load(self) -> int:
        """The saved cursor; 0 when the file does not exist. Raises ValueError when it is unreadable."""
        try:
            text = self._path.read_text("utf-8")
        except FileNotFoundError:
            return 0
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"state file {self._path} is not JSON: {exc}") from exc
        cursor = data.get("cursor") if isinstance(data, dict) else None
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise ValueError(f'state file {self._path} must hold {{"cursor": <integer >= 0>}}')
        with self._lock:
            self._saved = cursor
        return cursor

    def save(self, cursor: int) -> None:
        """Write ``cursor`` atomically, unless it is not beyond what this object last saved or loaded."""
        with self._lock:
            if self._saved is not None and cursor <= self._saved:
                return
            tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"cursor": cursor}), "utf-8")
            os.replace(tmp, self._path)
            self._saved = cursor

    def keep(self, cursor: int, *, client_id: str) -> None:
        """:meth:`save`, logging (not raising) a failure: a client goes on without its state file."""
        try:
            self.save(cursor)
        except OSError:
            logger.exception("%s: cannot save the cursor to %s", client_id, self._path)
