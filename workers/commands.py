"""Typed client commands: one class per command ``type`` of the wire contract's JSON Schema.

The node's ingest validates each command against the schema before batching it, and batches cross
a process pipe or Dramatiq as JSON, so the pipeline receives plain dicts it can trust. It turns
each into the class of its type here (``typed_command``), once, and its handlers read fields
instead of dict keys. Nothing is checked again: a command's shape is the schema's business, and
tests/unit/test_commands.py holds these classes to the schema, so a schema change without a
change here fails.

Each class is a ``NamedTuple``: immutable and the cheapest kind of object to build, which matters
because one is built for every command. ``user`` is the authenticated user who sent the command
(never a field of the payload); the other fields are the payload's, ``v`` and ``type`` left out
(the version is the only one there is, the type is the class). Lists are the decoded JSON's own,
not copied, and typed as read-only sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, NamedTuple, TypeAlias

from client_sdk.contract import Status

__all__ = [
    "COMMANDS",
    "Audience",
    "Block",
    "BlockList",
    "ChatList",
    "Command",
    "Delete",
    "DeleteScope",
    "DeviceList",
    "Edit",
    "Forward",
    "GroupAdd",
    "GroupApprove",
    "GroupCreate",
    "GroupInviteAccept",
    "GroupInviteDecline",
    "GroupInviteLink",
    "GroupJoin",
    "GroupLeave",
    "GroupList",
    "GroupPromote",
    "GroupReject",
    "GroupRemove",
    "GroupRename",
    "GroupRequests",
    "GroupSet",
    "GroupSettingsCommand",
    "History",
    "MarkRead",
    "Platform",
    "PrivacyGet",
    "PrivacySet",
    "ProfileGet",
    "ProfileSet",
    "PushRegister",
    "PushUnregister",
    "Raw",
    "React",
    "Receipt",
    "Report",
    "Search",
    "Send",
    "Sync",
    "TimerGet",
    "TimerSet",
    "Typing",
    "TypingState",
    "Unblock",
    "typed_command",
]

Raw = Mapping[str, Any]
"""A command as decoded from JSON and validated by the ingest."""

TypingState = Literal["composing", "paused"]
Platform = Literal["android", "ios", "web"]
DeleteScope = Literal["everyone", "me"]
Audience = Literal["everyone", "contacts", "nobody"]

_STATUS_OF_LABEL = {status.label: status for status in Status}
"""``Status.parse`` as one dict look-up: an Enum's own look-up by name is several times slower."""


class Send(NamedTuple):
    """A text message to a user, or to a group (``to`` is then a group id); ``reply_to``: the
    message of the same conversation it answers (quotes)."""

    user: str
    id: str
    to: str
    text: str
    reply_to: str | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Send:
        return cls(user, raw["id"], raw["to"], raw["text"], raw.get("reply_to"))


class Forward(NamedTuple):
    """Send ``message`` (one the user can read) on to ``to``, a user or a group."""

    user: str
    id: str
    message: str
    to: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Forward:
        return cls(user, raw["id"], raw["message"], raw["to"])


class Receipt(NamedTuple):
    """These messages were delivered to, or read on, a device of ``user``."""

    user: str
    id: str
    status: Status
    """``Status.DELIVERED`` or ``Status.READ`` (the payload's label, parsed)."""
    messages: Sequence[str]

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Receipt:
        return cls(user, raw["id"], _STATUS_OF_LABEL[raw["status"]], raw["messages"])


class Typing(NamedTuple):
    user: str
    id: str
    to: str
    state: TypingState

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Typing:
        return cls(user, raw["id"], raw["to"], raw["state"])


class Sync(NamedTuple):
    """Every inbox event after cursor ``after``; ``limit`` entries a page, or the server's default."""

    user: str
    id: str
    after: int
    limit: int | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Sync:
        # JSON Schema's "integer" also accepts a number like 5.0
        limit = raw.get("limit")
        return cls(user, raw["id"], int(raw["after"]), None if limit is None else int(limit))


