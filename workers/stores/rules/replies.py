"""Replies (quotes) and forwards, in every backend: who may quote or forward which message, what a
quote holds, and how quotes follow the quoted message when it changes.

A reply names a message of its own conversation that its sender can see (sent it, or got a copy).
The reply stores a **quote** of it, ``{"id", "from", "seq", "excerpt"}`` (+ ``media_type``): a
receiver shows it without having the quoted message (it may have synced from after it). The quote
is a copy, so a change of the quoted message must reach it: when the quoted message is deleted for
everyone, every reply's quote loses its excerpt (``deleted_quote``), in the transaction of the
delete, and the carriers of the replies are rewritten (``requoted``), so the deleted text survives
nowhere. An edit does the same with a new excerpt (``quote_of``): only the latest text is kept.

A forward copies a message the forwarder can read (not a tombstone) into another conversation:
the same text and media objects, marked ``forwarded``, without its quote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.rules.carriers import Patch

__all__ = [
    "EXCERPT_CHARS",
    "check_quotable",
    "deleted_quote",
    "not_readable",
    "quote",
    "quote_of",
    "requoted",
]

EXCERPT_CHARS: Final = 100
"""A quote's excerpt holds at most this many characters of the quoted text or caption."""


def not_readable(message_id: str) -> CommandError:
    """The answer for a message that does not exist, is deleted, or is not the user's to read: the
    same for all three, so nobody learns that a message they cannot see exists."""
    return CommandError(ErrorCode.NOT_FOUND, f"no message {message_id!r} that you can read")


def check_quotable(
    message_id: str, *, visible: bool, conversation: str | None, reply_conversation: str
) -> None:
    """Refuse a ``reply_to`` the sender cannot see (``not_found``) or that is in another
    conversation (``bad_request``); ``conversation`` None: no such message."""
    if conversation is None or not visible:
        raise not_readable(message_id)
    if conversation != reply_conversation:
        raise CommandError(ErrorCode.BAD_REQUEST, "reply_to is in another conversation")


def quote(
    *, message_id: str, sender: str, seq: int, text: str, media: Mapping[str, Any] | None, deleted: bool
) -> dict[str, Any]:
    """The wire ``reply`` of a message quoting this one (a tombstone is quoted without content)."""
    if deleted:
        return deleted_quote({"id": message_id, "from": sender, "seq": seq})
    body: dict[str, Any] = {"id": message_id, "from": sender, "seq": seq, "excerpt": text[:EXCERPT_CHARS]}
    if media is not None:
        body["media_type"] = media.get("type")
    return body


def quote_of(message: Mapping[str, Any]) -> dict[str, Any]:
    """The quote of a message from its wire form (after an edit: its latest text)."""
    return quote(
        message_id=message["id"],
        sender=message["from"],
        seq=int(message["seq"]),
        text=str(message.get("text") or ""),
        media=message.get("media"),
        deleted=False,
    )


def deleted_quote(old: Mapping[str, Any]) -> dict[str, Any]:
    """A quote of a message deleted for everyone: where it was, never what it said."""
    return {"id": old["id"], "from": old["from"], "seq": old["seq"], "deleted": True}


def requoted(reply: Mapping[str, Any]) -> Patch:
    """The carrier patch that puts ``reply`` in a reply: fields it does not own stay; a tombstone
    (no quote any more) is left as it is, and so is a hidden message (deleted for me), except that
    a deleted quote scrubs it too: the quoted text must survive in no inbox entry."""
    scrub = reply.get("deleted") is True

    def patch(message: dict[str, Any]) -> dict[str, Any] | None:
        if message.get("deleted") or "reply" not in message or (message.get("hidden") and not scrub):
            return None
        return {**message, "reply": dict(reply)}

    return patch
