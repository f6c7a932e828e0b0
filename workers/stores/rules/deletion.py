"""Deleting a message for everyone, in every backend: what a tombstone keeps, who hears of it, and
how the inbox entries that carried the message are scrubbed.

A deleted message keeps its place (id, conversation, seq, sender, recipient, time, receipts) and
loses what it said: text, caption and media are removed from the store, not hidden. The backends
rewrite, in the same transaction, every ``message`` and ``sent`` entry that carried it to carry the
tombstone instead, so a device that syncs afterwards never reads the old text, and append a
``deleted`` event (with a cursor) for everyone who must hear of it. Deleting a tombstone again
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem

__all__ = [
    "ADMIN",
    "deleted_events",
    "message_not_found",
    "tombstone",
]

ADMIN: Final = "admin"
"""``by`` of a deletion made by the service (moderation), not by a user."""


def message_not_found(message_id: str) -> CommandError:
    return CommandError(ErrorCode.NOT_FOUND, f"no message {message_id!r}")


def tombstone(
    *,
    message_id: str,
    conversation: str,
    seq: int,
    sender: str,
    recipient: str,
    ts: float,
    deleted_at: float,
    deleted_by: str,
) -> dict[str, Any]:
    """The wire form of a deleted message: where it was and who sent it, never what it said."""
    return {
        "id": message_id,
        "conversation": conversation,
        "seq": seq,
        "from": sender,
        "to": recipient,
        "ts": ts,
        "deleted": True,
        "deleted_at": deleted_at,
        "deleted_by": deleted_by,
    }


def deleted_events(
    users: Iterable[str], message: Mapping[str, Any], *, by: str, now: float
) -> list[InboxItem]:
    """The ``deleted`` event for each of ``users``, carrying the tombstone."""
    body = {
        "message_id": message["id"],
        "conversation": message["conversation"],
        "seq": message["seq"],
        "by": by,
        "ts": now,
        "message": dict(message),
    }
    return [(user, "deleted", message["id"], dict(body)) for user in users]
