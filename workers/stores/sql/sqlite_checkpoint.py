"""Checkpoints of a SQLite write-ahead log from a thread of their own.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit
copies the log into the database and waits for two ``fsync``s, tens of milliseconds during which
the thread processing commands stands still (the chat benchmark's p99 was these pauses). Here
commits never checkpoint (``wal_autocheckpoint=0``); this thread runs a ``PASSIVE`` checkpoint,
which never blocks a writer or a reader, every ``interval`` seconds, and ``journal_size_limit``
keeps the log file from staying at its high-water mark once it starts over.

Under a steady stream of commits the log only starts over in a lull: a write starts it over only
if its transaction began after a checkpoint had copied all of it, and the next transaction has
always begun by then. The chat benchmark grew it to hundreds of megabytes, and the commit that
finally started it over truncated the file to ``journal_size_limit``: a stall of the commands
process of most of a second (the file system freeing the blocks). So once a checkpoint finds more
than ``FINISH_ABOVE_FRAMES`` in the log, the writer of this process runs one more before its next
batch (``finish_now``, asked by ``batch``): between two of its own transactions it copies only what
came in since, a few milliseconds, and the batch then starts the log over, well below the size
limit. (Holding the writer back from this thread instead starved it: a writer with batches back to
back takes its lock straight back.)
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["JOURNAL_SIZE_LIMIT", "Checkpointer"]

log = logging.getLogger(__name__)

FINISH_ABOVE_FRAMES = 4096
"""Log frames (pages, 16 MiB) past which this process's writer finishes the log between two batches."""

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
        self._finish_wanted = False
        self.finished = 0
        """Checkpoints the writer ran between two batches to finish the log."""

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

    def finish_now(self) -> bool:
        """Whether this process's writer should checkpoint the log before its next batch (asked
        once: it says so when a checkpoint left a long log behind)."""
        if not self._finish_wanted:
            return False
        self._finish_wanted = False
        self.finished += 1
        return True

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, timeout=5, isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("no SQLite checkpoints for %s: %s", self._path, exc)
            return
        try:
            while True:
                stopping = self._stopped.wait(self._interval)
                if self._checkpoint(conn) > FINISH_ABOVE_FRAMES:
                    self._finish_wanted = True  # the writer copies the rest before its next batch
                if stopping:
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> int:
        """A PASSIVE checkpoint; the frames in the log (pages written since it last started over)."""
        try:
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # locked by another checkpoint, a file gone: next time
            log.debug("SQLite checkpoint of %s skipped: %s", self._path, exc)
            return 0
        if row is None or row[1] < 0:  # not in WAL mode
            return 0
        if row[2] > 0:
            self.checkpoints += 1
        return int(row[1])
