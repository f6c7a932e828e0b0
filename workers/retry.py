"""When work that failed is tried again, and the one loop that tries a batch of commands again.

``retry_when`` and the backoff bounds are the job queue's policy (Dramatiq's ``Retries``
middleware, ``workers/jobs.py``): a store that is unavailable is waited for for hours, other
passing failures are retried a few times. ``Retrying`` applies such a policy to a batch of commands
handed over outside the job queue (run on a thread of the node, in the commands process, or
enqueued by the node): it tries the batch again, in order, before the next one, with the same
exponential backoff, and never raises. A batch it gives up on is logged, as Dramatiq would drop
it. ``close`` ends the wait of a batch being retried (the process is stopping).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from workers.errors import Retryable, StoreUnavailable

__all__ = ["MAX_BACKOFF_MS", "MIN_BACKOFF_MS", "Retrying", "always", "retry_when"]

log = logging.getLogger(__name__)

MIN_BACKOFF_MS = 200
MAX_BACKOFF_MS = 30_000

Work = Callable[[str, list[dict[str, Any]]], None]
"""Does something with a batch of commands received by a node: ``work(node, batch)``."""
Policy = Callable[[int, BaseException], bool]
"""Whether to try again after ``retries`` retries that failed, the last with this exception."""


def retry_when(retries: int, exc: BaseException) -> bool:
    """Retry jobs that met an unavailable store for hours, other passing failures a few times."""
    if isinstance(exc, StoreUnavailable):
        return retries < 1000
    return isinstance(exc, Retryable) and retries < 8


def always(retries: int, exc: BaseException) -> bool:
    """Retry until it works (the batch was acknowledged to its senders: keep it)."""
    return True


class Retrying:
    """Does ``work`` with each batch it is called with, retrying it as ``when`` says; never raises."""

    def __init__(
        self,
        work: Work,
        *,
        when: Policy = retry_when,
        min_backoff: float = MIN_BACKOFF_MS / 1000,
        max_backoff: float = MAX_BACKOFF_MS / 1000,
        on_retry: Callable[[float], None] | None = None,
    ) -> None:
        """``on_retry`` hears of each wait before a retry (its length in seconds)."""
        self._work = work
        self._when = when
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._on_retry = on_retry
        self._closed = threading.Event()
        self.retries = 0
        """Retries made so far (all batches)."""

    def __call__(self, node: str, batch: list[dict[str, Any]]) -> None:
        """Do the work with ``batch`` now, retrying it until it works or the policy gives up."""
        retries = 0
        while True:
            try:
                self._work(node, batch)
                return
            except Exception as exc:
                if not self._when(retries, exc):
                    log.exception(
                        "a batch of %d commands failed for good after %d retries", len(batch), retries
                    )
                    return
                delay = min(self._max_backoff, self._min_backoff * 2 ** min(retries, 32))
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
