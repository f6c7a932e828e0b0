"""How often a user's typing indicator reaches a group: at most one per user and group every
``interval`` seconds, the rest dropped silently (a group of 256 hears every keystroke otherwise).
A ``paused`` right after a forwarded ``composing`` still goes through, once, so nobody is left
seeing someone type who stopped. Kept in the memory of the process that runs the commands: with
several workers a user may get one per worker, which is still bounded."""

from __future__ import annotations

import threading

__all__ = ["TypingGate"]


class TypingGate:
    def __init__(self, *, interval: float = 2.0, max_entries: int = 100_000) -> None:
        self._interval = interval
        self._max = max_entries
        self._last: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def allow(self, user: str, group: str, state: str, *, now: float) -> bool:
        """Whether this indicator is forwarded (and, if so, remember it)."""
        key = (user, group)
        with self._lock:
            last = self._last.get(key)
            if last is not None:
                at, previous = last
                stops = state == "paused" and previous == "composing"
                if now - at < self._interval and not stops:
                    return False
            if len(self._last) >= self._max:
                self._forget_before(now - self._interval)
            self._last[key] = (now, state)
            return True

    def _forget_before(self, cutoff: float) -> None:
        stale = [key for key, (at, _) in self._last.items() if at < cutoff]
        for key in stale or list(self._last)[: len(self._last) // 2]:
            del self._last[key]
