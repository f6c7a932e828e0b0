"""What each kind of caller needs from storage, as narrow interfaces; :class:`Store` is all of them.

A caller is typed with the narrowest one it uses: the login check sees :class:`Credentials`, the
ACL :class:`Presence`, the notifier :class:`Notifications`, the command pipeline
:class:`CommandStore`. Only what opens, sets up and closes a store, or hands it on to everything
else, holds a :class:`Store`. Implementations (``sql``, ``mongo``) are thread-safe.

The inbox log is the source of truth for delivery: each event a user must see (a message for
them, the ``sent`` of their own message, a receipt for a message they sent, a change of one of
their groups) is appended to their log with the next cursor (1, 2, 3, ... per user, no gaps) in
the same transaction that changes the state. Live delivery publishes those entries; ``sync``
replays them after a cursor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from client_sdk.contract import Status
from workers.stores.records import (
    AcceptResult,
    BlockChange,
    ChatSummary,
    Deletion,
    DeviceInfo,
    DeviceSeen,
    Expiry,
    GroupChange,
    GroupInfo,
    GroupUpdate,
    InboxEntry,
    JoinRequest,
    MessageChange,
    MessageFacts,
    Profile,
    ProfileChange,
    PushToken,
    ReactionChange,
    ReadChange,
    ReceiptRequest,
    ReceiptResult,
    ReportInfo,
    ResumedSession,
    SessionMark,
    SmsRecord,
    StoredMessage,
    SyncPage,
    TextSend,
    TimerChange,
    UserInfo,
)
from workers.stores.rules.history import HistoryPage, HistoryQuery
from workers.stores.rules.privacy import Invitation, PrivacySettings
from workers.stores.rules.retention import MessagePrune
from workers.stores.rules.search import SearchPage

__all__ = [
    "AdminStore",
    "Blocks",
    "Chats",
    "CommandStore",
    "Credentials",
    "Devices",
    "GroupSettingsStore",
    "Groups",
    "History",
    "Logins",
    "MediaAccess",
    "MediaEndpointStore",
    "MessageChanges",
    "MessageDeletion",
    "MessageViews",
    "Messages",
    "MqttSessions",
    "Notifications",
    "Phones",
    "Presence",
    "PresencePrivacy",
    "Privacy",
    "Profiles",
    "Reactions",
    "Retention",
    "Store",
    "Timers",
    "Users",
]


class Credentials(Protocol):
    """The login check (MQTT and the media endpoint)."""

    def credential_hashes(self, user: str, device: str | None = None) -> list[tuple[str, str]]:
        """(kind, hash) of every credential of an enabled user; empty for an unknown user. With
        ``device`` (an MQTT login as ``<user>/<device>``), the tokens bound to another device are
        left out; without (the media endpoint), every token of the user counts."""
        ...

    def credential_hashes_many(self, logins: Sequence[tuple[str, str | None]]) -> list[list[tuple[str, str]]]:
        """``credential_hashes`` of each ``(user, device)`` login, in order, in one look-up (a
        connect storm's logins, a batch at a time)."""
        ...


class Logins(Credentials, Protocol):
    """The login check when a JWT may log in a user it knows only by id (and create it)."""

    def user_exists(self, user: str) -> bool: ...
    def create_user(self, user: str, *, now: float) -> None: ...
    def device_signed_out_at(self, user: str, device: str) -> float | None:
        """When the device was last signed out (None: never): a JWT issued before is refused."""
        ...


class Phones(Protocol):
    """A user's phone number, for SMS (set by the CLI, read by the notifier)."""

    def set_phone(self, user: str, phone: str | None) -> None: ...
    def phone_of(self, user: str) -> str | None: ...


class Users(Credentials, Phones, Protocol):
    """Accounts and their credentials: what the CLI manages."""

    def create_user(self, user: str, *, now: float) -> None: ...
    def delete_user(self, user: str) -> None: ...
    def list_users(self) -> list[UserInfo]: ...
    def add_credential(
        self, user: str, *, kind: str, secret_hash: str, now: float, device: str | None = None
    ) -> int:
        """Store a credential; with ``device`` (tokens only) it logs in only as ``<user>/<device>``."""
        ...

    def remove_credentials(self, user: str) -> int: ...


class Devices(Protocol):
    """A user's devices (the ``<device>`` of the client id): when each was first and last seen,
    whether a node has it connected, its platform, and sign-outs."""

    def record_devices(self, changes: Sequence[DeviceSeen]) -> None:
        """Apply connects, disconnects and platforms in order, in one go (the presence plugin's
        batch). A disconnect clears the device's node only if it is still that node."""
        ...

    def devices_of(self, user: str) -> list[DeviceInfo]:
        """The user's devices by first seen, without those signed out and not connected since."""
        ...

    def sign_out_device(self, user: str, *, device: str, now: float) -> int:
        """Revoke the device's own tokens and record its sign-out at ``now`` (JWTs issued before
        are refused for it); the number of tokens removed. UnknownUser, or UnknownDevice when the
        device never connected and has no token."""
        ...

    def signed_out_since(self, since: float) -> list[tuple[str, str, float]]:
        """(user, device, signed out at) of the sign-outs at or after ``since``."""
        ...

    def devices_offline_on(self, node: str) -> None:
        """Every device recorded connected to ``node`` is not (the node starts, after a crash)."""
        ...


class Presence(Protocol):
    """Whose presence a user may see (the ACL), and when users were last seen (presence)."""

    def can_see_presence(self, watcher: str, user: str) -> bool:
        """Whether ``watcher`` is ``user`` or a contact of it (a 1-on-1 conversation, a shared group)."""
        ...

    def set_last_seen(self, user: str, ts: float) -> None: ...
    def last_seen_all(self) -> dict[str, float]: ...


class Messages(Protocol):
    """Messages, receipts and the inbox log: what the pipeline and the media job store and read."""

    def user_exists(self, user: str) -> bool: ...
    def accept_message(
        self,
        *,
        sender: str,
        command_id: str,
        recipient: str,
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
    ) -> AcceptResult:
        """Store a message to a user, or to a group id (one copy in each other member's inbox).

        ``media`` is the wire object of an image or video (``text`` is then its caption, maybe empty);
        its object keys are recorded so that :meth:`MediaAccess.can_read_media` knows who may
        download them. ``reply_to``: the message it answers; the message then carries its quote
        (``rules.replies``), or CommandError ``not_found`` / ``bad_request`` refuses it.
        """
        ...

    def forward_message(
        self, *, sender: str, command_id: str, message_id: str, recipient: str, now: float
    ) -> AcceptResult:
        """Store a copy of ``message_id`` (its text and media objects, marked forwarded) from
        ``sender`` to ``recipient``, as ``accept_message`` would (same refusals for the recipient,
        same answer for a resend). CommandError ``not_found`` when ``sender`` cannot read the
        message (neither sent nor got it, a tombstone, no such id)."""
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

    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult: ...
    def apply_receipts_of(
        self, requests: Sequence[ReceiptRequest], *, now: float
    ) -> list[ReceiptResult] | None:
        """Apply several users' receipts at once (of 1-on-1 and group messages: every member
        acknowledges a group message at the same moment), as ``apply_receipts`` would one by one,
        in order, except that the members' receipts of one group message reach its sender as one
        event per status (``rules.receipts.merge_group_receipts``); None, with nothing changed,
        when that is not possible in one go (a message not to that user, or a backend without it):
        then apply them one by one."""
        ...

    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]:
        """Entries of ``user`` with cursor > ``after``, in order, and whether more follow."""
        ...

    def sync_page(self, *, user: str, after: int, limit: int, max_bytes: int) -> SyncPage:
        """The entries ``sync`` gives, as few as keep their JSON within ``max_bytes`` (at least
        one), as the wire has them: a store that keeps the JSON text hands it over unparsed."""
        ...


