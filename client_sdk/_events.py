"""What the server tells a client, as typed, immutable events; and the parsing of wire payloads into them.

Every parser takes the already JSON-decoded payload and raises ``ValueError`` naming the first
problem when it does not follow ``docs/protocol.md``. Unknown extra fields are ignored, so a newer
server that adds fields does not break older clients.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias, TypeGuard, TypeVar

from client_sdk._media import Media, parse_media
from client_sdk._privacy import GroupInvitation, PrivacyChanged, PrivacySettings, parse_settings
from client_sdk._replies import Reply, parse_reply
from client_sdk.contract import (
    PRESENCE_STATUSES,
    SEQUENCED_EVENT_TYPES,
    TYPING_STATES,
    VERSION,
    Status,
    is_group_id,
)

__all__ = [
    "BlockList",
    "Blocking",
    "Chat",
    "ChatPage",
    "Device",
    "DeviceList",
    "Event",
    "Group",
    "GroupEvent",
    "GroupInvite",
    "GroupList",
    "HistoryPage",
    "JoinRequest",
    "JoinRequestList",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageHidden",
    "MessagesExpired",
    "Presence",
    "PresenceRefused",
    "PrivacyAnswer",
    "Profile",
    "ProfileChanged",
    "ProfileList",
    "Reaction",
    "ReadState",
    "Receipt",
    "ReceiptState",
    "SearchResults",
    "Sent",
    "Sequenced",
    "ServerError",
    "SyncPage",
    "SyncReset",
    "TimerChanged",
    "TimerInfo",
    "Typing",
    "cursor_of",
    "parse_group",
    "parse_inbox",
    "parse_message",
    "parse_presence",
    "parse_profile",
    "parse_sequenced",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Message:
    """A stored chat message.

    ``sender`` and ``recipient`` are the wire fields ``from`` and ``to``; ``recipient`` is a user
    id, or a group id (``g:...``) for a group message. ``seq`` numbers the message within its
    ``conversation``; ``ts`` is the server's store time (Unix seconds); ``cursor`` is the position
    in this user's inbox of the event that carried the message. ``media`` is the image or video
    of a media message (``text`` is then its caption, possibly empty): see
    :meth:`client_sdk.Client.download`. ``deleted`` is true for a message deleted for everyone
    (a tombstone: ``text`` is empty and ``media`` None; see :class:`MessageDeleted`).
    ``reactions`` is each user's reaction to it (user id → emoji) when the event was written, or
    as sync returns it now; later changes come as :class:`Reaction` events.
    ``edited_at`` is when its sender last edited it (None: never; ``text`` is the latest text, see
    :class:`MessageEdited`). ``hidden`` is true for a message this user deleted for themselves (no
    text, no media: an app leaves it out; see :class:`MessageHidden`).
    ``reply`` is the quote of the message this one answers (see :meth:`client_sdk.Client.reply`),
    ``forwarded`` true for a message forwarded from another (:meth:`client_sdk.Client.forward`).
    ``expires_at`` is when a disappearing message expires (None: it does not; see
    :meth:`client_sdk.Client.set_timer`); ``expired`` is true for one that did (no text, no
    media: an app leaves it out; see :class:`MessagesExpired`).
    """

    id: str
    conversation: str
    seq: int
    sender: str
    recipient: str
    text: str
    ts: float
    cursor: int
    media: Media | None = None
    deleted: bool = False
    reactions: Mapping[str, str] = field(default_factory=dict, hash=False)
    edited_at: float | None = None
    hidden: bool = False
    reply: Reply | None = None
    forwarded: bool = False
    expires_at: float | None = None
    expired: bool = False

    @property
    def group(self) -> str | None:
        """The group id when this is a group message, else None."""
        return self.recipient if is_group_id(self.recipient) else None


@dataclass(frozen=True, slots=True)
class Sent:
    """The server stored a message this user sent, from this or another device; ``ref`` is the command id."""

    ref: str
    message: Message
    cursor: int


@dataclass(frozen=True, slots=True)
class Receipt:
    """A message this user sent moved forward for one recipient: ``status`` (delivered or read) by ``by``.

    ``all`` is true when every recipient has now reached ``status``: always for a 1-on-1 message;
    for a group message only on the receipt of the last member to get there (the two ticks).

    The server tells several members' receipts of a group message in one event (``also_by``: the
    members after ``by``); the client hands them on one by one (:meth:`per_member`), each with the
    event's cursor, so ``also_by`` is empty in what an app gets.
    """

    message_id: str
    conversation: str
    seq: int
    status: Status
    by: str
    ts: float
    cursor: int
    all: bool
    also_by: tuple[str, ...] = ()

    def per_member(self) -> list[Receipt]:
        """One receipt per member the event names, in its order; ``all`` on the last only (the
        event completed a status once every member it names was there)."""
        if not self.also_by:
            return [self]
        members = (self.by, *self.also_by)
        last = len(members) - 1
        return [
            replace(self, by=member, also_by=(), all=self.all and index == last)
            for index, member in enumerate(members)
        ]


@dataclass(frozen=True, slots=True)
class Profile:
    """What a user shows their contacts: a display name, an about text and an avatar (each None
    when not set). ``avatar`` is a square JPEG: fetch it with :meth:`client_sdk.Client.download`;
    ``ts`` is when the profile last changed (0: never)."""

    user: str
    name: str | None = None
    about: str | None = None
    avatar: Media | None = None
    ts: float = 0.0


@dataclass(frozen=True, slots=True)
class ProfileChanged:
    """A user's profile changed (this user's own too, from any device: ``ref`` is then the command
    id of the change). Contacts get it, live or by sync."""

    profile: Profile
    ref: str | None
    ts: float
    cursor: int


@dataclass(frozen=True, slots=True)
class ProfileList:
    """The answer to a ``profile_get``: the profiles asked for that this user may see."""

    ref: str
    profiles: tuple[Profile, ...]


@dataclass(frozen=True, slots=True)
class MessageDeleted:
    """A message this user sent or received was deleted for everyone, by ``by`` (``"admin"``: the
    service's moderation, else a user id). ``message`` is its tombstone (``deleted`` true, no text,
    no media): an app that keeps messages replaces the one with id ``message_id`` by it."""

    message_id: str
    conversation: str
    seq: int
    by: str
    ts: float
    cursor: int
    message: Message
    ref: str | None = None
    """The command id when this user deleted it (from any device), else None."""


@dataclass(frozen=True, slots=True)
class MessageEdited:
    """A message this user sent or received was edited by its sender ``by``: ``text`` is the new
    text (or caption), ``message`` the message as it is now (``edited_at`` set). An app that keeps
    messages replaces the one with id ``message_id`` by it. ``ref`` is the command id when this
    user edited it (from any device), else None."""

    message_id: str
    conversation: str
    seq: int
    by: str
    text: str
    edited_at: float
    ts: float
    cursor: int
    message: Message
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class MessageHidden:
    """This user deleted a message for themselves (from any device; ``ref`` is the command id): an
    app removes the message ``message_id`` from view. Nobody else is told."""

    message_id: str
    conversation: str
    seq: int
    ts: float
    cursor: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    """A group as the server last described it: ``members`` and ``admins`` are user ids;
    ``profiles`` the profile of each member who set one (see :meth:`profile`)."""

    id: str
    name: str
    members: tuple[str, ...]
    admins: tuple[str, ...]
    profiles: tuple[Profile, ...] = ()
    description: str | None = None
    """The group's description (None: none set)."""
    icon: Media | None = None
    """The group's icon, a square JPEG: fetch it with :meth:`client_sdk.Client.download`."""
    only_admins_send: bool = False
    """Whether only admins may send to the group (a member's send is refused with ``not_admin``)."""
    approval: bool = False
    """Whether joining by an invite link needs an admin's approval."""

    def profile(self, user: str) -> Profile | None:
        """The profile of member ``user`` as the group snapshot carried it (None: none set)."""
        return next((p for p in self.profiles if p.user == user), None)


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """A group changed: ``action`` (``created``, ``added``, ``removed``, ``left``, ``promoted`` or
    ``renamed``) done by ``by``, about the users ``affected``; ``group`` is the group after the change.

    ``ref`` is the command id when this user made the change (from any of its devices), else None.
    Whoever was removed or left gets the event too; their ``group`` no longer lists them.
    """

    action: str
    group: Group
    by: str
    affected: tuple[str, ...]
    ref: str | None
    ts: float
    cursor: int
    invited: tuple[str, ...] = ()
    """In the adder's own event: users who were not added but invited (their privacy setting)."""


