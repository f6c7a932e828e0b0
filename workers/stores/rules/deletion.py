"""Deleting a message for everyone, in every backend: what a tombstone keeps, who hears of it, and
how the inbox entries that carried the message are scrubbed.

A deleted message keeps its place (id, conversation, seq, sender, recipient, time, receipts) and
loses what it said: text, caption and media are removed from the store, not hidden. The backends
rewrite, in the same transaction, every ``message`` and ``sent`` entry that carried it to carry the
tombstone instead, so a device that syncs afterwards never reads the old text, and append a
``deleted`` event (with a cursor) for everyone who must hear of it. Deleting a tombstone again
changes nothing.

A user may delete a message for everyone (:func:`check_user_delete`) if they sent it, within
``messages.delete_window`` seconds (later: ``too_late``), or, at any time, if they are an admin of
the group it was sent to and hold it. A message they cannot see does not exist for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem, MessageFacts

__all__ = [
    "ADMIN",
    "check_user_delete",
    "deleted_events",
    "message_not_found",
    "place",
    "tombstone",
    "too_late",
]

ADMIN: Final = "admin"
"""``by`` of a deletion made by the service (moderation), not by a user."""


def message_not_found(message_id: str) -> CommandError:
    return CommandError(ErrorCode.NOT_FOUND, f"no message {message_id!r}")


def too_late(what: str, window: float) -> CommandError:
    return CommandError(ErrorCode.TOO_LATE, f"a message can be {what} for {window:g} s after it is sent")


def check_user_delete(
    facts: MessageFacts | None, *, message_id: str, user: str, now: float, window: float
) -> MessageFacts:
    """The message ``user`` may delete for everyone now, or the CommandError that refuses it. A
    message deleted already passes (deleting it again changes nothing)."""
    if facts is None or user not in facts.holders:
        raise message_not_found(message_id)
    if facts.deleted or user in facts.admins:
        return facts
    if facts.sender != user:
        raise CommandError(
            ErrorCode.FORBIDDEN, "only its sender or a group admin may delete a message for everyone"
        )
    if now - facts.ts > window:
        raise too_late("deleted for everyone", window)
    return facts


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
    where = place(
        message_id=message_id, conversation=conversation, seq=seq, sender=sender, recipient=recipient, ts=ts
    )
    return {**where, "deleted": True, "deleted_at": deleted_at, "deleted_by": deleted_by}


def place(
    *, message_id: str, conversation: str, seq: int, sender: str, recipient: str, ts: float
) -> dict[str, Any]:
    """Where a message is and who sent it: what every stub of it keeps (a tombstone, an expired
    message), never what it said."""
    return {
        "id": message_id,
        "conversation": conversation,
        "seq": seq,
        "from": sender,
        "to": recipient,
        "ts": ts,
    }


def deleted_events(
    users: Iterable[str], message: Mapping[str, Any], *, by: str, now: float, ref: str | None = None
) -> list[InboxItem]:
    """The ``deleted`` event for each of ``users``, carrying the tombstone. A user's deletion
    (``ref``: its command id) has ``ref`` in every event: the id in the deleter's, else null."""
    body = {
        "message_id": message["id"],
        "conversation": message["conversation"],
        "seq": message["seq"],
        "by": by,
        "ts": now,
        "message": dict(message),
    }
    if ref is None:
        return [(user, "deleted", message["id"], dict(body)) for user in users]
    return [(user, "deleted", message["id"], {"ref": ref if user == by else None, **body}) for user in users]
