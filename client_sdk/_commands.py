"""Build the command payloads a client publishes on its outbox topic (see docs/protocol.md, "Commands").

Each function returns the JSON-ready dict and validates its arguments, raising ``ValueError``
naming the bad one, so a malformed command never leaves the client.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from client_sdk.contract import (
    COMMAND_ID_RE,
    CONVERSATION_ID_RE,
    MAX_RECEIPT_MESSAGES,
    MAX_SYNC_LIMIT,
    MAX_TEXT_LENGTH,
    TYPING_STATES,
    VERSION,
    Status,
    is_group_id,
    is_valid_user_id,
)

__all__ = [
    "DEFAULT_SYNC_LIMIT",
    "MAX_GROUP_NAME_LENGTH",
    "MAX_MEMBERS_PER_COMMAND",
    "MAX_REPORTED_MESSAGES",
    "block_command",
    "blocks_command",
    "chat_list_command",
    "delete_command",
    "devices_command",
    "edit_command",
    "forward_command",
    "group_create_command",
    "group_leave_command",
    "group_list_command",
    "group_members_command",
    "group_rename_command",
    "history_command",
    "mark_read_command",
    "new_command_id",
    "profile_get_command",
    "profile_set_command",
    "react_command",
    "receipt_commands",
    "report_command",
    "search_command",
    "send_command",
    "sync_command",
    "timer_get_command",
    "timer_set_command",
    "typing_command",
    "unblock_command",
]

DEFAULT_SYNC_LIMIT = 200
"""Entries per sync page the SDK asks for."""
MAX_GROUP_NAME_LENGTH = 100
"""Longest group name, in characters (the schema's ``group_name``)."""
MAX_MEMBERS_PER_COMMAND = 1024
"""Most user ids in one group command (the schema's ``member_list``)."""

_MEMBER_COMMAND_TYPES = frozenset({"group_add", "group_remove", "group_promote"})


def new_command_id() -> str:
    """A fresh command id: a random UUID4 in hex (32 characters)."""
    return uuid.uuid4().hex


def send_command(*, id: str, to: str, text: str, reply_to: str | None = None) -> dict[str, Any]:
    """A ``send`` command: text message ``text`` to user or group ``to``; ``reply_to``: the id of
    the message of that conversation it answers (quotes)."""
    _check_id(id)
    _check_to(to)
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_LENGTH:
        raise ValueError(f"text must be a string of 1 to {MAX_TEXT_LENGTH} characters")
    command = {"v": VERSION, "type": "send", "id": id, "to": to, "text": text}
    if reply_to is not None:
        _check_message_id("reply_to", reply_to)
        command["reply_to"] = reply_to
    return command


def forward_command(*, id: str, message: str, to: str) -> dict[str, Any]:
    """A ``forward`` command: send the message ``message`` (one this user can read) on to ``to``."""
    _check_id(id)
    _check_message_id("message", message)
    _check_to(to)
    return {"v": VERSION, "type": "forward", "id": id, "message": message, "to": to}


def _check_to(to: str) -> None:
    if not is_valid_user_id(to) and not is_group_id(to):
        raise ValueError(f"to {to!r} is neither a user id nor a group id (g:...)")


def _check_message_id(name: str, message_id: str) -> None:
    if not isinstance(message_id, str) or not 1 <= len(message_id) <= 64:
        raise ValueError(f"{name} {message_id!r} is not a message id (a string of 1 to 64 characters)")


def receipt_commands(
    *, status: Status, message_ids: Iterable[str], new_id: Callable[[], str] = new_command_id
) -> list[dict[str, Any]]:
    """``receipt`` commands for ``message_ids`` (duplicates dropped, order kept), split into
    commands of at most ``MAX_RECEIPT_MESSAGES`` ids; an empty list when there are no ids.

    ``new_id`` makes the command ids (a zero-argument callable).
    """
    if status not in (Status.DELIVERED, Status.READ):
        raise ValueError(f"a receipt is delivered or read, not {status.label}")
    ids = list(dict.fromkeys(message_ids))
    for message_id in ids:
        if not isinstance(message_id, str) or not 1 <= len(message_id) <= 64:
            raise ValueError(f"message id {message_id!r} is not a string of 1 to 64 characters")
    return [
        {
            "v": VERSION,
            "type": "receipt",
            "id": new_id(),
            "status": status.label,
            "messages": ids[start : start + MAX_RECEIPT_MESSAGES],
        }
        for start in range(0, len(ids), MAX_RECEIPT_MESSAGES)
    ]


def typing_command(*, id: str, to: str, state: str) -> dict[str, Any]:
    """A ``typing`` indicator for user or group ``to``: ``state`` is ``"composing"`` or ``"paused"``."""
    _check_id(id)
    _check_to(to)
    if state not in TYPING_STATES:
        raise ValueError(f"state must be one of {sorted(TYPING_STATES)}, got {state!r}")
    return {"v": VERSION, "type": "typing", "id": id, "to": to, "state": state}


def sync_command(*, id: str, after: int, limit: int = DEFAULT_SYNC_LIMIT) -> dict[str, Any]:
    """A ``sync`` command: every inbox event after cursor ``after``, ``limit`` per page."""
    _check_id(id)
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError(f"after must be an integer >= 0, got {after!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SYNC_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_SYNC_LIMIT}, got {limit!r}")
    return {"v": VERSION, "type": "sync", "id": id, "after": after, "limit": limit}


def group_create_command(*, id: str, name: str, members: Iterable[str]) -> dict[str, Any]:
    """A ``group_create`` command: a group called ``name`` with these members (besides the creator)."""
    _check_id(id)
    _check_name(name)
    return {"v": VERSION, "type": "group_create", "id": id, "name": name, "members": _members(members)}


def group_members_command(*, kind: str, id: str, group: str, members: Iterable[str]) -> dict[str, Any]:
    """A ``group_add``, ``group_remove`` or ``group_promote`` command (``kind``) about ``members``."""
    if kind not in _MEMBER_COMMAND_TYPES:
        raise ValueError(f"kind must be one of {sorted(_MEMBER_COMMAND_TYPES)}, got {kind!r}")
    _check_id(id)
    _check_group(group)
    return {"v": VERSION, "type": kind, "id": id, "group": group, "members": _members(members)}


def group_rename_command(*, id: str, group: str, name: str) -> dict[str, Any]:
    """A ``group_rename`` command."""
    _check_id(id)
    _check_group(group)
    _check_name(name)
    return {"v": VERSION, "type": "group_rename", "id": id, "group": group, "name": name}


def group_leave_command(*, id: str, group: str) -> dict[str, Any]:
    """A ``group_leave`` command."""
    _check_id(id)
    _check_group(group)
    return {"v": VERSION, "type": "group_leave", "id": id, "group": group}


PUSH_PLATFORMS = frozenset({"android", "ios", "web"})


def push_register_command(*, id: str, token: str, platform: str, preview: bool) -> dict[str, Any]:
    """A ``push_register`` command (answered by ``ok``)."""
    _check_id(id)
    _check_push_token(token)
    if platform not in PUSH_PLATFORMS:
        raise ValueError(f"platform must be one of {sorted(PUSH_PLATFORMS)}, not {platform!r}")
    return {
        "v": VERSION,
        "type": "push_register",
        "id": id,
        "token": token,
        "platform": platform,
        "preview": preview,
    }


def push_unregister_command(*, id: str, token: str) -> dict[str, Any]:
    """A ``push_unregister`` command (answered by ``ok``)."""
    _check_id(id)
    _check_push_token(token)
    return {"v": VERSION, "type": "push_unregister", "id": id, "token": token}


def _check_push_token(token: object) -> None:
    if not isinstance(token, str) or not 1 <= len(token) <= 512:
        raise ValueError("a push token is a string of 1-512 characters")


def devices_command(*, id: str) -> dict[str, Any]:
    """A ``devices`` command (answered by a ``devices`` event)."""
    _check_id(id)
    return {"v": VERSION, "type": "devices", "id": id}


def group_list_command(*, id: str) -> dict[str, Any]:
    """A ``group_list`` command (answered by a ``groups`` event)."""
    _check_id(id)
    return {"v": VERSION, "type": "group_list", "id": id}


def _members(members: Iterable[str]) -> list[str]:
    """The user ids of ``members``, duplicates dropped (order kept), checked against the contract."""
    if isinstance(members, str):
        raise ValueError(f"members must be a collection of user ids, not the string {members!r}")
    users = list(dict.fromkeys(members))
    if not 1 <= len(users) <= MAX_MEMBERS_PER_COMMAND:
        raise ValueError(f"members must name 1 to {MAX_MEMBERS_PER_COMMAND} users, got {len(users)}")
    for user in users:
        _check_user("member", user)
    return users


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_GROUP_NAME_LENGTH:
        raise ValueError(f"name must be a string of 1 to {MAX_GROUP_NAME_LENGTH} characters")


def _check_group(group: str) -> None:
    if not is_group_id(group):
        raise ValueError(f"group {group!r} is not a group id (g: and 1-60 characters of [A-Za-z0-9_-])")


def _check_id(value: str) -> None:
    if not isinstance(value, str) or COMMAND_ID_RE.fullmatch(value) is None:
        raise ValueError(f"command id {value!r} must be 1-64 characters of [A-Za-z0-9_.:-]")


def _check_user(name: str, value: str) -> None:
    if not is_valid_user_id(value):
        raise ValueError(f"{name} {value!r} is not a user id (1-64 characters of [A-Za-z0-9_.-])")


def profile_set_command(*, id: str, name: str | None, about: str | None) -> dict[str, Any]:
    """A ``profile_set`` command: a field None stays as it is, an empty one is cleared."""
    _check_id(id)
    if name is None and about is None:
        raise ValueError("give a name or an about text to set (an empty one clears it)")
    payload: dict[str, Any] = {"v": VERSION, "type": "profile_set", "id": id}
    for field, value, most in (("name", name, 64), ("about", about, 140)):
        if value is None:
            continue
        if not isinstance(value, str) or len(value.strip()) > most:
            raise ValueError(f"{field} must be a string of at most {most} characters")
        payload[field] = value
    return payload


def profile_get_command(*, id: str, users: Iterable[str]) -> dict[str, Any]:
    """A ``profile_get`` command (answered by a ``profiles`` event)."""
    _check_id(id)
    listed = _members(users)
    if len(listed) > 256:
        raise ValueError("ask for at most 256 profiles at a time")
    return {"v": VERSION, "type": "profile_get", "id": id, "users": listed}


# ---- search
MAX_SEARCH_QUERY = 200


def search_command(
    *, id: str, query: str, conversation: str | None, before: str | None, limit: int | None
) -> dict[str, Any]:
    """A ``search`` command (answered by a ``search_results`` event)."""
    _check_id(id)
    if not isinstance(query, str) or not 1 <= len(query) <= MAX_SEARCH_QUERY:
        raise ValueError(f"query must be a string of 1-{MAX_SEARCH_QUERY} characters")
    payload: dict[str, Any] = {"v": VERSION, "type": "search", "id": id, "query": query}
    if conversation is not None:
        if not isinstance(conversation, str) or not 1 <= len(conversation) <= 160:
            raise ValueError("conversation must be a conversation id (a message's conversation)")
        payload["conversation"] = conversation
    if before is not None:
        if not isinstance(before, str) or not 1 <= len(before) <= 64:
            raise ValueError("before must be the next of a previous page")
        payload["before"] = before
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError("limit must be an integer")
        payload["limit"] = limit
    return payload


MAX_EMOJI_BYTES = 32
"""Longest reaction, in UTF-8 bytes (the schema's ``emoji``; the server checks it is one emoji)."""


def react_command(*, id: str, message: str, emoji: str) -> dict[str, Any]:
    """A ``react`` command: set this user's reaction to ``message`` (``""`` removes it)."""
    _check_id(id)
    _check_message_id("message", message)
    if not isinstance(emoji, str) or len(emoji.encode()) > MAX_EMOJI_BYTES or emoji.strip() != emoji:
        raise ValueError(f'emoji must be one emoji of at most {MAX_EMOJI_BYTES} bytes, or "" to remove')
    return {"v": VERSION, "type": "react", "id": id, "message": message, "emoji": emoji}


def edit_command(*, id: str, message_id: str, text: str) -> dict[str, Any]:
    """An ``edit`` command: ``text`` replaces the text (or caption) of message ``message_id``."""
    _check_id(id)
    _check_message_id("message", message_id)
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_LENGTH:
        raise ValueError(f"text must be 1-{MAX_TEXT_LENGTH} characters")
    return {"v": VERSION, "type": "edit", "id": id, "message": message_id, "text": text}


def delete_command(*, id: str, message_id: str, everyone: bool) -> dict[str, Any]:
    """A ``delete`` command: message ``message_id`` for everyone, or (``everyone`` False) for me."""
    _check_id(id)
    _check_message_id("message", message_id)
    scope = "everyone" if everyone else "me"
    return {"v": VERSION, "type": "delete", "id": id, "message": message_id, "for": scope}


# ---------------------------------------------------------------- group settings and invites
_INVITE_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_DESCRIPTION_LENGTH = 512


def group_set_command(
    *,
    id: str,
    group: str,
    description: str | None = None,
    only_admins_send: bool | None = None,
    approval: bool | None = None,
    remove_icon: bool = False,
) -> dict[str, Any]:
    """A ``group_set`` command: the settings given (None: left as they are); ``""`` clears the description."""
    _check_id(id)
    _check_group(group)
    command: dict[str, Any] = {"v": VERSION, "type": "group_set", "id": id, "group": group}
    if description is not None:
        if not isinstance(description, str) or len(description.strip()) > MAX_DESCRIPTION_LENGTH:
            raise ValueError(f"description must be a string of at most {MAX_DESCRIPTION_LENGTH} characters")
        command["description"] = description
    for name, flag in (("only_admins_send", only_admins_send), ("approval", approval)):
        if flag is not None:
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True, False or None, got {flag!r}")
            command[name] = flag
    if remove_icon:
        command["remove_icon"] = True
    if len(command) == 4:
        raise ValueError("give at least one setting to change")
    return command


def group_invite_link_command(
    *, id: str, group: str, revoke: bool = False, expires_in: int | None = None
) -> dict[str, Any]:
    """A ``group_invite_link`` command: a new link (valid ``expires_in`` seconds, None: until
    replaced) or, with ``revoke``, none."""
    _check_id(id)
    _check_group(group)
    command: dict[str, Any] = {"v": VERSION, "type": "group_invite_link", "id": id, "group": group}
    if revoke:
        command["revoke"] = True
    elif expires_in is not None:
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int)
            or not 1 <= expires_in <= 31_536_000
        ):
            raise ValueError(f"expires_in must be 1 to 31536000 seconds, got {expires_in!r}")
        command["expires_in"] = expires_in
    return command