@dataclass(frozen=True, slots=True)
class GroupInvite:
    """A group's invite link as its admin made it (the answer to ``group_invite_link``): whoever
    holds ``code`` may join (:meth:`client_sdk.Client.join_group`). ``code`` None: revoked.
    ``expires_at``: Unix seconds, None: until replaced or revoked."""

    ref: str
    group: str
    code: str | None
    expires_at: float | None


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """A request to join a group that needs approval: to the user who asked and to every admin
    (``state`` ``pending``), and again when an admin rejects it (``rejected``, ``by`` the admin).
    An approval is a :class:`GroupEvent` (action ``approved``)."""

    group: str
    name: str
    user: str
    state: str
    by: str | None
    ref: str | None
    ts: float
    cursor: int


@dataclass(frozen=True, slots=True)
class JoinRequestList:
    """The pending requests to join a group (internal: :meth:`client_sdk.Client.group_requests`)."""

    ref: str
    group: str
    requests: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Presence:
    """A user's presence: ``status`` is ``"online"`` or ``"offline"``; ``last_seen`` is Unix seconds,
    None when the user's privacy settings keep it from their watchers."""

    user: str
    status: str
    last_seen: float | None

    @property
    def online(self) -> bool:
        """Whether at least one device of the user is connected."""
        return self.status == "online"


@dataclass(frozen=True, slots=True)
class PresenceRefused:
    """The server refused to let this user watch ``user``'s presence (not a contact); the client
    stops watching it. ``Client.watch_presence`` raises :class:`client_sdk.PresenceForbidden` for
    the same refusal when it is connected; this event also reports refusals after a reconnect."""

    user: str


@dataclass(frozen=True, slots=True)
class Typing:
    """User ``sender`` is typing to this user, or in group ``group`` when set: ``state`` is
    ``"composing"`` or ``"paused"``."""

    sender: str
    state: str
    group: str | None = None


