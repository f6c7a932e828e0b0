"""Members of groups, cached by every backend for the messages sent to them.

Every change of a group bumps its ``version`` in the same transaction. The cache keeps members by
group with the version they were read at; a reader compares it with the group's version (a lookup
by key) and reloads on a mismatch, so a change made by any process invalidates every process's cache.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

__all__ = ["MembersCache", "Roster"]


class Roster(NamedTuple):
    """What a message to a group needs: its members (in join order), and who may send to it when
    only admins may (its admins; None: every member may). Kept together so that the check of
    ``only_admins_send`` costs a send nothing more than the members' lookup it makes anyway."""

    members: list[str]
    senders: frozenset[str] | None = None


class MembersCache:
    """Members in join order by group, the least recently used dropped past ``size`` groups."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._members: OrderedDict[str, tuple[int, Roster]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, group: str, version: int) -> Roster | None:
        """The roster read at ``version``, or None (not cached, or read at another version)."""
        with self._lock:
            cached = self._members.get(group)
            if cached is None or cached[0] != version:
                return None
            self._members.move_to_end(group)
            return cached[1]

    def put(self, group: str, version: int, roster: Roster) -> None:
        with self._lock:
            self._members[group] = (version, roster)
            while len(self._members) > self._size:
                self._members.popitem(last=False)

    def forget(self, group: str) -> None:
        with self._lock:
            self._members.pop(group, None)

    def clear(self) -> None:
        with self._lock:
            self._members.clear()
