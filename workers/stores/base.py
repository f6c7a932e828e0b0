"""The store interface: users and credentials, messages, receipts and every user's inbox log.

The inbox log is the source of truth for delivery: each event a user must see (a message for
them, the ``sent`` of their own message, a receipt for a message they sent) is appended to their
log with the next cursor (1, 2, 3, ... per user, no gaps) in the same transaction that changes the
state. Live delivery publishes those entries; ``sync`` replays them after a cursor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from client_sdk.contract import Status


@dataclass(frozen=True, slots=True)
class StoredMessage:
    id: str
    conversation: str
    seq: int
    sender: str
    recipient: str
    text: str
    ts: float
    media: dict[str, Any] | None = None
    """The wire ``media`` object (link, type, size, dimensions, thumbnail) of an image or video."""

    def wire(self) -> dict[str, Any]:
        body = {
            "id": self.id,
            "conversation": self.conversation,
            "seq": self.seq,
            "from": self.sender,
            "to": self.recipient,
            "text": self.text,
            "ts": self.ts,
        }
        if self.media is not None:
            body["media"] = self.media
        return body


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One event in ``user``'s inbox log; ``payload`` is the wire event (with its cursor)."""

    user: str
    cursor: int
    payload: dict[str, Any]


InboxItem = tuple[str, str, str | None, dict[str, Any]]
"""``(user, kind, message_id, body)``: an event to append to ``user``'s inbox log (the store adds
the cursor)."""


@dataclass(frozen=True, slots=True)
class AcceptResult:
    message: StoredMessage
    duplicate: bool
    """The command id was seen before: nothing new was stored."""
    entries: list[InboxEntry]
    """New inbox entries (empty for a duplicate)."""
    sent: InboxEntry
    """The sender's ``sent`` entry (the original one for a duplicate)."""


@dataclass(frozen=True, slots=True)
class ReceiptResult:
    entries: list[InboxEntry] = field(default_factory=list)
    not_recipient: list[str] = field(default_factory=list)
    """Message ids that exist but were not sent to this user, or do not exist."""


@dataclass(frozen=True, slots=True)
class GroupInfo:
    id: str
    name: str
    members: list[str]
    """In the order they joined."""
    admins: list[str]

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "members": list(self.members), "admins": list(self.admins)}


@dataclass(frozen=True, slots=True)
class GroupChange:
    group: GroupInfo
    entries: list[InboxEntry]
    """The ``group`` event in the inbox of every member and of whoever left or was removed."""


@dataclass(frozen=True, slots=True)
class PushToken:
    token: str
    platform: str
    preview: bool
    """Whether pushes to this device may show the sender and the text."""


@dataclass(frozen=True, slots=True)
class SmsRecord:
    user: str
    phone: str
    body: str
    ts: float


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: str
    created_at: float
    last_seen: float | None
    credentials: int


class TextSend(NamedTuple):
    """A ``send`` command of a text message to a user (see ``Store.accept_texts``)."""

    sender: str
    command_id: str
    recipient: str
    text: str


class ReceiptRequest(NamedTuple):
    """A ``receipt`` command (see ``Store.apply_receipts_of``)."""

    user: str
    status: Status
    message_ids: Sequence[str]