@dataclass(frozen=True, slots=True)
class ServerError:
    """The server refused a command: ``ref`` is its id (None when unreadable), ``code`` an ErrorCode value."""

    ref: str | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class SyncPage:
    """One page of the answer to a ``sync`` command (internal: the client turns its entries into events).

    ``entries`` pairs every entry's cursor with the parsed event, or with None when the entry has a
    usable cursor but is otherwise malformed or of a type this SDK does not know (its cursor is
    then skipped, so that one bad entry does not stall the inbox).
    """

    ref: str
    entries: tuple[tuple[int, Sequenced | None], ...]
    more: bool
    cursor: int


@dataclass(frozen=True, slots=True)
class GroupList:
    """The answer to a ``group_list`` command (internal: the client returns it from ``groups()``)."""

    ref: str
    groups: tuple[Group, ...]


# ---- search
@dataclass(frozen=True, slots=True)
class SearchResults:
    """A page of search hits, newest first (see :meth:`client_sdk.Client.search`): each message as
    this user sees it now (its latest text, reactions...; ``cursor`` 0: it came with no inbox
    event). ``more``: older hits remain; pass ``next`` as ``before`` to get them."""

    ref: str
    hits: tuple[Message, ...]
    more: bool
    next: str | None


@dataclass(frozen=True, slots=True)
class Device:
    """One of this user's devices (the ``<device>`` of a client id ``<user>/<device>``)."""

    device: str
    first_seen: float
    last_seen: float
    """The device's last connect or disconnect."""
    platform: str | None
    """From its push registration (``android``, ``ios``, ``web``); None before one."""
    online: bool


@dataclass(frozen=True, slots=True)
class DeviceList:
    """The answer to a ``devices`` command (internal: the client returns it from ``devices()``)."""

    ref: str
    devices: tuple[Device, ...]


@dataclass(frozen=True, slots=True)
class Reaction:
    """A reaction to a message this user sent or got changed: ``by`` reacted with ``emoji``, or
    removed their reaction (``emoji`` None). ``reactions`` is the message's whole summary after the
    change (user id → emoji; empty when nobody reacts any more): an app that keeps messages sets
    it on the message ``message_id``. ``ref`` is the command id on this user's own changes (from
    any of their devices), else None."""

    message_id: str
    conversation: str
    seq: int
    by: str
    emoji: str | None
    reactions: Mapping[str, str] = field(hash=False)
    ref: str | None
    ts: float
    cursor: int


@dataclass(frozen=True, slots=True)
class PrivacyAnswer:
    """The live answer to ``privacy_get`` (internal: the client returns its settings)."""

    ref: str
    settings: PrivacySettings


@dataclass(frozen=True, slots=True)
class Blocking:
    """This user blocked (``blocked`` True) or unblocked ``user``, from any of their devices.
    ``ref`` is the command id (None when the server made the change)."""

    user: str
    blocked: bool
    ref: str | None
    ts: float
    cursor: int


@dataclass(frozen=True, slots=True)
class BlockList:
    """The answer to a ``blocks`` command (internal: the client returns it from ``blocked()``)."""

    ref: str
    users: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Chat:
    """One conversation of this user's chat list (:meth:`client_sdk.Client.chats`), as this user
    sees it: ``kind`` ``"direct"`` (with ``peer``, and the peer's ``presence`` when this user may
    see it) or ``"group"`` (with ``group``, its ``name``, and ``member`` False for a group this
    user left: they see what came while they were in it). ``last_message`` is the last message
    this user can see as it is now (a tombstone, hidden, edited...), None for none; ``unread`` the
    messages they got (not sent) past ``read_seq``."""

    conversation: str
    kind: str
    last_message: Message | None
    last_seq: int
    read_seq: int
    unread: int
    ts: float
    """The chat's last activity: its last message this user can see, else when they joined."""
    peer: str | None = None
    group: str | None = None
    name: str | None = None
    member: bool = True
    presence: Presence | None = None


@dataclass(frozen=True, slots=True)
class ChatPage:
    """A page of the chat list, newest activity first; ``next`` asks for the following page
    (``client.chats(before=page.next)``), None on the last one. Iterating gives the chats."""

    chats: tuple[Chat, ...]
    next: str | None
    ref: str = ""

    def __iter__(self) -> Iterator[Chat]:
        return iter(self.chats)

    def __len__(self) -> int:
        return len(self.chats)


@dataclass(frozen=True, slots=True)
class ReadState:
    """This user read ``conversation`` up to ``read_seq`` on one of their devices (a read receipt
    or :meth:`client_sdk.Client.mark_conversation_read`): an app clears that chat's unread
    messages up to there. ``ref`` is the ``mark_read`` command id, else None."""

    conversation: str
    read_seq: int
    ts: float
    cursor: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Ok:
    """The server did a command that has no other answer (internal: e.g. ``register_push``)."""

    ref: str


