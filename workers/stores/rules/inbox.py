"""The inbox log in every backend: appended events are numbered per user, 1, 2, 3, ... with no gaps
(a backend bumps each user's cursor by the count, in the transaction that appends them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from client_sdk.contract import VERSION
from workers.stores.records import InboxEntry, InboxItem, SyncPage

__all__ = ["events_per_user", "number_entries", "sync_page"]


def events_per_user(items: Sequence[InboxItem]) -> dict[str, int]:
    """How many of the events go to each user: how far each user's inbox cursor is bumped."""
    counts: dict[str, int] = {}
    for user, *_ in items:
        counts[user] = counts.get(user, 0) + 1
    return counts


def number_entries(items: Sequence[InboxItem], last: Mapping[str, int]) -> list[InboxEntry]:
    """The entries of ``items`` in order, given each user's cursor after the bump (``last``)."""
    counts = events_per_user(items)
    next_cursor = {user: last[user] - count + 1 for user, count in counts.items()}
    entries = []
    for user, kind, _message_id, body in items:
        cursor = next_cursor[user]
        next_cursor[user] = cursor + 1
        entries.append(InboxEntry(user, cursor, {"v": VERSION, "type": kind, "cursor": cursor, **body}))
    return entries


def sync_page(rows: Iterable[tuple[int, Any, int]], *, more: bool, max_bytes: int) -> SyncPage:
    """The page of ``rows`` ``(cursor, event, its JSON's length)`` (one more than the limit read
    tells ``more``) whose JSON fits in ``max_bytes``, at least one; ``more`` also when some did
    not fit."""
    entries: list[Any] = []
    first = last = None
    size = 0
    for cursor, event, length in rows:
        size += length
        if entries and size > max_bytes:
            more = True
            break
        entries.append(event)
        if first is None:
            first = cursor
        last = cursor
    return SyncPage(entries=entries, first=first, last=last, more=more)
