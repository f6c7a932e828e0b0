"""What the server tells a client, as typed, immutable events; and the parsing of wire payloads into them.

Every parser takes the already JSON-decoded payload and raises ``ValueError`` naming the first
problem when it does not follow ``docs/protocol.md``. Unknown extra fields are ignored, so a newer
server that adds fields does not break older clients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeGuard, TypeVar

from client_sdk._media import Media, parse_media
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
    "Device",
    "DeviceList",
    "Event",
    "Group",
    "GroupEvent",
    "GroupList",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageHidden",
    "Presence",
    "PresenceRefused",
    "Profile",
    "ProfileChanged",
    "ProfileList",
    "Reaction",
    "Receipt",
    "SearchResults",
    "Sent",
    "Sequenced",
    "ServerError",
    "SyncPage",
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
    """

    message_id: str
    conversation: str
    seq: int
    status: Status
    by: str
    ts: float
    cursor: int
    all: bool


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


@dataclass(frozen=True, slots=True)
class Presence:
    """A user's presence: ``status`` is ``"online"`` or ``"offline"``; ``last_seen`` is Unix seconds."""

    user: str
    status: str
    last_seen: float

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
    """User ``sender`` is typing to this user: ``state`` is ``"composing"`` or ``"paused"``."""

    sender: str
    state: str


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


# ---- search (issue 23)
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
class Ok:
    """The server did a command that has no other answer (internal: e.g. ``register_push``)."""

    ref: str


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
)
"""Events that carry an inbox cursor and are processed strictly in cursor order."""

Event: TypeAlias = (
    Message
    | Sent
    | Receipt
    | GroupEvent
    | ProfileChanged
    | MessageDeleted
    | Reaction
    | MessageEdited
    | MessageHidden
    | Presence
    | PresenceRefused
    | Typing
    | ServerError
)
"""Everything :meth:`client_sdk.Client.events` yields."""


def parse_inbox(
    payload: Any,
) -> Sequenced | Typing | ServerError | SyncPage | GroupList | DeviceList | Ok | ProfileList | SearchResults:
    """Parse an event received on the user's inbox topic."""
    data = _envelope(payload)
    kind = data["type"]
    if kind in SEQUENCED_EVENT_TYPES:
        return parse_sequenced(data)
    if kind == "typing":
        return Typing(sender=_str(data, "from"), state=_choice(data, "state", TYPING_STATES))
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
    raise AssertionError(f"unhandled sequenced type {kind!r}")  # pragma: no cover - SEQUENCED_EVENT_TYPES


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
    if deleted or hidden:  # its place only: no text, no media
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
    )


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
        last_seen=_number(data, "last_seen"),
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
