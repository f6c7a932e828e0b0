"""Checkpoints of a SQLite write-ahead log from a thread of their own.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit
copies the log into the database and waits for two ``fsync``s, tens of milliseconds during which
the thread processing commands stands still (the chat benchmark's p99 was these pauses). Here
commits never checkpoint (``wal_autocheckpoint=0``); this thread runs a ``PASSIVE`` checkpoint,
which never blocks a writer or a reader, every ``interval`` seconds, and ``journal_size_limit``
keeps the log file from staying at its high-water mark once it starts over.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["JOURNAL_SIZE_LIMIT", "Checkpointer"]

log = logging.getLogger(__name__)

JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes the log file is cut back to once it is reset (SQLite's ``journal_size_limit``)."""


class Checkpointer:
    """Checkpoints the database file at ``path`` until :meth:`stop` (which checkpoints once more)."""

    def __init__(self, path: str, *, interval: float = 0.5) -> None:
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        """Checkpoints that copied at least one page (for tests and curiosity)."""

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stopped.clear()
                self._thread = threading.Thread(
                    target=self._run, name="mqchat-sqlite-checkpoint", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._stopped.set()
                thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=5, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("no SQLite checkpoints for %s: %s", self._path, exc)
            return
        try:
            while True:
                stopping = self._stopped.wait(self._interval)
                self._checkpoint(conn)
                if stopping:
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # locked by another checkpoint, a file gone: next time
            log.debug("SQLite checkpoint of %s skipped: %s", self._path, exc)
            return
        if row is not None and row[2] > 0:
            self.checkpoints += 1