class GroupCreate(NamedTuple):
    user: str
    id: str
    name: str
    members: Sequence[str]

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupCreate:
        return cls(user, raw["id"], raw["name"], raw["members"])


class GroupAdd(NamedTuple):
    user: str
    id: str
    group: str
    members: Sequence[str]

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupAdd:
        return cls(user, raw["id"], raw["group"], raw["members"])


class GroupRemove(NamedTuple):
    user: str
    id: str
    group: str
    members: Sequence[str]

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupRemove:
        return cls(user, raw["id"], raw["group"], raw["members"])


class GroupPromote(NamedTuple):
    user: str
    id: str
    group: str
    members: Sequence[str]

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupPromote:
        return cls(user, raw["id"], raw["group"], raw["members"])


class GroupRename(NamedTuple):
    user: str
    id: str
    group: str
    name: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupRename:
        return cls(user, raw["id"], raw["group"], raw["name"])


class GroupLeave(NamedTuple):
    user: str
    id: str
    group: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupLeave:
        return cls(user, raw["id"], raw["group"])


class GroupList(NamedTuple):
    user: str
    id: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupList:
        return cls(user, raw["id"])


# ---------------------------------------------------------------- group settings and invites
class GroupSet(NamedTuple):
    """Change a group's settings (admins): a field None is left as it is. ``icon`` can only be
    removed here (``remove_icon``); it is set by an upload (POST /media/group-icon)."""

    user: str
    id: str
    group: str
    description: str | None = None
    only_admins_send: bool | None = None
    approval: bool | None = None
    remove_icon: bool | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupSet:
        return cls(
            user,
            raw["id"],
            raw["group"],
            raw.get("description"),
            raw.get("only_admins_send"),
            raw.get("approval"),
            raw.get("remove_icon"),
        )


class GroupInviteLink(NamedTuple):
    """Make a new invite link of a group (replacing the one it had), or revoke it (admins)."""

    user: str
    id: str
    group: str
    revoke: bool | None = None
    expires_in: int | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupInviteLink:
        return cls(user, raw["id"], raw["group"], raw.get("revoke"), raw.get("expires_in"))


class GroupJoin(NamedTuple):
    user: str
    id: str
    code: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupJoin:
        return cls(user, raw["id"], raw["code"])


class GroupRequests(NamedTuple):
    user: str
    id: str
    group: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupRequests:
        return cls(user, raw["id"], raw["group"])


class GroupApprove(NamedTuple):
    user: str
    id: str
    group: str
    member: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupApprove:
        return cls(user, raw["id"], raw["group"], raw["member"])


class GroupReject(NamedTuple):
    user: str
    id: str
    group: str
    member: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupReject:
        return cls(user, raw["id"], raw["group"], raw["member"])


class PushRegister(NamedTuple):
    """A device's push token; ``preview``: whether notifications may show the sender and text."""

    user: str
    id: str
    token: str
    platform: Platform
    preview: bool = True

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> PushRegister:
        return cls(user, raw["id"], raw["token"], raw["platform"], raw.get("preview", True))


class DeviceList(NamedTuple):
    """The ``devices`` command: list the sender's own devices."""

    user: str
    id: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> DeviceList:
        return cls(user, raw["id"])


class PushUnregister(NamedTuple):
    user: str
    id: str
    token: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> PushUnregister:
        return cls(user, raw["id"], raw["token"])


class ProfileSet(NamedTuple):
    """Change my profile: a field None is left as it is, an empty (blank) one is cleared."""

    user: str
    id: str
    name: str | None = None
    about: str | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> ProfileSet:
        return cls(user, raw["id"], raw.get("name"), raw.get("about"))


class ProfileGet(NamedTuple):
    user: str
    id: str
    users: Sequence[str]

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> ProfileGet:
        return cls(user, raw["id"], raw["users"])


class React(NamedTuple):
    """Set my reaction to a message to ``emoji``; ``""`` removes it (see ``rules.reactions``)."""

    user: str
    id: str
    message: str
    emoji: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> React:
        return cls(user, raw["id"], raw["message"], raw["emoji"])