class MediaAccess(Protocol):
    """Who may send media to whom, and who may download a stored object."""

    def check_recipient(self, sender: str, recipient: str) -> None:
        """Raise what accept_message would for ``recipient`` (UnknownUser, unknown_group, not_member)."""
        ...

    def can_read_media(self, user: str, key: str) -> bool:
        """Whether ``user`` sent or received a message with the media object ``key``."""
        ...

    def readable_media(self, user: str, key: str) -> dict[str, Any] | None:
        """The ``media`` object of the message holding the object ``key`` when ``user`` sent or
        received it (how to serve it: a document is a download), else None."""
        ...


class Groups(Protocol):
    """Groups and their members. Refusals are CommandError with the wire code (not_member,
    not_admin, group_full...); every change puts a ``group`` event in each member's inbox log."""

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


class GroupSettingsStore(Protocol):
    """Group settings, invite links and join requests (see rules.group_settings). Refusals are
    CommandError with the wire code (not_admin, not_member, group_full, not_found)."""

    def set_group_settings(
        self, *, group: str, actor: str, changes: Mapping[str, Any], now: float, ref: str
    ) -> GroupUpdate:
        """Set the settings named in ``changes`` (``description``, ``icon``: a value or None;
        ``only_admins_send``, ``approval``: booleans; already checked) if ``actor`` is an admin; a
        ``group`` event (``settings``) to every member. The same values: nothing changes."""
        ...

    def can_read_group_icon(self, user: str, key: str) -> bool:
        """Whether ``key`` is the icon of a group ``user`` is a member of."""
        ...

    def check_group_admin(self, user: str, group: str) -> None:
        """Raise what a settings change of ``user`` would (unknown_group, not_member, not_admin)."""
        ...

    def set_invite(
        self, *, group: str, actor: str, code_hash: str | None, expires_at: float | None, now: float
    ) -> None:
        """Replace the group's invite link by the code of ``code_hash`` (None: revoke it; admins only)."""
        ...

    def join_by_invite(
        self, *, user: str, code_hash: str, now: float, ref: str, max_members: int
    ) -> GroupUpdate:
        """Join the group of the live invite code of ``code_hash`` (``joined``; a ``group`` event
        to every member), or ask to when it needs approval (``pending``; a ``group_request``
        event to the user and every admin). ``no_such_invite`` for any code that is not live."""
        ...

    def join_requests(self, *, group: str, actor: str) -> list[JoinRequest]:
        """The pending requests to join the group, the oldest first (admins only)."""
        ...

    def decide_request(
        self, *, group: str, actor: str, user: str, approve: bool, now: float, ref: str, max_members: int
    ) -> GroupUpdate:
        """Approve (``user`` joins: a ``group`` event ``approved``) or reject (a ``group_request``
        event ``rejected`` to the user and the admins) a pending request (admins only)."""
        ...


