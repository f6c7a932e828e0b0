"""Per-key member sets that hold a lone member as itself: ``{user: member or {members}}``.

Most users of a node have one connection, one subscription filter per session... and an empty
``set`` costs 216 bytes, one with a member as much. Kept as the member itself until a second one
comes, such an index costs an idle connected user only its dict entry. Members must not be sets.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["add_member", "count_members", "has_member", "members_of", "remove_member"]

K = TypeVar("K", bound=Hashable)
M = TypeVar("M", bound=Hashable)


def add_member(index: dict[K, M | set[M]], key: K, member: M) -> bool:
    """Add ``member`` under ``key``; True when ``key`` had none before."""
    current = index.get(key)
    if current is None:
        index[key] = member
        return True
    if isinstance(current, set):
        current.add(member)
    elif current != member:
        index[key] = {current, member}
    return False


def remove_member(index: dict[K, M | set[M]], key: K, member: M) -> bool:
    """Remove ``member`` from ``key`` (the key goes with its last member); False if it was not there."""
    current = index.get(key)
    if current is None:
        return False
    if not isinstance(current, set):
        if current != member:
            return False
        del index[key]
        return True
    if member not in current:
        return False
    current.discard(member)
    if len(current) == 1:
        index[key] = next(iter(current))
    elif not current:
        del index[key]
    return True


def members_of(index: dict[K, M | set[M]], key: K) -> set[M]:
    """A copy of ``key``'s members."""
    current = index.get(key)
    if current is None:
        return set()
    return set(current) if isinstance(current, set) else {current}


def has_member(index: dict[K, M | set[M]], key: K, member: M) -> bool:
    current = index.get(key)
    if current is None:
        return False
    return member in current if isinstance(current, set) else current == member


def count_members(index: dict[K, M | set[M]], key: K) -> int:
    current = index.get(key)
    if current is None:
        return 0
    return len(current) if isinstance(current, set) else 1
