"""Waking the coroutines that wait for the client's state to change.

Everything the session and the outgoing messages hold changes on the event loop's thread, right
where :meth:`Changes.notify` is called; a waiter re-checks its condition after each notification.
This is the asyncio counterpart of the blocking client's ``threading.Condition``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

__all__ = ["Changes"]


class Changes:
    """A notification every waiter sees: each :meth:`notify` sets the current event and starts a new one."""

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        """Something may have changed: wake every waiter."""
        self._event.set()
        self._event = asyncio.Event()

    async def next(self, timeout: float | None) -> None:
        """Return at the next :meth:`notify`, or after ``timeout`` seconds (None: no limit)."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Return True once ``predicate()`` holds (checked now and after every notification), or
        what it says after ``timeout`` seconds (None: no limit)."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._event.wait()
        except TimeoutError:
            return predicate()
        return True