class Profiles(Protocol):
    """Display names, about texts and avatars (see rules.profiles): set by their user, seen by contacts."""

    def update_profile(
        self, *, user: str, changes: Mapping[str, Any], now: float, ref: str | None
    ) -> ProfileChange:
        """Change the fields of ``user``'s profile named in ``changes`` (``name``, ``about``,
        ``avatar``: a value, or None to clear it; already checked) and put the ``profile`` event in
        the inbox of the user and each contact. UnknownUser if the user does not exist."""
        ...

    def profiles_for(self, *, watcher: str, users: Sequence[str], everyone: bool) -> list[Profile]:
        """The profiles of those of ``users`` that exist and that ``watcher`` may see, in order."""
        ...

    def can_read_avatar(self, user: str, key: str, *, everyone: bool) -> bool:
        """Whether ``key`` is someone's current avatar and ``user`` may see their profile."""
        ...


class Notifications(Phones, Protocol):
    """Push tokens, the per-user notification state, and the SMS outbox: the notifier's."""

    def register_push_token(
        self, *, user: str, token: str, platform: str, preview: bool, now: float
    ) -> None: ...
    def unregister_push_token(self, *, user: str, token: str) -> bool: ...
    def remove_push_token(self, token: str) -> None: ...
    def push_tokens(self, user: str) -> list[PushToken]: ...
    def note_waiting(self, *, user: str, message_id: str) -> tuple[bool, bool]:
        """Add a message to the user's pending list; (push job needed, SMS check needed)."""
        ...

    def take_pending(self, user: str) -> list[str]:
        """The messages of the burst a push is due for; the next message starts a new burst."""
        ...

    def sms_checked(self, user: str) -> float:
        """Clear the SMS check; returns the time up to which messages were already texted."""
        ...

    def sms_sent(self, user: str, *, until: float) -> None: ...
    def undelivered(self, *, user: str, message_ids: Sequence[str]) -> list[StoredMessage]:
        """Those of the messages that no device of ``user`` has yet, oldest first."""
        ...

    def undelivered_since(self, *, user: str, since: float) -> list[StoredMessage]: ...
    def record_sms(self, *, user: str, phone: str, body: str, now: float) -> None: ...
    def sms_outbox(self, user: str | None = None) -> list[SmsRecord]: ...