# ---------------------------------------------------------------- disappearing messages
@dataclass(frozen=True, slots=True)
class TimerChanged:
    """The disappearing-message timer of a conversation of this user was set to ``seconds`` (0:
    off) by ``by``: the announcement in the chat. Messages sent from now on expire ``seconds``
    after they are sent. ``ref`` is the command id when this user set it (from any device)."""

    conversation: str
    seconds: int
    by: str
    ts: float
    cursor: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class MessagesExpired:
    """Disappearing messages this user sent or received expired and were deleted from the
    server: ``messages`` are their stubs (``expired`` true, no text, no media). An app removes
    the messages with these ids."""

    messages: tuple[Message, ...]
    ts: float
    cursor: int

    @property
    def ids(self) -> list[str]:
        return [message.id for message in self.messages]


@dataclass(frozen=True, slots=True)
class TimerInfo:
    """The answer to ``timer_get`` (internal: :meth:`client_sdk.Client.get_timer` returns its
    ``seconds``)."""

    ref: str
    conversation: str
    seconds: int


# -- history and retention -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptState:
    """The receipt state of a message this user sent, as a history page gives it: how many
    recipients it went to (the other user of a 1-on-1 chat, the members of a group it reached),
    how many have it (``delivered`` or read) and how many ``read`` it; ``status`` is what all of
    them reached (the ticks)."""

    status: Status
    recipients: int
    delivered: int
    read: int


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of one conversation's messages, the answer to :meth:`client_sdk.Client.history`.

    ``messages`` are in ascending ``seq``, each as this user sees it now (a tombstone, a hidden
    message, the latest text, the reactions...), with ``cursor`` 0: they come from the
    conversation, not from the inbox. ``receipts`` is the receipt state of those this user sent,
    by message id. ``more``: there are more messages past the page in the direction it went (older
    for a page back, newer for a page forwards).
    """

    ref: str
    conversation: str
    messages: tuple[Message, ...]
    receipts: Mapping[str, ReceiptState] = field(hash=False)
    more: bool

    @property
    def first_seq(self) -> int | None:
        """The seq to page back from (``before=``), None for an empty page."""
        return self.messages[0].seq if self.messages else None

    @property
    def last_seq(self) -> int | None:
        """The seq to page forwards from (``after=``), None for an empty page."""
        return self.messages[-1].seq if self.messages else None


@dataclass(frozen=True, slots=True)
class SyncReset:
    """The server no longer has this client's inbox from :attr:`after` on (retention pruned it):
    nothing is skipped silently. The client jumped to :attr:`cursor` and goes on syncing from
    there; before handing this event to the app it loaded the latest page of each conversation it
    knows of (its groups, and the conversations it saw messages in) into :attr:`history`, so an
    app rebuilds its chats from that and carries on with the events that follow."""

    ref: str
    after: int
    cursor: int
    conversations: tuple[str, ...] = ()
    """The conversations the client knew of when the reset came (the history covers these and
    the groups the server lists)."""
    history: Mapping[str, HistoryPage] = field(default_factory=dict, hash=False)


Sequenced: TypeAlias = (
    Message
    | Sent
    | Receipt
    | GroupEvent
    | ProfileChanged
    | MessageDeleted
    | Reaction
    | MessageEdited
    | MessageHidden
    | JoinRequest
    | TimerChanged
    | MessagesExpired
    | PrivacyChanged
    | GroupInvitation
    | Blocking
    | ReadState
)
"""Events that carry an inbox cursor and are processed strictly in cursor order."""

Event: TypeAlias = Sequenced | Presence | PresenceRefused | Typing | ServerError | SyncReset
"""Everything :meth:`client_sdk.Client.events` yields."""


def parse_inbox(
    payload: Any,
) -> (
    Sequenced
    | Typing
    | ServerError
    | SyncPage
    | GroupList
    | DeviceList
    | Ok
    | ProfileList
    | GroupInvite
    | JoinRequestList
    | TimerInfo
    | ChatPage
    | HistoryPage
    | SyncReset
    | PrivacyAnswer
    | BlockList
    | SearchResults
):
    """Parse an event received on the user's inbox topic."""
    data = _envelope(payload)
    kind = data["type"]
    if kind == "privacy" and "cursor" not in data:  # the live answer to privacy_get (or a resend)
        return PrivacyAnswer(ref=_str(data, "ref"), settings=parse_settings(data.get("settings")))
    if kind in SEQUENCED_EVENT_TYPES:
        return parse_sequenced(data)
    if kind == "typing":
        group = data.get("group")
        if group is not None and not (isinstance(group, str) and is_group_id(group)):
            raise ValueError(f"field 'group' must be a group id, got {group!r}")
        return Typing(sender=_str(data, "from"), state=_choice(data, "state", TYPING_STATES), group=group)
    if kind == "error":
        ref = data.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise ValueError(f"field 'ref' must be a string or null, got {ref!r}")
        return ServerError(ref=ref, code=_str(data, "code"), message=_field(data, "message", str))
    if kind == "sync_page":
        return _parse_sync_page(data)
    if kind == "groups":
        groups = _field(data, "groups", list)
        return GroupList(ref=_str(data, "ref"), groups=tuple(parse_group(item) for item in groups))
    if kind == "ok":
        return Ok(ref=_str(data, "ref"))
    if kind == "profiles":
        found = _field(data, "profiles", list)
        return ProfileList(ref=_str(data, "ref"), profiles=tuple(parse_profile(item) for item in found))
    if kind == "devices":
        return DeviceList(
            ref=_str(data, "ref"), devices=tuple(_parse_device(d) for d in _field(data, "devices", list))
        )
    if kind == "group_invite":
        return _parse_group_invite(data)
    if kind == "group_requests":
        return _parse_join_requests(data)
    if kind == "timer_info":
        return TimerInfo(
            ref=_str(data, "ref"), conversation=_str(data, "conversation"), seconds=_seconds(data)
        )
    if kind == "chats":
        return _parse_chat_page(data)
    if kind == "history":
        return parse_history(data)
    if kind == "sync_reset":
        return parse_sync_reset(data)
    if kind == "blocks":
        users = _field(data, "users", list)
        if not all(isinstance(user, str) and user for user in users):
            raise ValueError(f"field 'users' must be a list of user ids, got {users!r}")
        return BlockList(ref=_str(data, "ref"), users=tuple(users))
    if kind == "search_results":
        return _parse_search_results(data)
    raise ValueError(f"unknown event type {kind!r}")


