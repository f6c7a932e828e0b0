"""A runner whose thread does the work with each batch: the base of ``inline`` and ``queue``.

The event loop only puts each batch on the thread's queue; the thread takes them in order and
does the work (store, or enqueue) with each, retrying a batch that failed before the next one
(``workers/retry.py``). Meanwhile the batches wait, and ingest's bound fills: new commands are
refused with ``busy``. Batches that queued up while the thread worked go on together, up to
``batch_size`` commands: one transaction, or one job, for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from typing import Any

from workers.retry import Policy, Retrying, Work
from workers.runners.base import Batch, CommandRunner

__all__ = ["ThreadedRunner"]

log = logging.getLogger(__name__)

_STOP = object()


class ThreadedRunner(CommandRunner):
    def __init__(
        self,
        work: Work,
        *,
        name: str,
        batch_size: int,
        linger: float,
        when: Policy,
        min_backoff: float,
        max_backoff: float,
    ) -> None:
        """``linger`` is the group commit (``workers.ingest_linger_ms``, in seconds)."""
        super().__init__()
        self._retrying = Retrying(work, when=when, min_backoff=min_backoff, max_backoff=max_backoff)
        self._name = name
        self._batch_size = batch_size
        self._linger = linger
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self._name} already started")
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def room(self) -> bool:
        return True  # the thread's queue: ingest's bound counts what waits in it (``taken``)

    def submit(self, node: str, batch: Batch) -> None:
        self._queue.put((node, batch))

    async def drain(self, timeout: float) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        await asyncio.to_thread(thread.join, timeout)
        if thread.is_alive():
            log.error(
                "%s did not finish within %.0f s; %d batches left", self._name, timeout, self._queue.qsize()
            )

    async def close(self) -> None:
        self._retrying.close()

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        size, linger = self._batch_size, self._linger
        carried: Any = None  # taken while waiting, for the next round: another node's batch, or the stop
        while True:
            free_since = time.monotonic()
            item, carried = (get() if carried is None else carried), None
            if item is _STOP:
                return
            node, batch = item
            # Group commit under load: when this batch came within ``linger`` of the last one, it
            # waits up to ``linger`` for others to join it (one transaction for all); when the
            # thread was idle longer than that, the load is light and the batch goes at once.
            now = time.monotonic()
            until = now + linger if now - free_since < linger else now
            while len(batch) < size:
                left = until - time.monotonic()
                try:
                    item = get(timeout=left) if left > 0 else get_nowait()
                except queue.Empty:
                    break
                if item is _STOP or item[0] != node:
                    carried = item
                    break
                batch.extend(item[1])
            while batch:
                head, batch = batch[:size], batch[size:]
                self._retrying(node, head)
                self.taken += len(head)
