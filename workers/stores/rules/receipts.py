"""Receipts in every backend: statuses only move forward (sent, delivered, read), and the sender of
a message hears of each recipient's receipt, and of the moment all of them reached a status."""

from __future__ import annotations

from client_sdk.contract import Status
from workers.stores.records import InboxItem

__all__ = ["receipt_events"]


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
