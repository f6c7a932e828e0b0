"""Messages in every backend: their ids, their conversation, who gets a copy, the media objects they
own, and the inbox events a new message makes."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem, StoredMessage

__all__ = [
    "dm_conversation",
    "media_keys",
    "message_events",
    "message_targets",
    "new_message_id",
    "new_message_ids",
    "not_member",
    "unknown_group",
]


def new_message_id() -> str:
    """32 hex digits: the time in milliseconds (12), then 80 random bits. Ids made later sort
    later, so a store's indexes on message ids grow at one end: with random ids every message
    dirtied a page of its own in each of them (a write per page at every commit)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def new_message_ids(count: int) -> list[str]:
    """``count`` ids as ``new_message_id`` makes them, from one read of the system's random source:
    ``os.urandom`` is a system call, one per message where a batch stores many. A lone id is made
    by ``new_message_id``: for one, the slicing costs more than it saves."""
    if count == 1:
        return [new_message_id()]
    now = f"{time.time_ns() // 1_000_000:012x}"
    random = os.urandom(10 * count).hex()
    return [now + random[i : i + 20] for i in range(0, 20 * count, 20)]


def dm_conversation(a: str, b: str) -> str:
    """The conversation id of two users' 1-on-1 chat (the same whichever side asks)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


def unknown_group(group: str) -> CommandError:
    return CommandError(ErrorCode.UNKNOWN_GROUP, f"no group {group!r}")


def not_member(group: str) -> CommandError:
    return CommandError(ErrorCode.NOT_MEMBER, f"you are not a member of {group}")


def message_targets(group: str, sender: str, members: Sequence[str] | None) -> list[str]:
    """Who gets a copy of ``sender``'s message to ``group`` (``members``: None when no such group)."""
    if members is None:
        raise unknown_group(group)
    if sender not in members:
        raise not_member(group)
    return [m for m in members if m != sender]


def media_keys(media: Mapping[str, Any]) -> list[str]:
    """The stored objects of a message's ``media``: the file, and its thumbnail if it has one. Who
    has the message may download them (its sender and its recipients)."""
    keys = [media["key"]]
    thumbnail = media.get("thumbnail")
    if thumbnail:
        keys.append(thumbnail["key"])
    return keys


def message_events(message: StoredMessage, command_id: str, targets: list[str]) -> list[InboxItem]:
    """The inbox events of a new message: ``sent`` for its sender, then a copy for each target."""
    body = message.wire()
    return [
        (message.sender, "sent", message.id, {"ref": command_id, "message": body}),
        *((user, "message", message.id, {"message": body}) for user in targets),
    ]