def new_message_id() -> str:
    """32 hex digits: the time in milliseconds (12), then 80 random bits. Ids made later sort
    later, so a store's indexes on message ids grow at one end: with random ids every message
    dirtied a page of its own in each of them (a write per page at every commit)."""
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def dm_conversation(a: str, b: str) -> str:
    """The conversation id of two users' 1-on-1 chat (the same whichever side asks)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


class Store(Protocol):
    """What the workers and the broker need from storage. Implementations are thread-safe."""

    def create_schema(self) -> None: ...
    def close(self) -> None: ...
    def batch(self) -> AbstractContextManager[None]:
        """Group the calls this thread makes inside the block (a batch of commands): each call
        still succeeds or fails on its own, and what they stored becomes visible (is committed)
        when the block ends. An exception out of the block undoes the calls of the block that
        the backend had not committed yet, so the caller must announce nothing before it ends;
        running the block again is safe (every write is idempotent). A batch inside a batch
        joins it. (SQL: one transaction, a savepoint per call. MongoDB: a transaction per call.)"""
        ...

    # users and credentials
    def create_user(self, user: str, *, now: float) -> None: ...
    def delete_user(self, user: str) -> None: ...
    def user_exists(self, user: str) -> bool: ...
    def list_users(self) -> list[UserInfo]: ...
    def add_credential(self, user: str, *, kind: str, secret_hash: str, now: float) -> int: ...
    def remove_credentials(self, user: str) -> int: ...
    def credential_hashes(self, user: str) -> list[tuple[str, str]]:
        """(kind, hash) of every credential of an enabled user; empty for an unknown user."""
        ...

    def set_last_seen(self, user: str, ts: float) -> None: ...
    def last_seen_all(self) -> dict[str, float]: ...
    def can_see_presence(self, watcher: str, user: str) -> bool:
        """Whether ``watcher`` is ``user`` or a contact of it (a 1-on-1 conversation, a shared group)."""
        ...

    # messages
    def accept_message(
        self,
        *,
        sender: str,
        command_id: str,
        recipient: str,
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
    ) -> AcceptResult:
        """Store a message to a user, or to a group id (one copy in each other member's inbox).

        ``media`` is the wire object of an image or video (``text`` is then its caption, maybe empty);
        its object keys are recorded so that :meth:`can_read_media` knows who may download them.
        """
        ...

    def accept_texts(self, sends: Sequence[TextSend], *, now: float) -> list[AcceptResult] | None:
        """Store several new 1-on-1 text messages at once, as ``accept_message`` would one by one, in
        order; None, with nothing stored, when that is not possible in one go (a resend, an unknown
        recipient, a first message of a conversation, or a backend without it): then store them one
        by one."""
        ...

    def sent_entry(self, sender: str, command_id: str) -> InboxEntry | None:
        """The ``sent`` entry of the message ``sender`` stored for ``command_id``, if there is one."""
        ...

    def check_recipient(self, sender: str, recipient: str) -> None:
        """Raise what accept_message would for ``recipient`` (UnknownUser, unknown_group, not_member)."""
        ...

    def can_read_media(self, user: str, key: str) -> bool:
        """Whether ``user`` sent or received a message with the media object ``key``."""
        ...

    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult: ...
    def apply_receipts_of(
        self, requests: Sequence[ReceiptRequest], *, now: float
    ) -> list[ReceiptResult] | None:
        """Apply several users' receipts for 1-on-1 messages at once, as ``apply_receipts`` would one
        by one, in order; None, with nothing changed, when that is not possible in one go (a group
        message, a message named twice or not to that user, or a backend without it): then apply
        them one by one."""
        ...

    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]:
        """Entries of ``user`` with cursor > ``after``, in order, and whether more follow."""
        ...

    # groups (errors are CommandError with the wire code: not_member, not_admin, group_full...)
    def create_group(
        self, *, creator: str, name: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange: ...
    def add_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange: ...
    def remove_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str
    ) -> GroupChange: ...
    def promote(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str
    ) -> GroupChange: ...
    def rename_group(self, *, group: str, actor: str, name: str, now: float, ref: str) -> GroupChange: ...
    def leave_group(self, *, group: str, user: str, now: float, ref: str) -> GroupChange: ...
    def groups_of(self, user: str) -> list[GroupInfo]: ...

    # push tokens, phones and notification state
    def register_push_token(
        self, *, user: str, token: str, platform: str, preview: bool, now: float
    ) -> None: ...
    def unregister_push_token(self, *, user: str, token: str) -> bool: ...
    def remove_push_token(self, token: str) -> None: ...
    def push_tokens(self, user: str) -> list[PushToken]: ...
    def set_phone(self, user: str, phone: str | None) -> None: ...
    def phone_of(self, user: str) -> str | None: ...
    def note_waiting(self, *, user: str, message_id: str) -> tuple[bool, bool]: ...
    def take_pending(self, user: str) -> list[str]: ...
    def sms_checked(self, user: str) -> float: ...
    def sms_sent(self, user: str, *, until: float) -> None: ...
    def undelivered(self, *, user: str, message_ids: Sequence[str]) -> list[StoredMessage]: ...
    def undelivered_since(self, *, user: str, since: float) -> list[StoredMessage]: ...
    def record_sms(self, *, user: str, phone: str, body: str, now: float) -> None: ...
    def sms_outbox(self, user: str | None = None) -> list[SmsRecord]: ...
