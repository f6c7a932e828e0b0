"""Command batches run where they are handed over, for the in-process job queue (``memory://``).

A single node's ingest thread would otherwise enqueue each batch on Dramatiq's in-memory broker
(JSON-encoded), for a consumer thread to decode and pass to the one commands worker thread: two
thread hops and an encode/decode per batch, all under the one GIL. ``DirectCommands`` runs the
batch on the calling thread instead, with the job queue's retry policy (``retry_when``, the same
exponential backoff), so a batch that met an unavailable store is retried, in order, before the next
one; meanwhile ingest's bound fills and new commands are refused with ``busy``. It never raises: a
batch it gives up on is logged, as Dramatiq would drop it. ``close`` ends the waiting of a batch
that is being retried (the node is stopping). ``on_retry`` hears of each wait before a retry (its
length in seconds): the commands process tells the node it is waiting, not hung.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from workers.jobs import MAX_BACKOFF_MS, MIN_BACKOFF_MS, retry_when

__all__ = ["DirectCommands"]

log = logging.getLogger(__name__)

Process = Callable[[str, list[dict[str, Any]]], None]


class DirectCommands:
    def __init__(
        self,
        process: Process,
        *,
        min_backoff: float = MIN_BACKOFF_MS / 1000,
        max_backoff: float = MAX_BACKOFF_MS / 1000,
        on_retry: Callable[[float], None] | None = None,
    ) -> None:
        self._process = process
        self._on_retry = on_retry
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._closed = threading.Event()
        self.retries = 0
        """Retries made so far (all batches)."""

    def __call__(self, node: str, batch: list[dict[str, Any]]) -> None:
        """Process ``batch`` now, retrying it as the job queue would; never raises."""
        retries = 0
        while True:
            try:
                self._process(node, batch)
                return
            except Exception as exc:
                if not retry_when(retries, exc):
                    log.exception(
                        "a batch of %d commands failed for good after %d retries", len(batch), retries
                    )
                    return
                delay = min(self._max_backoff, self._min_backoff * 2**retries)
                log.warning("a batch of %d commands failed (%r); retry in %.1f s", len(batch), exc, delay)
                if self._on_retry is not None:
                    self._on_retry(delay)
            if self._closed.wait(delay):
                log.error("stopping: a batch of %d commands is left unstored", len(batch))
                return
            retries += 1
            self.retries += 1

    def close(self) -> None:
        """Stop waiting to retry (the batch being retried is given up and logged)."""
        self._closed.set()
