"""The values the stores take and return, the same for every backend (see interfaces)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from client_sdk.contract import Status

__all__ = [
    "AcceptResult",
    "BlockChange",
    "ChatSummary",
    "Deletion",
    "DeviceInfo",
    "DeviceSeen",
    "Expiry",
    "GroupChange",
    "GroupInfo",
    "GroupUpdate",
    "InboxEntry",
    "InboxItem",
    "JoinRequest",
    "MessageChange",
    "MessageFacts",
    "Profile",
    "ProfileChange",
    "PushToken",
    "ReactionChange",
    "ReadChange",
    "ReceiptRequest",
    "ReceiptResult",
    "ReportInfo",
    "SmsRecord",
    "StoredMessage",
    "SyncPage",
    "TextSend",
    "TimerChange",
    "UserInfo",
]


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
    reply: dict[str, Any] | None = None
    """The wire ``reply`` object (the quoted message: id, from, seq, excerpt) of a reply."""
    forwarded: bool = False
    """Sent on from another message (the ``forward`` command)."""
    expires_at: float | None = None
    """When a disappearing message expires (its conversation had a timer when it was sent)."""

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
        if self.reply is not None:
            body["reply"] = self.reply
        if self.forwarded:
            body["forwarded"] = True
        if self.expires_at is not None:
            body["expires_at"] = self.expires_at
        return body


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One event in ``user``'s inbox log; ``payload`` is the wire event (with its cursor)."""

    user: str
    cursor: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SyncPage:
    """A page of a user's inbox log for ``sync`` (see ``Messages.sync_page``)."""

    entries: list[Any]
    """The events as the wire has them: each a dict, or the JSON text a store kept, ready to be
    written into the page as it is (an ``orjson.Fragment``), not parsed to be written again."""
    first: int | None
    """The cursor of the first entry (None: no entry)."""
    last: int | None
    """The cursor of the last entry."""
    more: bool
    """More entries follow (past ``limit``, or past ``max_bytes``)."""


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
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The wire profile (name, about, avatar) of each member who set one (see Profile.card)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The group's settings that are set (rules.group_settings): ``description``, ``icon``,
    ``only_admins_send``, ``approval``; a setting left out is off (or empty)."""

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "members": list(self.members),
            "admins": list(self.admins),
        }
        if self.profiles:
            body["profiles"] = self.profiles
        body.update(self.settings)
        return body


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


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """One device of a user (the ``<device>`` of its client id ``<user>/<device>``)."""

    device: str
    first_seen: float
    last_seen: float
    platform: str | None
    """From the device's push registration (``android``, ``ios``, ``web``); None before one."""
    online: bool
    """Connected to a node now, as the nodes last recorded it."""

    def wire(self) -> dict[str, object]:
        return {
            "device": self.device,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "platform": self.platform,
            "online": self.online,
        }


class DeviceSeen(NamedTuple):
    """A device connected to ``node`` (``online``) or left it, at ``ts``; or, with ``platform``
    set, said which platform it is (its push registration)."""

    user: str
    device: str
    ts: float
    node: str
    online: bool
    platform: str | None = None


class SessionMark(NamedTuple):
    """How far the persistent MQTT session of ``<user>/<device>`` got: the highest cursor up to
    which it acknowledged every event, the highest cursor sent to it, and when it expires unused."""

    user: str
    device: str
    acked: int
    sent: int
    expires_at: float


class ResumedSession(NamedTuple):
    """A device's persistent session as a connect finds it: replay after ``acked``; what is at most
    ``sent`` was sent before (a redelivery: DUP). ``present``: it existed (CONNACK session present);
    else it was just made, at the user's last inbox cursor."""

    acked: int
    sent: int
    present: bool


class TextSend(NamedTuple):
    """A ``send`` command of a text message to a user (see ``Messages.accept_texts``)."""

    sender: str
    command_id: str
    recipient: str
    text: str


class ReceiptRequest(NamedTuple):
    """A ``receipt`` command (see ``Messages.apply_receipts_of``)."""

    user: str
    status: Status
    message_ids: Sequence[str]


@dataclass(frozen=True, slots=True)
class Profile:
    """What a user shows their contacts: a display name, an about text and an avatar image."""

    user: str
    name: str | None = None
    about: str | None = None
    avatar: dict[str, Any] | None = None
    """The wire object of the avatar image (key, type, size, width, height)."""
    ts: float = 0.0
    """When it last changed (0: never set)."""

    def card(self) -> dict[str, Any]:
        """The profile without the user id, as group snapshots carry it per member."""
        return {"name": self.name, "about": self.about, "avatar": self.avatar, "ts": self.ts}

    def wire(self) -> dict[str, Any]:
        return {"user": self.user, **self.card()}


@dataclass(frozen=True, slots=True)
class ProfileChange:
    profile: Profile
    """The profile after the change."""
    entries: list[InboxEntry]
    """The ``profile`` event in the inbox of the user and of each of their contacts."""
    replaced: list[str]
    """Object keys of an avatar the change replaced or cleared: to delete once it is committed."""


@dataclass(frozen=True, slots=True)
class Deletion:
    """What ``MessageDeletion.delete_for_everyone`` did."""

    changed: bool
    """False when the message was a tombstone already: nothing was written."""
    message: dict[str, Any]
    """The tombstone (the wire form of the deleted message)."""
    entries: list[InboxEntry] = field(default_factory=list)
    """The new ``deleted`` events, to publish once the change is committed."""
    media_keys: list[str] = field(default_factory=list)
    """The stored objects the message owned, to remove from media storage once committed."""