class Edit(NamedTuple):
    """Replace the text (or caption) of a message the user sent."""

    user: str
    id: str
    message: str
    text: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Edit:
        return cls(user, raw["id"], raw["message"], raw["text"])


class Delete(NamedTuple):
    """Delete a message for everyone, or for the user's own devices (``for_``: the wire's ``for``,
    a Python keyword)."""

    user: str
    id: str
    message: str
    for_: DeleteScope

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Delete:
        return cls(user, raw["id"], raw["message"], raw["for"])


# ---------------------------------------------------------------- disappearing messages
class TimerSet(NamedTuple):
    """Set the disappearing-message timer of my conversation with ``to`` (a user or a group)."""

    user: str
    id: str
    to: str
    seconds: int

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> TimerSet:
        return cls(user, raw["id"], raw["to"], int(raw["seconds"]))


class TimerGet(NamedTuple):
    """Read the disappearing-message timer of my conversation with ``to``."""

    user: str
    id: str
    to: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> TimerGet:
        return cls(user, raw["id"], raw["to"])


# ---------------------------------------------------------------- chat list and read state
class ChatList(NamedTuple):
    """A page of the user's conversations, newest activity first: ``before`` the ``next`` cursor of
    the previous page (opaque; a malformed one is refused), ``limit`` as sent (the pipeline clamps)."""

    user: str
    id: str
    before: str | None = None
    limit: int | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> ChatList:
        limit = raw.get("limit")
        return cls(user, raw["id"], raw.get("before"), None if limit is None else int(limit))


class MarkRead(NamedTuple):
    """The user has read ``conversation`` up to ``seq`` (no read receipts for the senders)."""

    user: str
    id: str
    conversation: str
    seq: int

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> MarkRead:
        return cls(user, raw["id"], raw["conversation"], int(raw["seq"]))


class Search(NamedTuple):
    """Search my own messages (see ``rules.search``): ``before`` the cursor of the previous page,
    ``limit`` as sent (the handler clamps it)."""

    user: str
    id: str
    query: str
    conversation: str | None = None
    before: str | None = None
    limit: int | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Search:
        return cls(
            user, raw["id"], raw["query"], raw.get("conversation"), raw.get("before"), raw.get("limit")
        )


class History(NamedTuple):
    """One page of a conversation's messages (see ``rules.history``); ``limit`` not yet clamped."""

    user: str
    id: str
    conversation: str
    before: int | None = None
    after: int | None = None
    limit: int | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> History:
        before, after, limit = raw.get("before"), raw.get("after"), raw.get("limit")
        return cls(
            user,
            raw["id"],
            raw["conversation"],
            None if before is None else int(before),
            None if after is None else int(after),
            None if limit is None else int(limit),
        )


class PrivacySet(NamedTuple):
    """Change my privacy settings: a field None stays as it is (rules.privacy)."""

    user: str
    id: str
    last_seen: Audience | None = None
    online: Audience | None = None
    read_receipts: bool | None = None
    photo: Audience | None = None
    about: Audience | None = None
    groups: Audience | None = None

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> PrivacySet:
        get = raw.get
        return cls(
            user,
            raw["id"],
            get("last_seen"),
            get("online"),
            get("read_receipts"),
            get("photo"),
            get("about"),
            get("groups"),
        )

    def changes(self) -> dict[str, Any]:
        """The fields to change."""
        return {k: v for k, v in self._asdict().items() if k not in ("user", "id") and v is not None}


class PrivacyGet(NamedTuple):
    user: str
    id: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> PrivacyGet:
        return cls(user, raw["id"])


class GroupInviteAccept(NamedTuple):
    user: str
    id: str
    group: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupInviteAccept:
        return cls(user, raw["id"], raw["group"])


class GroupInviteDecline(NamedTuple):
    user: str
    id: str
    group: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> GroupInviteDecline:
        return cls(user, raw["id"], raw["group"])


