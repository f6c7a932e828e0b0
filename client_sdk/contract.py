"""The mqchat wire contract, version 1: topics, payload types, statuses and error codes.

The SDK owns this module and the server imports it, so both sides agree by construction.
The payload shapes are defined once, in ``schema/mqchat-v1.schema.json`` (JSON Schema 2020-12),
which non-Python clients can use as is; :func:`load_schema` returns it.

Topics (``prefix`` and ``presence_prefix`` are server settings, ``chat`` and ``presence`` by default):

- ``<prefix>/<user>/in``: the user's inbox. Only that user may subscribe; only the server publishes.
- ``<prefix>/<user>/out``: the user's commands. Only that user may publish.
- ``<presence_prefix>/<user>``: retained presence, published only by the server.
"""

from __future__ import annotations

import json
import re
from enum import IntEnum, StrEnum
from functools import cache
from pathlib import Path
from typing import Any, Final

__all__ = [
    "COMMAND_ID_RE",
    "COMMAND_TYPES",
    "DEFAULT_MEDIA_PORT",
    "DEFAULT_PREFIX",
    "DEFAULT_PRESENCE_PREFIX",
    "DEVICE_COMMAND_TYPES",
    "DEVICE_ID_RE",
    "EVENT_TYPES",
    "GROUP_COMMAND_TYPES",
    "GROUP_ID_RE",
    "HISTORY_COMMAND_TYPES",
    "MAX_CAPTION_LENGTH",
    "MAX_RECEIPT_MESSAGES",
    "MAX_SYNC_LIMIT",
    "MAX_TEXT_LENGTH",
    "MESSAGE_CHANGE_COMMAND_TYPES",
    "PRESENCE_STATUSES",
    "PROFILE_COMMAND_TYPES",
    "PUSH_COMMAND_TYPES",
    "REACTION_COMMAND_TYPES",
    "SEARCH_COMMAND_TYPES",
    "SEQUENCED_EVENT_TYPES",
    "TYPING_STATES",
    "USER_ID_RE",
    "VERSION",
    "ErrorCode",
    "Status",
    "Topics",
    "decode",
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
TYPING_STATES: Final = frozenset({"composing", "paused"})
PRESENCE_STATUSES: Final = frozenset({"online", "offline"})

GROUP_ID_RE: Final = re.compile(r"g:[A-Za-z0-9_-]{1,60}")
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
SEARCH_COMMAND_TYPES: Final = frozenset({"search"})
"""Full-text search of the user's own messages (issue 23), answered by ``search_results``."""
HISTORY_COMMAND_TYPES: Final = frozenset({"history"})
"""A page of one conversation's messages (issue 23)."""
COMMAND_TYPES: Final = (
    frozenset({"send", "receipt", "typing", "sync", "forward"})
    | GROUP_COMMAND_TYPES
    | PUSH_COMMAND_TYPES
    | PROFILE_COMMAND_TYPES
    | DEVICE_COMMAND_TYPES
    | REACTION_COMMAND_TYPES
    | MESSAGE_CHANGE_COMMAND_TYPES
    | SEARCH_COMMAND_TYPES
    | HISTORY_COMMAND_TYPES
)
EVENT_TYPES: Final = frozenset(
    {"message", "sent", "receipt", "typing", "error", "sync_page", "group", "groups", "ok", "devices"}
    | {"profile", "profiles", "deleted"}
    | {"reaction", "edited", "hidden"}
    | {"search_results"}
    | {"history", "sync_reset"}
)
SEQUENCED_EVENT_TYPES: Final = frozenset(
    {"message", "sent", "receipt", "group", "profile", "deleted"} | {"reaction", "edited", "hidden"}
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
