"""The quote a reply carries (the wire ``reply`` of a message), typed, and its parsing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Reply", "parse_reply", "reply_target"]


@dataclass(frozen=True, slots=True)
class Reply:
    """The message a reply answers, as the reply quotes it: its ``id``, ``sender`` and ``seq``, and
    ``excerpt``, the first 100 characters of its text or caption ("" for media without a caption),
    with ``media_type`` (e.g. ``image/jpeg``) when it had media. ``deleted`` is true once the quoted
    message was deleted for everyone: the excerpt is then gone ("")."""

    id: str
    sender: str
    seq: int
    excerpt: str = ""
    media_type: str | None = None
    deleted: bool = False


def parse_reply(payload: Any) -> Reply:
    """Parse the ``reply`` object of a message."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"field 'reply' must be a JSON object, got {type(payload).__name__}")
    message_id, sender, seq = payload.get("id"), payload.get("from"), payload.get("seq")
    if not isinstance(message_id, str) or not isinstance(sender, str):
        raise ValueError("field 'reply' needs the string fields 'id' and 'from'")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"field 'reply.seq' must be an integer >= 1, got {seq!r}")
    excerpt, media_type = payload.get("excerpt", ""), payload.get("media_type")
    if not isinstance(excerpt, str) or not (media_type is None or isinstance(media_type, str)):
        raise ValueError("field 'reply': 'excerpt' and 'media_type' must be strings")
    return Reply(
        id=message_id,
        sender=sender,
        seq=seq,
        excerpt=excerpt,
        media_type=media_type,
        deleted=payload.get("deleted") is True,
    )


def reply_target(*, sender: str, recipient: str, conversation_is_group: bool, me: str) -> str:
    """Where a reply to a message (``sender`` → ``recipient``) goes: its group, or the other user
    of the 1-on-1 conversation."""
    if conversation_is_group:
        return recipient
    return recipient if sender == me else sender
