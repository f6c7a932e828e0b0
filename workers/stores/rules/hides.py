"""Deleting a message for me, in every backend: it disappears from my own devices only.

The message stays as it is for everyone else. The user's own entries that carried it (their
``sent`` or ``message``) are rewritten to a stub without text or media (:func:`hidden_stub`),
their inbox gets a ``hidden`` event, and the hide is recorded (SQL ``message_hides``, MongoDB the
message's ``hidden_for``) so that no later change to the message (an edit, a reaction) puts its
content back into those entries or tells that user of it: :func:`unless_hidden` guards a patch.
Hiding again changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from workers.stores.records import InboxItem, MessageFacts
from workers.stores.rules.carriers import Patch
from workers.stores.rules.deletion import message_not_found

__all__ = ["check_hide", "hidden_event", "hidden_stub", "is_hidden", "unhidden", "unless_hidden"]


def check_hide(facts: MessageFacts | None, *, message_id: str, user: str) -> MessageFacts:
    """Anyone who holds a message (its sender, a recipient) may hide it; for anyone else it does
    not exist (``not_found``)."""
    if facts is None or user not in facts.holders:
        raise message_not_found(message_id)
    return facts


def hidden_stub(facts: MessageFacts) -> dict[str, Any]:
    """What a hidden message's entries carry for the user who hid it: its place, nothing it said."""
    return {
        "id": facts.id,
        "conversation": facts.conversation,
        "seq": facts.seq,
        "from": facts.sender,
        "to": facts.recipient,
        "ts": facts.ts,
        "hidden": True,
    }


def hidden_event(user: str, facts: MessageFacts, *, ref: str, now: float) -> InboxItem:
    """The ``hidden`` event, in the inbox of the user who hid the message only."""
    body = {
        "ref": ref,
        "message_id": facts.id,
        "conversation": facts.conversation,
        "seq": facts.seq,
        "ts": now,
    }
    return (user, "hidden", facts.id, body)


def unless_hidden(patch: Patch) -> Patch:
    """``patch``, except that a carrier of a hidden message is left as it is."""

    def guarded(message: dict[str, Any]) -> dict[str, Any] | None:
        return None if message.get("hidden") else patch(message)

    return guarded


def unhidden(users: Collection[str], hiders: Collection[str]) -> list[str]:
    """Those of ``users`` who did not hide the message (they hear of its changes)."""
    return [user for user in users if user not in hiders]


def is_hidden(message: Mapping[str, Any]) -> bool:
    return bool(message.get("hidden"))