def _parse_search_results(data: Mapping[str, Any]) -> SearchResults:
    more = _field(data, "more", bool)
    after = data.get("next")
    if after is not None and not isinstance(after, str):
        raise ValueError(f"field 'next' must be a string or null, got {after!r}")
    hits = tuple(parse_message(hit, cursor=0) for hit in _field(data, "hits", list))
    return SearchResults(ref=_str(data, "ref"), hits=hits, more=more, next=after)


def _parse_device(item: Any) -> Device:
    if not isinstance(item, dict):
        raise ValueError(f"a device must be an object, got {item!r}")
    platform = item.get("platform")
    if platform is not None and not isinstance(platform, str):
        raise ValueError(f"field 'platform' must be a string or null, got {platform!r}")
    return Device(
        device=_str(item, "device"),
        first_seen=_number(item, "first_seen"),
        last_seen=_number(item, "last_seen"),
        platform=platform,
        online=_field(item, "online", bool),
    )


def parse_sequenced(payload: Any) -> Sequenced:
    """Parse a ``message``, ``sent``, ``receipt``, ``group`` or ``deleted`` event (live, or an entry of
    a sync page)."""
    data = _envelope(payload)
    kind = data["type"]
    if kind not in SEQUENCED_EVENT_TYPES:
        raise ValueError(f"{kind!r} is not a sequenced event type")
    cursor = _cursor(data, "cursor")
    if kind == "message":
        return parse_message(_field(data, "message", dict), cursor=cursor)
    if kind == "sent":
        return Sent(
            ref=_str(data, "ref"),
            message=parse_message(_field(data, "message", dict), cursor=cursor),
            cursor=cursor,
        )
    if kind == "receipt":
        return Receipt(
            message_id=_str(data, "message_id"),
            conversation=_str(data, "conversation"),
            seq=_cursor(data, "seq"),
            status=Status.parse(_choice(data, "status", frozenset({"delivered", "read"}))),
            by=_str(data, "by"),
            ts=_number(data, "ts"),
            cursor=cursor,
            all=_field(data, "all", bool),
            also_by=_users(data, "also_by") if "also_by" in data else (),
        )
    if kind == "group":
        if "ref" not in data:
            raise ValueError("field 'ref' is missing")
        ref = data["ref"]
        if ref is not None and (not isinstance(ref, str) or not ref):
            raise ValueError(f"field 'ref' must be a non-empty string or null, got {ref!r}")
        return GroupEvent(
            # Any action is taken, so that an action a newer server adds still updates the group.
            action=_str(data, "action"),
            group=parse_group(_field(data, "group", dict)),
            by=_str(data, "by"),
            affected=_users(data, "affected"),
            ref=ref,
            ts=_number(data, "ts"),
            cursor=cursor,
            invited=_users(data, "invited") if "invited" in data else (),
        )
    if kind == "profile":
        ref = data.get("ref")
        if ref is not None and (not isinstance(ref, str) or not ref):
            raise ValueError(f"field 'ref' must be a non-empty string or null, got {ref!r}")
        return ProfileChanged(
            profile=parse_profile(_field(data, "profile", dict)),
            ref=ref,
            ts=_number(data, "ts"),
            cursor=cursor,
        )
    if kind == "deleted":
        return MessageDeleted(
            message_id=_str(data, "message_id"),
            conversation=_str(data, "conversation"),
            seq=_cursor(data, "seq"),
            by=_str(data, "by"),
            ts=_number(data, "ts"),
            cursor=cursor,
            message=parse_message(_field(data, "message", dict), cursor=cursor),
            ref=_ref(data),
        )
    if kind == "edited":
        return MessageEdited(
            message_id=_str(data, "message_id"),
            conversation=_str(data, "conversation"),
            seq=_cursor(data, "seq"),
            by=_str(data, "by"),
            text=_field(data, "text", str),
            edited_at=_number(data, "edited_at"),
            ts=_number(data, "ts"),
            cursor=cursor,
            message=parse_message(_field(data, "message", dict), cursor=cursor),
            ref=_ref(data),
        )
    if kind == "hidden":
        return MessageHidden(
            message_id=_str(data, "message_id"),
            conversation=_str(data, "conversation"),
            seq=_cursor(data, "seq"),
            ts=_number(data, "ts"),
            cursor=cursor,
            ref=_ref(data),
        )
    if kind == "reaction":
        return _parse_reaction(data, cursor=cursor)
    if kind == "group_request":
        return _parse_join_request(data, cursor=cursor)
    if kind in ("timer", "expired"):
        return _parse_timer_event(data, cursor=cursor)
    if kind == "privacy":
        return PrivacyChanged(settings=parse_settings(data.get("settings")), ref=_ref(data), cursor=cursor)
    if kind == "group_invitation":
        return _parse_invitation(data, cursor=cursor)
    if kind == "blocking":
        return Blocking(
            user=_str(data, "user"),
            blocked=_field(data, "blocked", bool),
            ref=_ref(data),
            ts=_number(data, "ts"),
            cursor=cursor,
        )
    if kind == "read":
        return ReadState(
            conversation=_str(data, "conversation"),
            read_seq=_count(data, "read_seq"),
            ts=_number(data, "ts"),
            cursor=cursor,
            ref=_ref(data),
        )
    raise AssertionError(f"unhandled sequenced type {kind!r}")  # pragma: no cover - SEQUENCED_EVENT_TYPES