# ---------------------------------------------------------------- blocking and reports
class Block(NamedTuple):
    """Block ``target`` (see ``rules.blocks``)."""

    user: str
    id: str
    target: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Block:
        return cls(user, raw["id"], raw["user"])


class Unblock(NamedTuple):
    """Unblock ``target``."""

    user: str
    id: str
    target: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Unblock:
        return cls(user, raw["id"], raw["user"])


class BlockList(NamedTuple):
    """The users I block (wire type ``blocks``)."""

    user: str
    id: str

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> BlockList:
        return cls(user, raw["id"])


class Report(NamedTuple):
    """Report ``target`` to the operators, with messages I can see as evidence; ``block``: block
    them too."""

    user: str
    id: str
    target: str
    messages: Sequence[str] = ()
    reason: str = ""
    block: bool = False

    @classmethod
    def from_wire(cls, user: str, raw: Raw) -> Report:
        messages, reason = raw.get("messages", ()), raw.get("reason", "")
        return cls(user, raw["id"], raw["user"], messages, reason, raw.get("block", False))


Command: TypeAlias = (
    Send
    | Receipt
    | Typing
    | Sync
    | GroupCreate
    | GroupAdd
    | GroupRemove
    | GroupPromote
    | GroupRename
    | GroupLeave
    | GroupList
    | PushRegister
    | PushUnregister
    | ProfileSet
    | ProfileGet
    | DeviceList
    | React
    | Edit
    | Delete
    | Forward
    | GroupSet
    | GroupInviteLink
    | GroupJoin
    | GroupRequests
    | GroupApprove
    | GroupReject
    | TimerSet
    | TimerGet
    | ChatList
    | MarkRead
    | Search
    | History
    | PrivacySet
    | PrivacyGet
    | GroupInviteAccept
    | GroupInviteDecline
    | Block
    | Unblock
    | BlockList
    | Report
)

GroupSettingsCommand: TypeAlias = (
    GroupSet | GroupInviteLink | GroupJoin | GroupRequests | GroupApprove | GroupReject
)
"""The commands of group settings, invite links and join requests."""

COMMANDS: Mapping[str, type[Command]] = {
    "send": Send,
    "receipt": Receipt,
    "typing": Typing,
    "sync": Sync,
    "group_create": GroupCreate,
    "group_add": GroupAdd,
    "group_remove": GroupRemove,
    "group_promote": GroupPromote,
    "group_rename": GroupRename,
    "group_leave": GroupLeave,
    "group_list": GroupList,
    "push_register": PushRegister,
    "push_unregister": PushUnregister,
    "profile_set": ProfileSet,
    "profile_get": ProfileGet,
    "devices": DeviceList,
    "react": React,
    "edit": Edit,
    "delete": Delete,
    "forward": Forward,
    "group_set": GroupSet,
    "group_invite_link": GroupInviteLink,
    "group_join": GroupJoin,
    "group_requests": GroupRequests,
    "group_approve": GroupApprove,
    "group_reject": GroupReject,
    "timer_set": TimerSet,
    "timer_get": TimerGet,
    "chat_list": ChatList,
    "mark_read": MarkRead,
    "search": Search,
    "history": History,
    "privacy_set": PrivacySet,
    "privacy_get": PrivacyGet,
    "group_invite_accept": GroupInviteAccept,
    "group_invite_decline": GroupInviteDecline,
    "block": Block,
    "unblock": Unblock,
    "blocks": BlockList,
    "report": Report,
}
"""The class of each command ``type`` of the wire contract."""

_FROM_WIRE: Mapping[str, Callable[[str, Raw], Command]] = {
    kind: cls.from_wire for kind, cls in COMMANDS.items()
}


def typed_command(user: str, raw: Raw) -> Command:
    """The command ``user`` sent, typed. ``raw`` must be valid (the ingest checked it against the
    schema); a dict that is not raises KeyError or ValueError."""
    return _FROM_WIRE[raw["type"]](user, raw)
