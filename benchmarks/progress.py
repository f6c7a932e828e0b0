"""The progress display: one line rewritten in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(
        self, stream: TextIO | None = None, *, quiet: bool = False, plain_interval: float = 2.0
    ) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._quiet = quiet
        self._interval = plain_interval
        self._last_plain = 0.0
        self._open_line = False

    def update(self, text: str) -> None:
        """Show ``text`` as the current state (rate-limited to one line per interval off a terminal)."""
        if self._quiet:
            return
        if self._tty:
            self._stream.write("\r\x1b[2K" + text)
            self._open_line = True
        else:
            now = time.monotonic()
            if now - self._last_plain < self._interval:
                return
            self._last_plain = now
            self._stream.write(text + "\n")
        self._stream.flush()

    def note(self, text: str) -> None:
        """A line that stays (a phase ended, a warning)."""
        if self._quiet:
            return
        if self._open_line:
            self._stream.write("\r\x1b[2K")
            self._open_line = False
        self._stream.write(text + "\n")
        self._stream.flush()
        self._last_plain = 0.0

    def close(self) -> None:
        if self._open_line:
            self._stream.write("\n")
            self._stream.flush()
            self._open_line = False
