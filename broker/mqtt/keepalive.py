"""Every connection's keep-alive deadline on one timer: connections in buckets by the second.

A timer per connection (``loop.call_later``) cost an idle connection ~600 bytes (the handle, and
uvloop's timer under it) and the loop a heap entry each. Deadlines need no better than a second's
precision (the broker allows 1.5 times the client's keep-alive already), so connections wait in a
set per whole second of their deadline, and one timer, ticking once a second while any wait,
tells those whose second has come. A connection is in one bucket at a time; it remembers which
(the key ``watch`` returns) to leave it when it ends.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

__all__ = ["KeepAliveWheel", "Watched"]


class Watched(Protocol):
    def keepalive_due(self) -> None:
        """The deadline it asked for has come: check, and ``watch`` again or close."""


class KeepAliveWheel:
    """The broker's keep-alive timer (event loop only)."""

    __slots__ = ("_buckets", "_done", "_timer")

    def __init__(self) -> None:
        self._buckets: dict[int, set[Watched]] = {}
        self._done = 0
        """Every bucket up to this second has been told."""
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, connection: Watched, seconds: float) -> int:
        """Tell ``connection`` in ``seconds`` (rounded up to the next whole second of the loop's
        clock, at most a second late); returns the bucket's key, for ``forget``."""
        loop = asyncio.get_running_loop()
        key = max(math.ceil(loop.time() + seconds), self._done + 1)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = set()
        bucket.add(connection)
        if self._timer is None:
            if not self._done:
                self._done = math.floor(loop.time())
            self._timer = loop.call_at(self._done + 1, self._tick)
        return key

    def forget(self, connection: Watched, key: int) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.discard(connection)
            if not bucket:
                del self._buckets[key]

    def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        now = math.floor(loop.time())
        buckets = self._buckets
        for second in range(self._done + 1, now + 1):
            bucket = buckets.pop(second, None)
            for connection in bucket or ():
                connection.keepalive_due()
        self._done = now
        self._timer = loop.call_at(now + 1, self._tick) if buckets else None
        if not buckets:
            self._done = 0
