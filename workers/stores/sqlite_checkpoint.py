"""Checkpoints of a SQLite write-ahead log from a thread of their own.

By default SQLite checkpoints inside the commit that takes the log past 1,000 pages: that commit
copies the log into the database and waits for two ``fsync``s, tens of milliseconds during which
the thread processing commands stands still (the chat benchmark's p99 was these pauses). Here
commits never checkpoint (``wal_autocheckpoint=0``); this thread runs a ``PASSIVE`` checkpoint,
which never blocks a writer or a reader, every ``interval`` seconds, and ``journal_size_limit``
keeps the log file from staying at its high-water mark once it starts over.

Under a steady stream of commits the log only starts over in a lull: a write starts it over only
if its transaction began after a checkpoint had copied all of it, and the next transaction has
always begun by then. The chat benchmark grew it to 540 MB, and the commit that finally started it
over truncated the file to ``journal_size_limit``: a 0.3-0.9 s stall of the commands process (ext4
freeing the blocks). So once the log holds more than ``FINISH_ABOVE_FRAMES``, a second checkpoint
runs while this process's writer waits between two batches (``writing``, which the store holds for
each batch): it copies only what came in meanwhile, a few milliseconds, and the next batch starts
the log over, well below the size limit.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["JOURNAL_SIZE_LIMIT", "Checkpointer"]

log = logging.getLogger(__name__)

FINISH_ABOVE_FRAMES = 4096
"""Log frames (pages, 16 MiB) past which a checkpoint holds this process's writer back to finish."""

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
        self.writing = threading.Lock()
        """Held by this process's writer for each batch, so that a checkpoint can finish the log."""
        self.finished = 0
        """Checkpoints that held back the writer to finish the log."""

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
                if self._checkpoint(conn) > FINISH_ABOVE_FRAMES:
                    with self.writing:  # what came in meanwhile, then the next write starts over
                        self._checkpoint(conn)
                        self.finished += 1
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