class MessageDeletion(Protocol):
    """Deleting a message for everyone (moderation now; a sender or a group admin later)."""

    def delete_for_everyone(
        self, message_id: str, *, by: str, now: float, ref: str | None = None
    ) -> Deletion:
        """Turn the message into a tombstone (``rules.deletion``): its text, caption and media are
        removed from the store and from every inbox entry that carried it, and a ``deleted`` event
        goes to its sender and recipients (of a group message: those still members), all in one
        transaction. ``by`` is ``"admin"`` or a user id. A tombstone is left as it is
        (``changed`` False, no events). CommandError ``not_found`` for an unknown id. Who may delete
        is the caller's rule: this only does it. The media objects it returns are the caller's to
        remove from storage after the commit. ``ref``: the command id of a user's
        deletion, in the ``ref`` of the deleter's event (the others' is null)."""
        ...


class Reactions(Protocol):
    """One emoji per user per message (``rules.reactions``)."""

    def react(
        self, *, user: str, message_id: str, emoji: str | None, command_id: str, now: float
    ) -> ReactionChange:
        """Set (``emoji``) or remove (None) ``user``'s reaction to a message, with its summary
        written into every inbox entry that carries the message and a ``reaction`` event for every
        hearer (``ref`` = ``command_id`` on the user's own), in one transaction. Nothing changes
        (``changed`` False) for the same emoji again or the command that made the current state
        sent again. CommandError ``not_found`` when the user cannot see the message (not its
        sender or a recipient of a copy; of a group message, no longer a member), it does not
        exist, or it was deleted for everyone."""
        ...


class MessageChanges(Protocol):
    """Changes users make to messages already sent: edits, deletes for me, and what the rules of
    a delete for everyone need to know (``rules.edits``, ``rules.hides``, ``rules.deletion``)."""

    def message_facts(self, message_id: str) -> MessageFacts | None:
        """Who sent the message and when, who holds it, its group's admins; None: no such message."""
        ...

    def edit_message(
        self, message_id: str, *, user: str, text: str, command_id: str, now: float, window: float
    ) -> MessageChange:
        """Replace the text (caption) of ``user``'s message, as ``rules.edits`` allows (else a
        CommandError: not_found, forbidden, too_late, too_large), rewrite the entries that carry it
        and put an ``edited`` event in each hearer's inbox, in one transaction. An edit with a
        command id seen before for it changes nothing (``changed`` False)."""
        ...

    def hide_message(self, message_id: str, *, user: str, command_id: str, now: float) -> MessageChange:
        """Hide a message ``user`` holds from their own devices (``rules.hides``; else not_found):
        their entries that carried it carry the hidden stub, and a ``hidden`` event goes to their
        inbox, in one transaction. Hidden already: nothing changes (``changed`` False)."""
        ...