def _parse_invitation(data: Mapping[str, Any], *, cursor: int) -> GroupInvitation:
    group = _field(data, "group", dict)
    return GroupInvitation(
        group=_str(group, "id"),
        name=_field(group, "name", str),
        by=_str(data, "by"),
        expires=_number(data, "expires"),
        state=_choice(data, "state", frozenset({"invited", "declined"})),
        ref=_ref(data),
        ts=_number(data, "ts"),
        cursor=cursor,
    )


def _parse_reaction(data: Mapping[str, Any], *, cursor: int) -> Reaction:
    ref = _ref(data)
    emoji = data.get("emoji")
    if emoji is not None and (not isinstance(emoji, str) or not emoji):
        raise ValueError(f"field 'emoji' must be a non-empty string or null, got {emoji!r}")
    return Reaction(
        message_id=_str(data, "message_id"),
        conversation=_str(data, "conversation"),
        seq=_cursor(data, "seq"),
        by=_str(data, "by"),
        emoji=emoji,
        reactions=_reactions(_field(data, "reactions", dict)),
        ref=ref,
        ts=_number(data, "ts"),
        cursor=cursor,
    )


def _seconds(data: Mapping[str, Any]) -> int:
    seconds = data.get("seconds")
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError(f"field 'seconds' must be a non-negative integer, got {seconds!r}")
    return seconds


def _parse_timer_event(data: Mapping[str, Any], *, cursor: int) -> TimerChanged | MessagesExpired:
    """A ``timer`` or an ``expired`` event (disappearing messages)."""
    if data["type"] == "timer":
        return TimerChanged(
            conversation=_str(data, "conversation"),
            seconds=_seconds(data),
            by=_str(data, "by"),
            ts=_number(data, "ts"),
            cursor=cursor,
            ref=_ref(data),
        )
    stubs = _field(data, "messages", list)
    return MessagesExpired(
        messages=tuple(parse_message(stub, cursor=cursor) for stub in stubs),
        ts=_number(data, "ts"),
        cursor=cursor,
    )


def _reactions(raw: Any) -> dict[str, str]:
    """A reaction summary: user id → emoji."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"field 'reactions' must be a JSON object, got {type(raw).__name__}")
    for user, emoji in raw.items():
        if not isinstance(emoji, str) or not emoji:
            raise ValueError(f"the reaction of {user!r} must be a non-empty string, got {emoji!r}")
    return dict(raw)


def _ref(data: Mapping[str, Any]) -> str | None:
    """The optional ``ref`` of a change to a message: the command id, or null."""
    ref = data.get("ref")
    if ref is not None and (not isinstance(ref, str) or not ref):
        raise ValueError(f"field 'ref' must be a non-empty string or null, got {ref!r}")
    return ref


def parse_message(payload: Any, *, cursor: int) -> Message:
    """Parse the ``message`` object of a ``message``, ``sent``, ``deleted`` or ``edited`` event (a
    tombstone has ``deleted`` true, a message this user hid ``hidden`` true, and neither has
    ``text`` nor ``media``)."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a message must be a JSON object, got {type(payload).__name__}")
    deleted, hidden = payload.get("deleted") is True, payload.get("hidden") is True
    expired = payload.get("expired") is True
    if deleted or hidden or expired:  # its place only: no text, no media
        return Message(
            id=_str(payload, "id"),
            conversation=_str(payload, "conversation"),
            seq=_cursor(payload, "seq"),
            sender=_str(payload, "from"),
            recipient=_str(payload, "to"),
            text="",
            ts=_number(payload, "ts"),
            cursor=cursor,
            deleted=deleted,
            hidden=hidden,
            expired=expired,
        )
    return Message(
        id=_str(payload, "id"),
        conversation=_str(payload, "conversation"),
        seq=_cursor(payload, "seq"),
        sender=_str(payload, "from"),
        recipient=_str(payload, "to"),
        text=_field(payload, "text", str),
        ts=_number(payload, "ts"),
        cursor=cursor,
        media=None if payload.get("media") is None else parse_media(payload["media"]),
        reactions=_reactions(payload.get("reactions") or {}),
        edited_at=None if payload.get("edited_at") is None else _number(payload, "edited_at"),
        reply=None if payload.get("reply") is None else parse_reply(payload["reply"]),
        forwarded=payload.get("forwarded") is True,
        expires_at=None if payload.get("expires_at") is None else _number(payload, "expires_at"),
    )


