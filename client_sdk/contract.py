"""The mqchat wire contract, version 1: topics, payload types, statuses and error codes.

The SDK owns this module and the server imports it, so both sides agree by construction.
The payload shapes are defined once, in ``schema/mqchat-v1.schema.json`` (JSON Schema 2020-12),
which non-Python clients can use as is; :func:`load_schema` returns it.

Topics (``prefix`` and ``presence_prefix`` are server settings, ``chat`` and ``presence`` by default):

- ``<prefix>/<user>/in``: the user's inbox. Only that user may subscribe; only the server publishes.
- ``<prefix>/<user>/out``: the user's commands. Only that user may publish.
- ``<presence_prefix>/<user>``: retained presence, published only by the server.
- ``<prefix>/<user>/reply`` and topics under ``<prefix>/<user>/reply/``: where an MQTT 5 command
  with a Response Topic gets its direct answer. Only that user may subscribe; only the server
  publishes.
"""

from __future__ import annotations

import json
import re
from enum import IntEnum, StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final

__all__ = [
    "BLOCK_COMMAND_TYPES",
    "CHAT_COMMAND_TYPES",
    "COMMAND_ID_RE",
    "COMMAND_TYPES",
    "CONVERSATION_ID_RE",
    "DEFAULT_MEDIA_PORT",
    "DEFAULT_PREFIX",
    "DEFAULT_PRESENCE_PREFIX",
    "DEVICE_COMMAND_TYPES",
    "DEVICE_ID_RE",
    "EVENT_TYPES",
    "GROUP_COMMAND_TYPES",
    "GROUP_ID_RE",
    "GROUP_SETTINGS_COMMAND_TYPES",
    "HISTORY_COMMAND_TYPES",
    "MAX_CAPTION_LENGTH",
    "MAX_CORRELATION_BYTES",
    "MAX_RECEIPT_MESSAGES",
    "MAX_RESPONSE_TOPIC_BYTES",
    "MAX_SYNC_LIMIT",
    "MAX_TEXT_LENGTH",
    "MAX_USER_PROPERTIES",
    "MAX_USER_PROPERTIES_BYTES",
    "MESSAGE_CHANGE_COMMAND_TYPES",
    "PRESENCE_STATUSES",
    "PRIVACY_COMMAND_TYPES",
    "PROFILE_COMMAND_TYPES",
    "PUSH_COMMAND_TYPES",
    "REACTION_COMMAND_TYPES",
    "SEARCH_COMMAND_TYPES",
    "SEQUENCED_EVENT_TYPES",
    "TIMER_COMMAND_TYPES",
    "TYPING_STATES",
    "USER_ID_RE",
    "VERSION",
    "ErrorCode",
    "Status",
    "Topics",
    "decode",
    "dm_conversation_id",
    "encode",
    "is_group_id",
    "is_valid_user_id",
    "load_schema",
]

VERSION: Final = 1
DEFAULT_PREFIX: Final = "chat"
DEFAULT_PRESENCE_PREFIX: Final = "presence"

USER_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A user id: 1-64 characters of ``[A-Za-z0-9_.-]``. The MQTT username is the user id."""
COMMAND_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
DEVICE_ID_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""The device part of a client id ``<user>/<device>``."""

MAX_TEXT_LENGTH: Final = 65536
"""Longest ``text`` of a ``send`` command, in characters."""
MAX_CAPTION_LENGTH: Final = 1024
"""Longest caption of an image or video (the ``caption`` of an upload), in characters."""
DEFAULT_MEDIA_PORT: Final = 8090
"""The server's HTTP port for uploading and downloading media (see docs/protocol.md, "Media")."""
MAX_RECEIPT_MESSAGES: Final = 500
"""Most message ids in one ``receipt`` command."""
MAX_SYNC_LIMIT: Final = 1000
"""Largest ``limit`` of a ``sync`` command."""
# MQTT 5 request/response: what a command may carry to be echoed on its answer (they travel with
# the command through the job queue, so they are kept small)
MAX_RESPONSE_TOPIC_BYTES: Final = 256
MAX_CORRELATION_BYTES: Final = 256
MAX_USER_PROPERTIES: Final = 16
MAX_USER_PROPERTIES_BYTES: Final = 2048
"""The UTF-8 bytes of all the names and values of one command's User Properties together."""
TYPING_STATES: Final = frozenset({"composing", "paused"})
PRESENCE_STATUSES: Final = frozenset({"online", "offline"})