@dataclass(frozen=True, slots=True)
class ReactionChange:
    """What ``Reactions.react`` did."""

    changed: bool
    """False when the reaction was already so (the same emoji, or the same command sent again):
    nothing was written."""
    reactions: dict[str, str]
    """The message's summary after the command: each reacting user's emoji."""
    entries: list[InboxEntry] = field(default_factory=list)
    """The new ``reaction`` events, to publish once the change is committed."""


@dataclass(frozen=True, slots=True)
class MessageFacts:
    """What the rules of changing a sent message look at (``rules.edits``, ``rules.deletion``)."""

    id: str
    conversation: str
    seq: int
    sender: str
    recipient: str
    ts: float
    """When it was sent."""
    deleted: bool
    """Deleted for everyone already (a tombstone)."""
    media: bool
    """An image or video (its ``text`` is a caption)."""
    holders: tuple[str, ...]
    """Its sender and everyone who got a copy: who can see it."""
    admins: tuple[str, ...] = ()
    """The current admins of the group it was sent to (none for a 1-on-1 message)."""


@dataclass(frozen=True, slots=True)
class MessageChange:
    """What an edit or a delete for me did."""

    changed: bool
    """False: this command (same command id), or the same change, was made before: nothing written."""
    message: dict[str, Any] = field(default_factory=dict)
    """The message as the user who changed it sees it now (empty when nothing changed)."""
    entries: list[InboxEntry] = field(default_factory=list)
    """The new ``edited`` or ``hidden`` events, to publish once the change is committed."""


# ---------------------------------------------------------------- group settings and invites
@dataclass(frozen=True, slots=True)
class GroupUpdate:
    """A change of a group's settings, a join by invite, or an admin's decision on a request."""

    entries: list[InboxEntry]
    """The events it put in inboxes (``group``, ``group_request``); none when nothing changed."""
    changed: bool
    """False: nothing changed (the same values, a resend): no event, the answer is ``ok``."""
    state: str = ""
    """Of a join or a decision: ``joined`` (a member now), ``pending`` (asked to join),
    ``member`` (was one already), ``rejected``; else empty."""
    replaced: list[str] = field(default_factory=list)
    """Stored objects nothing uses any more (the icon a new one replaced), to delete."""


@dataclass(frozen=True, slots=True)
class JoinRequest:
    user: str
    ts: float

    def wire(self) -> dict[str, Any]:
        return {"user": self.user, "ts": self.ts}


# ---------------------------------------------------------------- disappearing messages
@dataclass(frozen=True, slots=True)
class TimerChange:
    """What ``Timers.set_timer`` did."""

    changed: bool
    """False: the conversation's timer had that value already; nothing was written."""
    seconds: int
    """The conversation's timer now (0: off)."""
    conversation: str
    """The conversation's id (``dm:<a>:<b>`` or the group id)."""
    entries: list[InboxEntry] = field(default_factory=list)
    """The new ``timer`` events, to publish once the change is committed."""


@dataclass(frozen=True, slots=True)
class Expiry:
    """What one ``Timers.expire_due`` sweep did."""

    expired: list[str] = field(default_factory=list)
    """The ids of the messages that expired (scrubbed from the store) in this sweep."""
    entries: list[InboxEntry] = field(default_factory=list)
    """The new ``expired`` events (one per user), to publish once committed."""
    media_keys: list[str] = field(default_factory=list)
    """The stored objects no message uses any more, to remove from media storage."""


# ---------------------------------------------------------------- blocking and reports
@dataclass(frozen=True, slots=True)
class BlockChange:
    """What a block or an unblock did."""

    changed: bool
    """False: the user was blocked (unblocked) already: nothing written."""
    entries: list[InboxEntry] = field(default_factory=list)
    """The ``blocking`` event for the blocker's inbox."""


@dataclass(frozen=True, slots=True)
class ReportInfo:
    """A report of a user to the operators: copies of the messages as the reporter saw them."""

    id: int
    reporter: str
    user: str
    reason: str
    messages: list[dict[str, Any]]
    ts: float

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "reporter": self.reporter,
            "user": self.user,
            "reason": self.reason,
            "messages": self.messages,
            "ts": self.ts,
        }


# ---------------------------------------------------------------- chat list and read state
@dataclass(frozen=True, slots=True)
class ChatSummary:
    """One conversation of a user's chat list, as that user sees it (see rules.chats)."""

    conversation: str
    ts: float
    """Its last activity this user can see: its last message they can see, else when they joined."""
    last_seq: int
    """The seq of that last message (0: none)."""
    read_seq: int
    unread: int
    """Messages this user received (not sent) with a seq past ``read_seq``."""
    last_message: dict[str, Any] | None
    """The last message as this user sees it (edited, tombstone, hidden...), wire form."""
    group_name: str | None = None
    """A group's name (None: a 1-on-1 conversation)."""
    member: bool = True
    """Whether the user is still a member of the group (a group they left stays in their list)."""
    presence: dict[str, Any] | None = None
    """1-on-1: the peer's ``{"status", "last_seen"}`` when this user may see it."""


@dataclass(frozen=True, slots=True)
class ReadChange:
    """A user's read position of a conversation moved forward (``entries``: the ``read`` event in
    their own inbox), or did not (``changed`` False: it was there or past it already)."""

    changed: bool
    entries: list[InboxEntry] = field(default_factory=list)