def parse_group(payload: Any) -> Group:
    """Parse a group snapshot (the ``group`` of a ``group`` event, an item of a ``groups`` answer)."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a group must be a JSON object, got {type(payload).__name__}")
    group_id = _field(payload, "id", str)
    if not is_group_id(group_id):
        raise ValueError(f"field 'id' must be a group id (g:...), got {group_id!r}")
    return Group(
        id=group_id,
        name=_str(payload, "name"),
        members=_users(payload, "members"),
        admins=_users(payload, "admins"),
        profiles=_member_profiles(payload.get("profiles")),
        **_group_settings(payload),
    )


# ---------------------------------------------------------------- group settings and invites
def _group_settings(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a group snapshot (those left out are off or empty)."""
    icon = payload.get("icon")
    flags = {name: payload.get(name, False) for name in ("only_admins_send", "approval")}
    for name, flag in flags.items():
        if not isinstance(flag, bool):
            raise ValueError(f"field {name!r} must be a boolean, got {flag!r}")
    return {
        "description": _optional_text(payload, "description"),
        "icon": None if icon is None else parse_media(icon, thumbnail=True),
        **flags,
    }


def _parse_group_invite(data: Mapping[str, Any]) -> GroupInvite:
    code, expires_at = data.get("code"), data.get("expires_at")
    if code is not None and (not isinstance(code, str) or not code):
        raise ValueError(f"field 'code' must be a non-empty string or null, got {code!r}")
    if expires_at is not None and (not isinstance(expires_at, int | float) or isinstance(expires_at, bool)):
        raise ValueError(f"field 'expires_at' must be a number or null, got {expires_at!r}")
    return GroupInvite(
        ref=_str(data, "ref"),
        group=_str(data, "group"),
        code=code,
        expires_at=None if expires_at is None else float(expires_at),
    )


def _parse_join_request(data: Mapping[str, Any], *, cursor: int) -> JoinRequest:
    by = data.get("by")
    if by is not None and (not isinstance(by, str) or not by):
        raise ValueError(f"field 'by' must be a user id or null, got {by!r}")
    return JoinRequest(
        group=_str(data, "group"),
        name=_str(data, "name"),
        user=_str(data, "user"),
        state=_str(data, "state"),
        by=by,
        ref=_ref(data),
        ts=_number(data, "ts"),
        cursor=cursor,
    )


def _parse_join_requests(data: Mapping[str, Any]) -> JoinRequestList:
    found = []
    for item in _field(data, "requests", list):
        if not isinstance(item, Mapping):
            raise ValueError(f"a join request must be an object, got {item!r}")
        found.append((_str(item, "user"), _number(item, "ts")))
    return JoinRequestList(ref=_str(data, "ref"), group=_str(data, "group"), requests=tuple(found))


def _optional_text(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"field {name!r} must be a string or null, got {value!r}")
    return value