GROUP_ID_RE: Final = re.compile(r"g:[A-Za-z0-9_-]{1,60}")
CONVERSATION_ID_RE: Final = re.compile(r"dm:[A-Za-z0-9_.-]{1,64}:[A-Za-z0-9_.-]{1,64}|g:[A-Za-z0-9_-]{1,60}")
"""A conversation id: ``dm:<user>:<user>`` (a 1-on-1 chat, the two ids in sorted order) or a group id."""
"""A group id (chosen by the server). It cannot be a user id: those have no ':'."""

GROUP_COMMAND_TYPES: Final = frozenset(
    {
        "group_create",
        "group_add",
        "group_remove",
        "group_promote",
        "group_rename",
        "group_leave",
        "group_list",
    }
)
PUSH_COMMAND_TYPES: Final = frozenset({"push_register", "push_unregister"})
PROFILE_COMMAND_TYPES: Final = frozenset({"profile_set", "profile_get"})
DEVICE_COMMAND_TYPES: Final = frozenset({"devices"})
REACTION_COMMAND_TYPES: Final = frozenset({"react"})
MESSAGE_CHANGE_COMMAND_TYPES: Final = frozenset({"edit", "delete"})
"""Commands that change a message already sent: an edit, a delete for everyone or for me."""
GROUP_SETTINGS_COMMAND_TYPES: Final = frozenset(
    {"group_set", "group_invite_link", "group_join", "group_requests", "group_approve", "group_reject"}
)
"""Group settings, invite links and join requests."""
TIMER_COMMAND_TYPES: Final = frozenset({"timer_set", "timer_get"})
"""Disappearing messages: set or read a conversation's timer."""
CHAT_COMMAND_TYPES: Final = frozenset({"chat_list", "mark_read"})
"""The chat list and the read position shared by a user's devices."""
SEARCH_COMMAND_TYPES: Final = frozenset({"search"})
"""Full-text search of the user's own messages, answered by ``search_results``."""
HISTORY_COMMAND_TYPES: Final = frozenset({"history"})
"""A page of one conversation's messages."""
PRIVACY_COMMAND_TYPES: Final = frozenset(
    {"privacy_set", "privacy_get", "group_invite_accept", "group_invite_decline"}
)
"""Privacy settings, and the answers to group invitations they lead to."""
BLOCK_COMMAND_TYPES: Final = frozenset({"block", "unblock", "blocks", "report"})
"""Blocking users and reporting them to the operators."""
COMMAND_TYPES: Final = (
    frozenset({"send", "receipt", "typing", "sync", "forward"})
    | GROUP_COMMAND_TYPES
    | PUSH_COMMAND_TYPES
    | PROFILE_COMMAND_TYPES
    | DEVICE_COMMAND_TYPES
    | REACTION_COMMAND_TYPES
    | MESSAGE_CHANGE_COMMAND_TYPES
    | GROUP_SETTINGS_COMMAND_TYPES
    | TIMER_COMMAND_TYPES
    | CHAT_COMMAND_TYPES
    | SEARCH_COMMAND_TYPES
    | HISTORY_COMMAND_TYPES
    | PRIVACY_COMMAND_TYPES
    | BLOCK_COMMAND_TYPES
)
EVENT_TYPES: Final = frozenset(
    {"message", "sent", "receipt", "typing", "error", "sync_page", "group", "groups", "ok", "devices"}
    | {"profile", "profiles", "deleted"}
    | {"reaction", "edited", "hidden"}
    | {"group_invite", "group_request", "group_requests"}
    | {"timer", "timer_info", "expired"}
    | {"chats", "read"}
    | {"search_results"}
    | {"history", "sync_reset"}
    | {"privacy", "group_invitation"}
    | {"blocking", "blocks"}
)
SEQUENCED_EVENT_TYPES: Final = frozenset(
    {"message", "sent", "receipt", "group", "profile", "deleted"}
    | {"reaction", "edited", "hidden"}
    | {"group_request"}
    | {"timer", "expired"}
    | {"privacy", "group_invitation"}  # a ``privacy`` answer to ``privacy_get`` is live (no cursor)
    | {"blocking"}
    | {"read"}
)
"""Inbox events that carry a ``cursor`` and are replayed by ``sync``; the rest are live only."""


