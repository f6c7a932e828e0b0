"""The sweeper of disappearing messages: where the workers run (a single node's own, or each
``mqchat worker``), a thread asks the store every ``messages.expiry_sweep`` seconds for the
messages whose ``expires_at`` has passed and expires them (``Timers.expire_due``, see
``workers.stores.rules.timers``), a batch per transaction, then publishes the ``expired`` events
to the devices connected now (devices not connected read them by sync) and hands the media
objects they gave up to the cleanup job.

The expiry is stored with each message, so nothing is lost when a process stops: a message that
expired while no worker ran goes at the next sweep after one starts. Several sweepers (several
workers) may run at once; the store expires each message once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from workers.routing import Delivery
from workers.stores import Expiry, Timers

__all__ = ["ExpirySweeper"]

log = logging.getLogger(__name__)


class ExpirySweeper:
    """``start`` runs the sweeps on a daemon thread until ``stop``; ``sweep`` is one of them."""

    def __init__(
        self,
        store: Timers,
        *,
        route: Callable[[list[Delivery]], None],
        discard: Callable[[Sequence[str]], None] | None,
        period: float,
        batch: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``route``: publishes the events (``Router.route``); ``discard``: removes media objects
        (``send_cleanup_job``; None: there is no media storage)."""
        self._store = store
        self._route = route
        self._discard = discard
        self._period = period
        self._batch = batch
        self._clock = clock
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def sweep(self) -> list[str]:
        """Expire every message due now, a batch per transaction; their ids."""
        now = self._clock()
        expired: list[str] = []
        while True:
            expiry = self._store.expire_due(now=now, limit=self._batch)
            self._announce(expiry)
            expired.extend(expiry.expired)
            if len(expiry.expired) < self._batch or self._stopped.is_set():
                return expired

    def _announce(self, expiry: Expiry) -> None:
        if expiry.entries:
            self._route([(entry.user, entry.payload, None, 1, None) for entry in expiry.entries])
        if expiry.media_keys and self._discard is not None:
            try:
                self._discard(expiry.media_keys)
            except Exception:  # the messages are gone; only their objects stay behind
                log.exception("could not hand media objects %s to the cleanup job", expiry.media_keys)
        if expiry.expired:
            log.info("%d disappearing message(s) expired", len(expiry.expired))

    def start(self) -> None:
        self._stopped.clear()
        self._thread = threading.Thread(target=self._run, name="mqchat-expiry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        # the first sweep right away: messages that expired while no worker ran go first
        while not self._stopped.is_set():
            try:
                self.sweep()
            except Exception:  # the store is unavailable, say: the next sweep tries again
                log.warning("the sweep of expired messages failed", exc_info=True)
            self._stopped.wait(self._period)
