"""The chat list and read state in every backend: paging, what a user may see of a conversation,
the ``read`` event, and the wire form of one chat.

A user's place in a conversation is one membership record, written once per user and conversation
(a 1-on-1 conversation's first message, a group join), never per message: ``read_seq`` (how far
they read), ``from_seq`` (a group member sees the messages after the seq the group was at when
they joined) and ``until_seq`` (a former member sees up to the seq at which they left; None: a
member). A conversation's activity is its last message, which the backends already keep (the
conversation's seq counter, bumped for every message), so sending a message writes nothing more.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any

from client_sdk.contract import ErrorCode, is_group_id
from workers.errors import CommandError
from workers.stores.records import ChatSummary, InboxItem

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "ChatCursor",
    "chat_wire",
    "clamp_limit",
    "decode_cursor",
    "encode_cursor",
    "not_in_conversation",
    "peer_of",
    "presence_wire",
    "read_items",
    "visible_last",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 100

ChatCursor = tuple[float, str]
"""Where a page of the chat list stops: the last chat's activity time and conversation id (chats
are ordered by both, newest first)."""

_PREFIX = "c1."


def clamp_limit(limit: int | None) -> int:
    """The page size asked for, within 1..MAX_LIMIT (DEFAULT_LIMIT when not asked)."""
    if limit is None:
        return DEFAULT_LIMIT
    return max(1, min(limit, MAX_LIMIT))


def encode_cursor(ts: float, conversation: str) -> str:
    """The opaque ``next`` of a page that ended at this chat."""
    raw = json.dumps([ts, conversation], separators=(",", ":")).encode()
    return _PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ChatCursor:
    """A cursor made by encode_cursor; anything else is ``bad_request`` (never a guess)."""
    bad = CommandError(ErrorCode.BAD_REQUEST, "before: not a cursor of a chats answer")
    if not cursor.startswith(_PREFIX):
        raise bad
    body = cursor[len(_PREFIX) :]
    try:
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    match value:
        case [float() | int() as ts, str() as conversation] if not isinstance(ts, bool) and conversation:
            return float(ts), conversation
    raise bad


def visible_last(last_seq: int, from_seq: int, until_seq: int | None) -> int:
    """The seq of the last message of a conversation a member sees (0: none): those after
    ``from_seq`` and, for a former member, up to ``until_seq``."""
    last = last_seq if until_seq is None else min(last_seq, until_seq)
    return last if last > from_seq else 0


def not_in_conversation(conversation: str) -> CommandError:
    """The answer to a conversation the user is not in, whether or not it exists."""
    return CommandError(ErrorCode.FORBIDDEN, f"you are not in conversation {conversation!r}")


def read_items(
    user: str, advanced: Iterable[tuple[str, int]], now: float, ref: str | None = None
) -> list[InboxItem]:
    """The ``read`` events for ``user``'s own inbox: each conversation whose read position moved
    forward, to that seq (every device of theirs clears its unread state)."""
    return [
        (user, "read", None, {"ref": ref, "conversation": conversation, "read_seq": seq, "ts": now})
        for conversation, seq in advanced
    ]


def peer_of(conversation: str, user: str) -> str | None:
    """The other user of a 1-on-1 conversation id (``dm:<a>:<b>``), None for a group."""
    if is_group_id(conversation):
        return None
    _, first, second = conversation.split(":", 2)
    return second if first == user else first


def chat_wire(chat: ChatSummary, user: str) -> dict[str, Any]:
    """One chat of a ``chats`` answer."""
    body: dict[str, Any] = {"conversation": chat.conversation}
    if chat.group_name is None:
        body["kind"] = "direct"
        body["peer"] = peer_of(chat.conversation, user)
        if chat.presence is not None:
            body["presence"] = chat.presence
    else:
        body["kind"] = "group"
        body["group"] = {"id": chat.conversation, "name": chat.group_name, "member": chat.member}
    body.update(
        last_message=chat.last_message,
        last_seq=chat.last_seq,
        read_seq=chat.read_seq,
        unread=chat.unread,
        ts=chat.ts,
    )
    return body


def presence_wire(online: bool, last_seen: float | None) -> Mapping[str, Any]:
    return {"status": "online" if online else "offline", "last_seen": last_seen}