# ---------------------------------------------------------------- disappearing messages
class Timers(Protocol):
    """Disappearing messages (``rules.timers``): each conversation's timer, and the sweep that
    scrubs the messages whose time is up."""

    def set_timer(self, *, user: str, to: str, seconds: int, now: float, ref: str) -> TimerChange:
        """Set the timer of ``user``'s conversation with ``to`` (a user or a group; 0: off), with a
        ``timer`` event for every participant (a group's current members; ``ref`` on the setter's
        own), in one transaction. CommandError unknown_user/unknown_group, not_member, not_admin
        (a group's timer is its admins'). The same value again changes nothing (``changed``
        False). Which values are allowed is the caller's rule."""
        ...

    def timer_of(self, *, user: str, to: str) -> tuple[str, int]:
        """``(conversation id, seconds)`` of ``user``'s conversation with ``to`` (0: off);
        CommandError not_member for a group ``user`` is not in, unknown_group/unknown_user."""
        ...

    def expire_due(self, *, now: float, limit: int) -> Expiry:
        """Scrub up to ``limit`` messages whose ``expires_at`` has passed, as a deletion for
        everyone does (text, media rows, reactions, quotes of them), rewrite every entry that
        carried them to the expired stub, and append one ``expired`` event per hearer listing
        them, in one transaction. Safe with several sweepers at once: each message is expired
        once."""
        ...


class Chats(Protocol):
    """The chat list, read state across a user's devices, and who hears typing in a group (see
    rules.chats)."""

    def chat_list(
        self, *, user: str, before: tuple[float, str] | None, limit: int
    ) -> tuple[list[ChatSummary], bool]:
        """``limit`` of the user's conversations, newest activity first, after the chat at
        ``before`` (its activity time and conversation id); and whether more follow."""
        ...

    def mark_read(self, *, user: str, conversation: str, seq: int, now: float, ref: str) -> ReadChange:
        """Move the user's read position of the conversation forward to ``seq`` (at most its last
        message the user can see) and append the ``read`` event to their own inbox, in one
        transaction. ``forbidden`` for a conversation the user is not in (or that does not exist)."""
        ...

    def typing_audience(self, *, user: str, group: str) -> list[str]:
        """The members of ``group`` other than ``user``; ``unknown_group``, or ``not_member`` when
        ``user`` is not one."""
        ...


# ---- search
class Search(Protocol):
    """Full-text search of a user's own messages (``rules.search``)."""

    def search_messages(
        self, *, user: str, query: str, conversation: str | None, before: str | None, limit: int
    ) -> SearchPage:
        """A page of ``user``'s messages (sent, or got a copy of) whose text has every word of
        ``query`` as a prefix of one of its words, newest first, as the user sees them now; not
        deleted for everyone, not hidden by the user; only in ``conversation`` when given (one
        the user may not search: a CommandError ``forbidden``). ``before``: the previous page's
        cursor (``SearchPage.next``)."""


class MessageViews(Protocol):
    """Messages as one user sees them now (``rules.views``): what history, search and the chat
    list answer with. The backends' ``_message_views(conn_or_session, ids, viewer)`` does the
    same inside a caller's transaction."""

    def message_views(self, message_ids: Sequence[str], *, viewer: str) -> dict[str, dict[str, Any]]:
        """The wire form of each message, by id, exactly as ``viewer``'s inbox carriers hold it;
        only those ``viewer`` sent or got a copy of (any other id, or an unknown one, is absent)."""
        ...


class History(Protocol):
    """One conversation's messages a page at a time, as the viewer sees them now (``rules.history``)."""

    def history(self, query: HistoryQuery) -> HistoryPage:
        """The page of ``query`` (its ``limit`` already clamped). CommandError ``forbidden`` for a
        conversation the viewer is not in (whether or not it exists), ``bad_request`` for a
        malformed conversation id."""
        ...