class Status(IntEnum):
    """The status of a message for one recipient. It only moves forward."""

    SENT = 1
    DELIVERED = 2
    READ = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str) -> Status:
        return cls[label.upper()]


class ErrorCode(StrEnum):
    """Codes of ``error`` events: what was wrong with a command."""

    BAD_JSON = "bad_json"
    BAD_REQUEST = "bad_request"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    TOO_LARGE = "too_large"
    UNKNOWN_USER = "unknown_user"
    FORBIDDEN = "forbidden"
    NOT_RECIPIENT = "not_recipient"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    INTERNAL = "internal"
    UNKNOWN_GROUP = "unknown_group"
    NOT_MEMBER = "not_member"
    NOT_ADMIN = "not_admin"
    GROUP_FULL = "group_full"
    # media (answers of the HTTP media endpoint, and errors of the processing job)
    BAD_MEDIA = "bad_media"
    UNSUPPORTED_MEDIA = "unsupported_media"
    UNAUTHORIZED = "unauthorized"
    NOT_FOUND = "not_found"
    # changing a sent message (edit, delete for everyone) after the server's window for it
    TOO_LATE = "too_late"


class Topics:
    """Topic names for one deployment's prefixes."""

    __slots__ = ("prefix", "presence_prefix")

    def __init__(self, prefix: str = DEFAULT_PREFIX, presence_prefix: str = DEFAULT_PRESENCE_PREFIX) -> None:
        for name, value in (("prefix", prefix), ("presence_prefix", presence_prefix)):
            if not value or any(c in value for c in "+#") or value.startswith("$") or value.endswith("/"):
                raise ValueError(f"{name} {value!r} is not a usable MQTT topic prefix")
        if prefix == presence_prefix:
            raise ValueError("prefix and presence_prefix must differ")
        self.prefix = prefix
        self.presence_prefix = presence_prefix

    def inbox(self, user: str) -> str:
        return f"{self.prefix}/{user}/in"

    def outbox(self, user: str) -> str:
        return f"{self.prefix}/{user}/out"

    def presence(self, user: str) -> str:
        return f"{self.presence_prefix}/{user}"

    def presence_wildcard(self) -> str:
        return f"{self.presence_prefix}/+"

    def reply(self, user: str) -> str:
        """The user's response topic; ``reply/<anything>`` under it is the user's too."""
        return f"{self.prefix}/{user}/reply"

    def is_reply_of(self, user: str, topic: str, *, filter_: bool = False) -> bool:
        """Whether ``topic`` is ``user``'s response topic or one under it. A Response Topic is a
        topic name (no wildcards); with ``filter_`` it is a subscription's filter, and wildcards
        after ``reply/`` still match only the user's own response topics."""
        own = self.reply(user)
        if topic == own:
            return True
        if not topic.startswith(own) or topic[len(own) : len(own) + 1] != "/":
            return False
        return filter_ or not any(c in topic for c in "+#\0")

    def user_of_outbox(self, topic: str) -> str | None:
        """The user whose outbox ``topic`` is, or None."""
        head, sep, rest = topic.partition("/")
        if head != self.prefix or not sep:
            return None
        user, sep, tail = rest.partition("/")
        return user if sep and tail == "out" and is_valid_user_id(user) else None

    def user_of_presence(self, topic: str) -> str | None:
        head, sep, user = topic.partition("/")
        return user if head == self.presence_prefix and sep and is_valid_user_id(user) else None


def is_group_id(value: object) -> bool:
    return isinstance(value, str) and GROUP_ID_RE.fullmatch(value) is not None


def is_valid_user_id(value: object) -> bool:
    return isinstance(value, str) and USER_ID_RE.fullmatch(value) is not None


def encode(payload: dict[str, Any]) -> bytes:
    """Serialise a payload for the wire (compact UTF-8 JSON)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes | bytearray | str) -> Any:
    """Parse a payload; raises ValueError (json.JSONDecodeError, UnicodeDecodeError) when it is not JSON."""
    return json.loads(data)


@cache
def load_schema() -> dict[str, Any]:
    """The JSON Schema of every payload (commands, events, presence)."""
    text = (Path(__file__).parent / "schema" / "mqchat-v1.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def dm_conversation_id(a: str, b: str) -> str:
    """The conversation id of the 1-on-1 chat of users ``a`` and ``b`` (the same whichever side asks)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"
