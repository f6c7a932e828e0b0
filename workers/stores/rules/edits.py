"""Editing a message, in every backend: who may, until when, and what changes.

Only the sender edits, within ``messages.edit_window`` seconds of sending (later: ``too_late``);
a deleted message cannot be edited (``not_found``), nor can a message one cannot see. The text of
a text message follows the limits of ``send``, the caption of an image or video those of an
upload's caption. The server keeps only the latest text (older versions are dropped): the
message's stored text is replaced, every entry that carried it is rewritten to carry the new text
and ``edited_at`` (``rules.carriers``; a hidden or deleted carrier is left as it is), and its
hearers who did not hide it get an ``edited`` event. Each edit's command id is recorded, so a
resent edit changes nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from client_sdk.contract import MAX_CAPTION_LENGTH, ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem, MessageFacts
from workers.stores.rules.carriers import Patch
from workers.stores.rules.deletion import message_not_found, too_late
from workers.stores.rules.hides import unless_hidden

__all__ = ["check_edit", "edit_patch", "edited_events"]


def check_edit(
    facts: MessageFacts | None, *, message_id: str, user: str, text: str, now: float, window: float
) -> MessageFacts:
    """The message ``user`` may edit to ``text`` now, or the CommandError that refuses it."""
    if facts is None or user not in facts.holders:
        raise message_not_found(message_id)
    if facts.deleted:
        raise CommandError(ErrorCode.NOT_FOUND, f"message {message_id!r} was deleted: it cannot be edited")
    if facts.sender != user:
        raise CommandError(ErrorCode.FORBIDDEN, "only its sender may edit a message")
    if now - facts.ts > window:
        raise too_late("edited", window)
    if facts.media and len(text) > MAX_CAPTION_LENGTH:
        raise CommandError(ErrorCode.TOO_LARGE, f"a caption is at most {MAX_CAPTION_LENGTH} characters")
    return facts


def edit_patch(text: str, edited_at: float) -> Patch:
    """The carriers' patch: the new text and the edit time; every other field kept (a reply, the
    reactions...); a tombstone or a hidden message left as it is."""

    def patch(message: dict[str, Any]) -> dict[str, Any] | None:
        if message.get("deleted"):
            return None
        return {**message, "text": text, "edited_at": edited_at}

    return unless_hidden(patch)


def edited_events(
    users: Iterable[str], message: Mapping[str, Any], *, by: str, ref: str, now: float
) -> list[InboxItem]:
    """The ``edited`` event for each of ``users``; ``ref`` (the command id) only in the editor's."""
    body = {
        "message_id": message["id"],
        "conversation": message["conversation"],
        "seq": message["seq"],
        "by": by,
        "text": message["text"],
        "edited_at": now,
        "ts": now,
    }
    return [
        (
            user,
            "edited",
            message["id"],
            {"ref": ref if user == by else None, **body, "message": dict(message)},
        )
        for user in users
    ]