def group_join_command(*, id: str, code: str) -> dict[str, Any]:
    """A ``group_join`` command with an invite code."""
    _check_id(id)
    if not isinstance(code, str) or _INVITE_CODE_RE.fullmatch(code) is None:
        raise ValueError("code must be an invite code: 1-64 characters of [A-Za-z0-9_-]")
    return {"v": VERSION, "type": "group_join", "id": id, "code": code}


def group_request_command(*, kind: str, id: str, group: str, member: str | None = None) -> dict[str, Any]:
    """A ``group_requests`` command, or (with ``member``) a ``group_approve`` or ``group_reject``."""
    if kind not in {"group_requests", "group_approve", "group_reject"}:
        raise ValueError(f"kind must be group_requests, group_approve or group_reject, got {kind!r}")
    _check_id(id)
    _check_group(group)
    command: dict[str, Any] = {"v": VERSION, "type": kind, "id": id, "group": group}
    if kind != "group_requests":
        if member is None:
            raise ValueError(f"{kind} needs the member whose request it decides")
        _check_user("member", member)
        command["member"] = member
    return command


# ---------------------------------------------------------------- disappearing messages
def timer_set_command(*, id: str, to: str, seconds: int) -> dict[str, Any]:
    """A ``timer_set`` command: the disappearing-message timer of my conversation with ``to`` (a
    user or a group), in seconds; 0 turns it off (the server allows only some values)."""
    _check_id(id)
    _check_to(to)
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 0 <= seconds <= 31_536_000:
        raise ValueError("seconds must be a whole number of seconds from 0 (off) to 31536000")
    return {"v": VERSION, "type": "timer_set", "id": id, "to": to, "seconds": seconds}