class Retention(Protocol):
    """Pruning old inbox entries and messages (``rules.retention``): sweeps that go on where they
    stopped, a step at a time, and the floor a ``sync`` is checked against."""

    def inbox_floor(self, user: str) -> int:
        """The highest cursor of ``user``'s inbox that was pruned (0: none)."""
        ...

    def retention_lease(self, holder: str, *, now: float, ttl: float) -> bool:
        """Take or renew the lease of the process that prunes: False while another holds it."""
        ...

    def retention_release(self, holder: str) -> None:
        """Give the lease up (a process that stops): another may prune at once."""
        ...

    def prune_inbox(self, *, older_than: float, max_users: int) -> tuple[int, bool]:
        """Prune the entries created before ``older_than`` of the next ``max_users`` users of the
        sweep: ``(entries pruned, the sweep went through every user)``."""
        ...

    def prune_messages(self, *, older_than: float, max_conversations: int) -> MessagePrune:
        """Delete the messages created before ``older_than`` of the next ``max_conversations``
        conversations of the sweep, with everything of theirs."""


class MqttSessions(Protocol):
    """Persistent MQTT sessions (3.1.1 clean session 0, MQTT 5 Session Expiry Interval), kept per
    ``<user>/<device>`` so that any node resumes one: the inbox cursor the device acknowledged, and
    the expiry. The subscription restored is always the user's inbox, so it needs no row."""

    def open_mqtt_session(self, user: str, device: str, *, now: float, expiry: float) -> ResumedSession:
        """Resume the device's session, expiring ``expiry`` seconds from ``now`` from here on; when
        it had none alive, one is made at the user's last inbox cursor (nothing to replay)."""
        ...

    def end_mqtt_sessions(self, devices: Sequence[tuple[str, str]]) -> None:
        """Delete the sessions of these ``(user, device)`` (clean-session connects); one that has
        none: nothing to do."""
        ...

    def save_mqtt_sessions(self, marks: Sequence[SessionMark]) -> None:
        """Move each session's cursors forward (never back) and set its expiry, in one go; a
        session that was ended meanwhile is not made again."""
        ...

    def expire_mqtt_sessions(self, *, now: float) -> int:
        """Delete the sessions whose expiry is past; how many."""
        ...


class Privacy(Protocol):
    """Per-user privacy settings and group invitations (see rules.privacy)."""

    def privacy_of(self, user: str) -> PrivacySettings:
        """The user's settings (the defaults when they never changed any)."""
        ...

    def set_privacy(
        self, *, user: str, changes: Mapping[str, Any], command_id: str, now: float
    ) -> tuple[PrivacySettings, list[InboxEntry]]:
        """Apply ``changes`` and append the ``privacy`` event to the user's inbox; a resent
        command changes nothing and appends nothing (empty entries)."""
        ...

    def invitation(self, *, group: str, user: str, now: float) -> Invitation | None: ...
    def accept_invitation(
        self, *, group: str, user: str, now: float, ref: str, max_members: int
    ) -> GroupChange:
        """Join by a pending invitation (the ``group`` events, action ``joined``); none pending:
        ``not_found``."""
        ...

    def decline_invitation(self, *, group: str, user: str, now: float, ref: str) -> list[InboxEntry]:
        """Drop a pending invitation (the ``group_invitation`` ``declined`` event); none: ``not_found``."""
        ...


class PresencePrivacy(Protocol):
    """What the broker's presence ACL and plugin need of the privacy settings."""

    def may_watch_presence(self, watcher: str, user: str, *, everyone: bool) -> bool:
        """Whether ``watcher`` is in ``user``'s ``online`` audience, narrowed by the server's
        ceiling (``everyone``: ``presence.visibility = "everyone"``)."""
        ...

    def hiding_last_seen(self, users: Sequence[str] | None, *, everyone: bool) -> set[str]:
        """Which of ``users`` (None: of everyone) publish presence without ``last_seen``."""


