"""The periodic prune of retention (the rule: ``workers/stores/rules/retention.py``).

A single node runs it in its event loop (on a thread), a cluster in each ``mqchat worker``; a
lease in the store lets one process prune at a time, so several workers do not sweep the same
rows. A sweep is steps of ``retention.batch`` users (then conversations), each a transaction of
its own that stores where the sweep is: a restart goes on from there, and a big database is
pruned a little at a time without holding the store. The media objects of deleted messages go to
``discard`` (the cleanup job) once their step is committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from config.settings import RetentionSettings
from workers.stores.interfaces import MqttSessions, Retention
from workers.stores.rules.retention import cut_off, inbox_days

__all__ = ["Pruner", "SweepReport", "run_pruner"]

log = logging.getLogger(__name__)

_LEASE_SLACK: Final = 2.0
"""The lease lasts this many intervals, renewed at every step of a sweep: a holder that died is
replaced after that (one that stops gives it up at once)."""


@dataclass(frozen=True, slots=True)
class SweepReport:
    ran: bool
    """False: another process holds the lease (or nothing is to be pruned)."""
    inbox_entries: int = 0
    messages: int = 0
    media_objects: int = 0
    sessions: int = 0
    """Persistent MQTT sessions expired."""


class Pruner:
    def __init__(
        self,
        store: Retention,
        settings: RetentionSettings,
        *,
        holder: str,
        discard: Callable[[Sequence[str]], None] | None = None,
        clock: Callable[[], float] = time.time,
        sessions: MqttSessions | None = None,
    ) -> None:
        """``sessions``: the store's persistent MQTT sessions, whose expired ones each sweep deletes."""
        self._store = store
        self._sessions = sessions
        self._settings = settings
        self._holder = holder
        self._discard = discard
        self._clock = clock
        self._closing = threading.Event()

    def close(self) -> None:
        """Stop a sweep in progress after its current step (each step is committed on its own)."""
        self._closing.set()

    def release(self) -> None:
        """Give up the lease (once no sweep runs any more), so that the next process, or this one
        restarted under another name, prunes without waiting for it to expire."""
        try:
            self._store.retention_release(self._holder)
        except Exception:
            log.warning("could not release the retention lease", exc_info=True)

    @property
    def active(self) -> bool:
        """Something is to be pruned at all (else no sweep runs)."""
        s = self._settings
        pruning = s.inbox_days > 0 or s.messages_days > 0 or self._sessions is not None
        return pruning and not self._closing.is_set()

    def sweep(self) -> SweepReport:
        """One whole sweep of the inboxes, then of the messages, if this process holds the lease."""
        s, now = self._settings, self._clock()
        if not self.active:
            return SweepReport(ran=False)
        if not self._renew():
            return SweepReport(ran=False)
        entries = messages = objects = expired = 0
        if self._sessions is not None:
            expired = self._sessions.expire_mqtt_sessions(now=now)
        messages_cut = cut_off(s.messages_days, now)
        if messages_cut is not None:
            while True:
                step = self._store.prune_messages(older_than=messages_cut, max_conversations=s.batch)
                messages += step.deleted
                if step.media_keys:
                    objects += len(step.media_keys)
                    if self._discard is not None:
                        self._discard(step.media_keys)
                if step.done or self._closing.is_set() or not self._renew():
                    break
        inbox_cut = cut_off(inbox_days(s.inbox_days, s.messages_days), now)
        if inbox_cut is not None:
            while True:
                pruned, done = self._store.prune_inbox(older_than=inbox_cut, max_users=s.batch)
                entries += pruned
                if done or self._closing.is_set() or not self._renew():
                    break
        if entries or messages or expired:
            log.info(
                "retention: pruned %d inbox entries, %d messages (%d media objects), %d expired sessions",
                entries,
                messages,
                objects,
                expired,
            )
        return SweepReport(
            ran=True, inbox_entries=entries, messages=messages, media_objects=objects, sessions=expired
        )

    def _renew(self) -> bool:
        """Take or renew the lease: False while another process holds it."""
        ttl = _LEASE_SLACK * self._settings.interval
        return self._store.retention_lease(self._holder, now=self._clock(), ttl=ttl)


def run_pruner(pruner: Pruner, interval: float, stop: threading.Event) -> None:
    """Sweep now and then every ``interval`` seconds until ``stop`` (a thread of ``mqchat worker``)."""
    while not stop.is_set():
        try:
            pruner.sweep()
        except Exception:
            log.warning("retention sweep failed; trying again at the next one", exc_info=True)
        stop.wait(interval)
    pruner.release()