def timer_get_command(*, id: str, to: str) -> dict[str, Any]:
    """A ``timer_get`` command (answered by a live ``timer_info``)."""
    _check_id(id)
    _check_to(to)
    return {"v": VERSION, "type": "timer_get", "id": id, "to": to}


# ---------------------------------------------------------------- chat list and read state
def chat_list_command(*, id: str, limit: int | None = None, before: str | None = None) -> dict[str, Any]:
    """A ``chat_list`` command (answered by a ``chats`` event): ``limit`` chats (the server clamps
    it to 1-100; default 50), after the page whose ``next`` is ``before``."""
    _check_id(id)
    command: dict[str, Any] = {"v": VERSION, "type": "chat_list", "id": id}
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValueError(f"limit must be an integer, got {limit!r}")
        command["limit"] = limit
    if before is not None:
        if not isinstance(before, str) or not 1 <= len(before) <= 200:
            raise ValueError("before must be the 'next' of a chats page")
        command["before"] = before
    return command


def mark_read_command(*, id: str, conversation: str, seq: int) -> dict[str, Any]:
    """A ``mark_read`` command: this user read ``conversation`` up to ``seq`` (no read receipts)."""
    _check_id(id)
    if not isinstance(conversation, str) or not 1 <= len(conversation) <= 160:
        raise ValueError(f"conversation must be a conversation id, got {conversation!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"seq must be an integer >= 0, got {seq!r}")
    return {"v": VERSION, "type": "mark_read", "id": id, "conversation": conversation, "seq": seq}


def history_command(
    *,
    id: str,
    conversation: str,
    before: int | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """A ``history`` command (answered by a ``history`` event): see ``Client.history``."""
    _check_id(id)
    if not isinstance(conversation, str) or not CONVERSATION_ID_RE.fullmatch(conversation):
        raise ValueError(f"not a conversation id: {conversation!r} (dm:<user>:<user> or a group id)")
    command: dict[str, Any] = {"v": VERSION, "type": "history", "id": id, "conversation": conversation}
    for name, value in (("before", before), ("after", after), ("limit", limit)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "limit" else 0):
            raise ValueError(f"{name} must be an integer >= {1 if name == 'limit' else 0}, got {value!r}")
        command[name] = value
    return command


# ---------------------------------------------------------------- blocking and reports
MAX_REPORTED_MESSAGES = 50
"""The most messages one report carries (the schema's ``maxItems``)."""
MAX_REPORT_REASON = 1000


def block_command(*, id: str, user: str) -> dict[str, Any]:
    """A ``block`` command (answered by a ``blocking`` event, or ``ok`` when blocked already)."""
    _check_id(id)
    _check_user("user", user)
    return {"v": VERSION, "type": "block", "id": id, "user": user}


def unblock_command(*, id: str, user: str) -> dict[str, Any]:
    """An ``unblock`` command (answered by a ``blocking`` event, or ``ok`` when not blocked)."""
    _check_id(id)
    _check_user("user", user)
    return {"v": VERSION, "type": "unblock", "id": id, "user": user}


def blocks_command(*, id: str) -> dict[str, Any]:
    """A ``blocks`` command (answered by a ``blocks`` event: the users this user blocks)."""
    _check_id(id)
    return {"v": VERSION, "type": "blocks", "id": id}


def report_command(
    *, id: str, user: str, messages: Iterable[str] = (), reason: str = "", block: bool = False
) -> dict[str, Any]:
    """A ``report`` command: ``user`` reported with ``messages`` (ids this user can see) as
    evidence; ``block``: block them too."""
    _check_id(id)
    _check_user("user", user)
    listed = list(dict.fromkeys(messages))
    if len(listed) > MAX_REPORTED_MESSAGES:
        raise ValueError(f"a report carries at most {MAX_REPORTED_MESSAGES} messages")
    for message_id in listed:
        _check_message_id("message", message_id)
    if not isinstance(reason, str) or len(reason) > MAX_REPORT_REASON:
        raise ValueError(f"reason must be a string of at most {MAX_REPORT_REASON} characters")
    command: dict[str, Any] = {"v": VERSION, "type": "report", "id": id, "user": user}
    if listed:
        command["messages"] = listed
    if reason:
        command["reason"] = reason
    if block:
        command["block"] = True
    return command
