"""A message as one user sees it now, built from the stored message and its changes, in every
backend: what history (and search, and the chat list) answer with.

It is exactly what that user's inbox carriers hold (``rules.carriers``): each change to a
delivered message rewrites them, and this builds the same wire object from the tables instead.
Precedence follows the carrier patches: a message the viewer hid is the hidden stub whatever
happened to it later (``rules.hides``); a message deleted for everyone is the tombstone (no text,
media, quote, reactions or forward mark: ``rules.deletion``); otherwise the message with its
latest text (``edited_at`` when edited), media, quote (as requoted), ``forwarded`` mark and
reactions summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workers.stores.records import MessageFacts
from workers.stores.rules.deletion import tombstone
from workers.stores.rules.hides import hidden_stub

__all__ = ["StoredView", "wire_view"]


@dataclass(frozen=True, slots=True)
class StoredView:
    """What a backend read of one message for one viewer."""

    id: str
    conversation: str
    seq: int
    sender: str
    recipient: str
    text: str
    ts: float
    deleted_at: float | None = None
    deleted_by: str | None = None
    edited_at: float | None = None
    media: Mapping[str, Any] | None = None
    reply: Mapping[str, Any] | None = None
    forwarded: bool = False
    reactions: Mapping[str, str] = field(default_factory=dict)
    hidden: bool = False
    """The viewer deleted it for themselves."""


def wire_view(stored: StoredView) -> dict[str, Any]:
    """The wire message as the viewer's carriers hold it."""
    if stored.hidden:
        facts = MessageFacts(
            id=stored.id,
            conversation=stored.conversation,
            seq=stored.seq,
            sender=stored.sender,
            recipient=stored.recipient,
            ts=stored.ts,
            deleted=stored.deleted_at is not None,
            media=stored.media is not None,
            holders=(),
            admins=(),
        )
        return hidden_stub(facts)
    if stored.deleted_at is not None:
        return tombstone(
            message_id=stored.id,
            conversation=stored.conversation,
            seq=stored.seq,
            sender=stored.sender,
            recipient=stored.recipient,
            ts=stored.ts,
            deleted_at=stored.deleted_at,
            deleted_by=stored.deleted_by or "",
        )
    body: dict[str, Any] = {
        "id": stored.id,
        "conversation": stored.conversation,
        "seq": stored.seq,
        "from": stored.sender,
        "to": stored.recipient,
        "text": stored.text,
        "ts": stored.ts,
    }
    if stored.media is not None:
        body["media"] = dict(stored.media)
    if stored.reply is not None:
        body["reply"] = dict(stored.reply)
    if stored.forwarded:
        body["forwarded"] = True
    if stored.edited_at is not None:
        body["edited_at"] = stored.edited_at
    if stored.reactions:
        body["reactions"] = dict(stored.reactions)
    return body
