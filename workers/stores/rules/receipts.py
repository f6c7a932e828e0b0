"""Receipts in every backend: statuses only move forward (sent, delivered, read), and the sender of
a message hears of each recipient's receipt, and of the moment all of them reached a status.

The members of a group answer a message at nearly the same moment, so a batch of receipts holds many
members' receipts of one message: the sender hears of them in one event (``by`` the first member,
``also_by`` the others; docs/protocol.md), not one event per member, which was most of what a group
message cost the server and the sender's devices."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from client_sdk.contract import Status, is_group_id
from workers.stores.records import InboxItem

__all__ = ["merge_group_receipts", "receipt_events"]


def receipt_events(
    *,
    sender: str,
    message_id: str,
    conversation: str,
    seq: int,
    by: str,
    now: float,
    status: Status,
    floor_before: int,
    floor_after: int,
) -> list[InboxItem]:
    """The ``receipt`` events for the ``sender`` of a message that ``by`` moved to ``status``, the
    lowest status among its recipients going from ``floor_before`` to ``floor_after``; ``all``
    once every recipient has ``status``."""
    body = {"message_id": message_id, "conversation": conversation, "seq": seq, "by": by, "ts": now}
    out: list[InboxItem] = []
    if floor_before < floor_after < status:
        # this receipt also completed a lower status for everyone (the last to get it read it at once)
        lower = {"status": Status(floor_after).label, **body, "all": True}
        out.append((sender, "receipt", message_id, lower))
    event = {"status": status.label, **body, "all": floor_after >= status}
    out.append((sender, "receipt", message_id, event))
    return out


def merge_group_receipts(given: Sequence[Sequence[InboxItem]]) -> list[list[InboxItem]]:
    """The events of a batch's receipt commands (``given``: each command's, in order), with the
    ``receipt`` events of a group message that reach one status merged into the first of them: its
    ``by`` stays, the members of the later ones are added to its ``also_by``, and its ``all`` is
    what the last of them says (a status completes only once, so it stays true from there). Events
    of 1-on-1 messages (one recipient) and any other events are left as they are."""
    first: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    members: dict[tuple[str, str | None, str], set[str]] = {}
    merged: list[list[InboxItem]] = []
    for items in given:
        kept: list[InboxItem] = []
        for item in items:
            sender, kind, message_id, body = item
            if kind != "receipt" or not is_group_id(body["conversation"]):
                kept.append(item)
                continue
            key = (sender, message_id, body["status"])
            event = first.get(key)
            if event is None:
                first[key] = event = dict(body)
                members[key] = {body["by"]}
                kept.append((sender, kind, message_id, event))
                continue
            if body["by"] not in members[key]:
                members[key].add(body["by"])
                event.setdefault("also_by", []).append(body["by"])
            event["all"] = event["all"] or body["all"]
            event["ts"] = body["ts"]
        merged.append(kept)
    return merged
