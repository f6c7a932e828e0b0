"""What every store backend does the same way with the inbox log: number appended events, and make
the events a receipt sends to the message's sender."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from client_sdk.contract import VERSION, Status
from workers.stores.base import InboxEntry, InboxItem

__all__ = ["events_per_user", "number_entries", "receipt_events"]


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


def receipt_events(
    *,
    sender: str,
    body: dict[str, object],
    status: Status,
    floor_before: int,
    floor_after: int,
) -> list[InboxItem]:
    """The ``receipt`` events for the sender of a message whose lowest status among its recipients
    went from ``floor_before`` to ``floor_after``; ``all`` once every recipient has ``status``.
    ``body`` holds the message's ``message_id``, ``conversation``, ``seq``, and ``by`` and ``ts``."""
    message_id = str(body["message_id"])
    out: list[InboxItem] = []
    if floor_before < floor_after < status:
        # this receipt also completed a lower status for everyone (the last to get it read it at once)
        lower = {"status": Status(floor_after).label, **body, "all": True}
        out.append((sender, "receipt", message_id, lower))
    event = {"status": status.label, **body, "all": floor_after >= status}
    out.append((sender, "receipt", message_id, event))
    return out