class Blocks(Protocol):
    """Who blocks whom, and reports of users to the operators (``rules.blocks``)."""

    def set_block(self, *, user: str, target: str, blocked: bool, ref: str, now: float) -> BlockChange:
        """Block (``blocked``) or unblock ``target`` for ``user``, with a ``blocking`` event in the
        user's inbox, in one transaction; the same state again changes nothing (``changed``
        False). CommandError ``bad_request`` for oneself; UnknownUser for no such user."""
        ...

    def blocked_users(self, user: str) -> list[str]:
        """Whom ``user`` blocks, in the order they were blocked."""
        ...

    def is_blocked(self, blocker: str, blocked: str) -> bool:
        """Whether ``blocker`` blocks ``blocked``."""
        ...

    def report_user(
        self, *, reporter: str, user: str, message_ids: Sequence[str], reason: str, ref: str, now: float
    ) -> bool:
        """Store a report with copies of the messages as the reporter's inbox carries them;
        False: this report (``ref``) was stored before. CommandError ``not_found`` for a message
        the reporter cannot see, ``bad_request`` for oneself; UnknownUser for no such user."""
        ...


class CommandStore(
    Messages,
    Groups,
    Notifications,
    Profiles,
    MessageDeletion,
    MessageChanges,
    Reactions,
    GroupSettingsStore,
    Timers,
    History,
    Retention,
    Privacy,
    Blocks,
    Chats,
    Search,
    Protocol,
):
    """What the command pipeline needs: messages, groups, push tokens, and batches of commands."""

    def devices_of(self, user: str) -> list[DeviceInfo]: ...

    def batch(self) -> AbstractContextManager[None]:
        """Group the calls this thread makes inside the block (a batch of commands): each call
        still succeeds or fails on its own, and what they stored becomes visible (is committed)
        when the block ends. An exception out of the block undoes the calls of the block that
        the backend had not committed yet, so the caller must announce nothing before it ends;
        running the block again is safe (every write is idempotent). A batch inside a batch
        joins it. (SQL: one transaction, a savepoint per call. MongoDB: a transaction per call.)"""
        ...


class MediaEndpointStore(Messages, MediaAccess, Profiles, Protocol):
    """What the media HTTP endpoint needs: who may upload to whom and download what (avatars
    too), and whether an upload was stored already (its ``sent`` entry)."""

    def can_read_group_icon(self, user: str, key: str) -> bool: ...
    def check_group_admin(self, user: str, group: str) -> None: ...


class AdminStore(Users, Protocol):
    """What the admin HTTP API needs besides the CLI's: accounts and groups a page at a time, in
    id order (``after``: the last id of the previous page, exclusive), one of each, and a user's
    devices."""

    def devices_of(self, user: str) -> list[DeviceInfo]: ...

    def user_exists(self, user: str) -> bool: ...
    def users_page(self, *, after: str | None, limit: int) -> list[UserInfo]: ...
    def user_info(self, user: str) -> UserInfo | None: ...
    def groups_page(self, *, after: str | None, limit: int) -> list[GroupInfo]: ...
    def group_info(self, group: str) -> GroupInfo | None: ...
    def reports_page(self, *, after: int | None, limit: int) -> list[ReportInfo]:
        """Reports of users, oldest first (``after``: the last report id of the previous page)."""
        ...


class Store(
    CommandStore,
    AdminStore,
    Logins,
    Devices,
    MqttSessions,
    Presence,
    PresencePrivacy,
    MediaAccess,
    MessageViews,
    Protocol,
):
    """All of it, and the store's life: what opens, sets up and closes it."""

    def create_schema(self) -> None:
        """Create the tables or collections and their indexes (idempotent: every node, every start)."""
        ...

    def close(self) -> None: ...
