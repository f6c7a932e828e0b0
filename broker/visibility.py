"""Whose presence a user may see, asked of the store off the event loop and remembered for a while.

Only a "yes" is remembered (``ttl`` seconds, at most ``max_entries`` pairs, the oldest dropped
first): a user who just became a contact (the first message, a group join) can watch at once by
subscribing again, without reconnecting. A "no" is asked again each time; the broker handles one
SUBSCRIBE of a connection at a time, and the store is asked on a small pool of its own, so a
client that keeps subscribing only waits for its own answers and never holds up logins or the
other store calls of the node. A failed lookup is a "no" (deny by default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

__all__ = ["PresenceCheck", "Visibility"]

log = logging.getLogger(__name__)

PresenceCheck = Callable[[str, str], bool]
"""``check(watcher, user)``: blocking; True when ``watcher`` may see ``user``'s presence."""


class Visibility:
    def __init__(
        self,
        check: PresenceCheck,
        *,
        ttl: float = 60.0,
        max_entries: int = 100_000,
        workers: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._allowed: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._seen_by: dict[str, set[str]] = {}
        """The users each watcher has a remembered yes for (to forget them at once)."""
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mqchat-visibility")

    async def can_see(self, watcher: str, user: str) -> bool:
        if watcher == user:
            return True
        key = (watcher, user)
        now = self._clock()
        until = self._allowed.get(key)
        if until is not None and until > now:
            return True
        try:
            loop = asyncio.get_running_loop()
            visible = await loop.run_in_executor(self._pool, partial(self._check, watcher, user))
        except Exception:
            log.warning("cannot tell whether %s may see %s's presence: refused", watcher, user, exc_info=True)
            return False
        if visible:
            self._allowed[key] = self._clock() + self._ttl
            self._allowed.move_to_end(key)
            self._seen_by.setdefault(watcher, set()).add(user)
            while len(self._allowed) > self._max_entries:
                (old_watcher, old_user), _ = self._allowed.popitem(last=False)
                self._drop_seen(old_watcher, old_user)
        else:
            self.forget_pair(watcher, user)
        return bool(visible)

    def forget(self, user: str) -> None:
        """Forget every remembered "yes" to watch ``user`` (their privacy settings changed). Rare,
        so a scan of the remembered pairs rather than an index kept on every grant."""
        for key in [key for key in self._allowed if key[1] == user]:
            del self._allowed[key]

    async def ask(self, watcher: str, user: str) -> bool:
        """Ask the store now, remembering nothing (a recheck of an existing subscription)."""
        self.forget_pair(watcher, user)
        return await self.can_see(watcher, user)

    def forget_pair(self, watcher: str, user: str) -> None:
        """``watcher`` may no longer see ``user`` (a block, a recheck): ask the store next time."""
        self._allowed.pop((watcher, user), None)
        self._drop_seen(watcher, user)

    def _drop_seen(self, watcher: str, user: str) -> None:
        users = self._seen_by.get(watcher)
        if users is not None:
            users.discard(user)
            if not users:
                del self._seen_by[watcher]

    def forget_watcher(self, watcher: str) -> None:
        """Forget every yes remembered for ``watcher`` (their connection here ended): a block made
        while they were connected nowhere here is then asked of the store when they come back."""
        for user in self._seen_by.pop(watcher, ()):
            self._allowed.pop((watcher, user), None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