def parse_profile(payload: Any, *, user: str | None = None) -> Profile:
    """Parse a profile (of a ``profile`` event, a ``profiles`` answer, or, with ``user``, a card
    of a group snapshot)."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"a profile must be a JSON object, got {type(payload).__name__}")
    avatar = payload.get("avatar")
    ts = payload.get("ts", 0.0)
    return Profile(
        user=_str(payload, "user") if user is None else user,
        name=_optional_text(payload, "name"),
        about=_optional_text(payload, "about"),
        avatar=None if avatar is None else parse_media(avatar, thumbnail=True),
        ts=float(ts) if isinstance(ts, int | float) and not isinstance(ts, bool) else 0.0,
    )


def _member_profiles(raw: Any) -> tuple[Profile, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ValueError(f"field 'profiles' must be a JSON object, got {type(raw).__name__}")
    return tuple(parse_profile(card, user=user) for user, card in raw.items())


def parse_presence(payload: Any) -> Presence:
    """Parse a retained presence payload (published on ``<presence_prefix>/<user>``)."""
    data = _envelope(payload)
    if data["type"] != "presence":
        raise ValueError(f"expected a presence payload, got type {data['type']!r}")
    return Presence(
        user=_str(data, "user"),
        status=_choice(data, "status", PRESENCE_STATUSES),
        last_seen=_number(data, "last_seen") if "last_seen" in data else None,
    )


def cursor_of(payload: Any) -> int | None:
    """The inbox cursor a payload claims (a positive integer ``cursor`` field), or None."""
    if not isinstance(payload, Mapping):
        return None
    cursor = payload.get("cursor")
    return cursor if _is_int(cursor) and cursor >= 1 else None


def _parse_sync_page(data: Mapping[str, Any]) -> SyncPage:
    entries: list[tuple[int, Sequenced | None]] = []
    for index, raw in enumerate(_field(data, "entries", list)):
        try:
            item = parse_sequenced(raw)
        except ValueError:
            cursor = cursor_of(raw)
            if cursor is None:
                raise ValueError(f"sync_page entry {index} has no usable cursor") from None
            entries.append((cursor, None))
        else:
            entries.append((item.cursor, item))
    page_cursor = _field(data, "cursor", int)
    if page_cursor < 0:
        raise ValueError(f"field 'cursor' must be a non-negative integer, got {page_cursor!r}")
    return SyncPage(
        ref=_str(data, "ref"), entries=tuple(entries), more=_field(data, "more", bool), cursor=page_cursor
    )


def _envelope(payload: Any) -> Mapping[str, Any]:
    if not isinstance(payload, Mapping):
        raise ValueError(f"a payload must be a JSON object, got {type(payload).__name__}")
    version = payload.get("v")
    if not _is_int(version) or version != VERSION:
        raise ValueError(f"unsupported protocol version {version!r}")
    if not isinstance(payload.get("type"), str):
        raise ValueError("field 'type' is missing or not a string")
    return payload


def _field(data: Mapping[str, Any], name: str, kind: type[_T]) -> _T:
    if name not in data:
        raise ValueError(f"field {name!r} is missing")
    value = data[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"field {name!r} must be {kind.__name__}, got {value!r}")
    return value


def _str(data: Mapping[str, Any], name: str) -> str:
    value = _field(data, name, str)
    if not value:
        raise ValueError(f"field {name!r} must not be empty")
    return value


def _users(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    users = _field(data, name, list)
    for user in users:
        if not isinstance(user, str) or not user:
            raise ValueError(f"field {name!r} must hold non-empty strings, got {user!r}")
    return tuple(users)


def _choice(data: Mapping[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = _field(data, name, str)
    if value not in allowed:
        raise ValueError(f"field {name!r} must be one of {sorted(allowed)}, got {value!r}")
    return value


def _cursor(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not _is_int(value) or value < 1:
        raise ValueError(f"field {name!r} must be a positive integer, got {value!r}")
    return value


def _number(data: Mapping[str, Any], name: str) -> float:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"field {name!r} must be a finite number, got {value!r}")
    return float(value)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# ---------------------------------------------------------------- chat list
def _count(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not _is_int(value) or value < 0:
        raise ValueError(f"field {name!r} must be an integer >= 0, got {value!r}")
    return value


def _parse_chat_page(data: Mapping[str, Any]) -> ChatPage:
    following = data.get("next")
    if following is not None and not isinstance(following, str):
        raise ValueError(f"field 'next' must be a string or null, got {following!r}")
    chats = tuple(_parse_chat(item) for item in _field(data, "chats", list))
    return ChatPage(chats=chats, next=following, ref=_str(data, "ref"))


def _parse_chat(item: Any) -> Chat:
    if not isinstance(item, Mapping):
        raise ValueError(f"a chat must be an object, got {item!r}")
    kind = _choice(item, "kind", frozenset({"direct", "group"}))
    last = item.get("last_message")
    group = item.get("group") if kind == "group" else None
    if group is not None and not isinstance(group, Mapping):
        raise ValueError(f"field 'group' must be an object, got {group!r}")
    seen = item.get("presence")
    presence = None
    if kind == "direct" and isinstance(seen, Mapping):
        last_seen = seen.get("last_seen")
        presence = Presence(
            user=_str(item, "peer"),
            status=_choice(seen, "status", PRESENCE_STATUSES),
            last_seen=0.0 if last_seen is None else _number(seen, "last_seen"),
        )
    return Chat(
        conversation=_str(item, "conversation"),
        kind=kind,
        last_message=None if last is None else parse_message(last, cursor=0),
        last_seq=_count(item, "last_seq"),
        read_seq=_count(item, "read_seq"),
        unread=_count(item, "unread"),
        ts=_number(item, "ts"),
        peer=_str(item, "peer") if kind == "direct" else None,
        group=None if group is None else _str(group, "id"),
        name=None if group is None else _field(group, "name", str),
        member=True if group is None else _field(group, "member", bool),
        presence=presence,
    )


# -- history and retention: parsers ----------------------------------------------------


def parse_history(data: Mapping[str, Any]) -> HistoryPage:
    """Parse a ``history`` event."""
    receipts: dict[str, ReceiptState] = {}
    for message_id, raw in _field(data, "receipts", dict).items():
        if not isinstance(raw, Mapping):
            raise ValueError(f"receipt state of {message_id!r} must be an object")
        receipts[message_id] = ReceiptState(
            status=Status.parse(_choice(raw, "status", _STATUS_LABELS)),
            recipients=_field(raw, "recipients", int),
            delivered=_field(raw, "delivered", int),
            read=_field(raw, "read", int),
        )
    return HistoryPage(
        ref=_str(data, "ref"),
        conversation=_str(data, "conversation"),
        messages=tuple(parse_message(m, cursor=0) for m in _field(data, "messages", list)),
        receipts=receipts,
        more=_field(data, "more", bool),
    )


def parse_sync_reset(data: Mapping[str, Any]) -> SyncReset:
    """Parse a ``sync_reset`` event."""
    after, cursor = _field(data, "after", int), _field(data, "cursor", int)
    if after < 0 or cursor < 0:
        raise ValueError(f"sync_reset cursors must be >= 0, got {after!r} and {cursor!r}")
    return SyncReset(ref=_str(data, "ref"), after=after, cursor=cursor)


_STATUS_LABELS = frozenset(status.label for status in Status)
