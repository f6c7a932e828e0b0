"""The client side of the mqchat protocol as a state machine without I/O (pure logic, not thread-safe).

:class:`Session` is fed what happens on the connection (connected, inbox subscribed, a payload
arrived, time passed, the app wants to send) and answers with :class:`Effects`: the commands to
publish and the events to hand to the app. The MQTT adapter (:mod:`client_sdk._client`) does the
I/O and the locking; everything docs/protocol.md "Semantics" asks of a client lives here:

- after every connect and inbox SUBACK: ``sync`` from the processed cursor, following the pages
  (``more``) to the end; then resend every unanswered ``send``, in the original order;
- sequenced events (live or from sync pages) processed strictly in cursor order, exactly once;
  a gap that stays open for the gap timeout triggers a ``sync`` (never two at a time);
- ``delivered`` receipts for messages from other users (1-on-1 or group), one command per batch;
- ``sent`` / ``error`` answers settle the outgoing messages, receipts move them forward;
- commands that wait for an answer (group management) are matched with the event whose ``ref`` is
  their id: the sequenced ``group`` event when it is processed in order, the live ``groups`` event
  on arrival, or an ``error``; every group event and ``groups`` answer refreshes the group cache;
- the presence subscriptions: the watched users' topics are subscribed again after every connect,
  together with the inbox; a user whose subscription the server refuses is no longer watched (a
  ``PresenceRefused`` event says so) until the app watches them again.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from client_sdk._commands import (
    DEFAULT_SYNC_LIMIT,
    forward_command,
    new_command_id,
    receipt_commands,
    send_command,
    sync_command,
    typing_command,
)
from client_sdk._errors import CommandRejected
from client_sdk._events import (
    Blocking,
    BlockList,
    ChatPage,
    DeviceList,
    Event,
    Group,
    GroupEvent,
    GroupInvite,
    GroupList,
    HistoryPage,
    JoinRequest,
    JoinRequestList,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageHidden,
    Ok,
    Presence,
    PresenceRefused,
    PrivacyAnswer,
    Profile,
    ProfileChanged,
    ProfileList,
    Reaction,
    ReadState,
    Receipt,
    SearchResults,
    Sent,
    Sequenced,
    ServerError,
    SyncPage,
    SyncReset,
    TimerChanged,
    TimerInfo,
    Typing,
    cursor_of,
    parse_inbox,
    parse_presence,
)
from client_sdk._outbox import Outbox, OutgoingMessage
from client_sdk._pending import A as _A
from client_sdk._pending import PendingRequest, PendingRequests
from client_sdk._privacy import GroupInvitation, PrivacyChanged
from client_sdk._sequencer import DEFAULT_GAP_TIMEOUT, Sequencer
from client_sdk._subscriptions import Subscribe, Subscriptions
from client_sdk.contract import GROUP_SETTINGS_COMMAND_TYPES, Status

__all__ = ["SYNC_RETRY_DELAY", "SYNC_TIMEOUT", "Command", "Effects", "Session"]

logger = logging.getLogger(__name__)

SYNC_TIMEOUT = 15.0
"""Seconds without a page before an unanswered ``sync`` is sent again."""
SYNC_RETRY_DELAY = 1.0
"""Seconds to wait before retrying a ``sync`` the server refused (e.g. ``busy``, ``rate_limited``)."""

_MAX_REMEMBERED_SYNCS = 64


@dataclass(frozen=True, slots=True)
class Command:
    """A command payload to publish on the user's outbox topic, with its MQTT QoS."""

    payload: dict[str, Any]
    qos: int = 1


TRANSIENT_CODES: Final = frozenset({"rate_limited", "busy"})
"""Error codes that refuse a ``send`` only for now: the message stays in the outbox and is resent."""
THROTTLE_RESEND_DELAY: Final = 1.0
UNANSWERED_RESEND: Final = 15.0
"""Seconds a connected client waits for ``sent`` before publishing the same send again."""


@dataclass(slots=True)
class Effects:
    """What the I/O layer must do after an input: send ``subscriptions``, publish ``commands`` in
    order, hand ``events`` to the app in order, and persist the cursor when ``cursor_advanced``."""

    commands: list[Command] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    cursor_advanced: bool = False
    subscriptions: list[Subscribe] = field(default_factory=list)

    def __iadd__(self, other: Effects) -> Effects:
        self.subscriptions.extend(other.subscriptions)
        self.commands.extend(other.commands)
        self.events.extend(other.events)
        self.cursor_advanced = self.cursor_advanced or other.cursor_advanced
        return self


def _outgoing_command(outgoing: OutgoingMessage) -> dict[str, Any]:
    """The command that publishes (again) an outgoing message: a ``forward`` or a ``send``."""
    if outgoing.forward_of is not None:
        return forward_command(id=outgoing.id, message=outgoing.forward_of, to=outgoing.to)
    return send_command(id=outgoing.id, to=outgoing.to, text=outgoing.text, reply_to=outgoing.reply_to)


class Session:
    """The protocol state of one client of user ``user``, resuming after inbox cursor ``cursor``.

    Times are passed in (any monotonic clock); ``new_id`` makes command ids.
    """

    def __init__(
        self,
        *,
        user: str,
        cursor: int = 0,
        auto_delivered: bool = True,
        gap_timeout: float = DEFAULT_GAP_TIMEOUT,
        sync_limit: int = DEFAULT_SYNC_LIMIT,
        sync_timeout: float = SYNC_TIMEOUT,
        sync_retry_delay: float = SYNC_RETRY_DELAY,
        new_id: Callable[[], str] = new_command_id,
    ) -> None:
        self.user = user
        self.outbox = Outbox()
        self.requests = PendingRequests()
        self._auto_delivered = auto_delivered
        self._sequencer: Sequencer[Sequenced | None] = Sequencer(processed=cursor, gap_timeout=gap_timeout)
        self._sync_limit = sync_limit
        self._sync_timeout = sync_timeout
        self._sync_retry_delay = sync_retry_delay
        self._new_id = new_id
        self._connected = False
        self._subscribed = False
        self._synced = False
        self._active_sync: str | None = None
        self._active_after = 0
        self._sync_deadline = 0.0
        self._retry_at: float | None = None
        # sends the server refused for now (rate_limited, busy): resent after a pause
        self._throttled: list[str] = []
        self._resend_at: float | None = None
        # when each pending send was last published: one unanswered for UNANSWERED_RESEND seconds
        # is published again (its job may have been lost with a queue, a worker or a node)
        self._published_at: dict[str, float] = {}
        self._receipts_pending: dict[str, tuple[dict[str, Any], float]] = {}
        self._my_syncs: deque[str] = deque(maxlen=_MAX_REMEMBERED_SYNCS)
        self._presence: dict[str, Presence] = {}
        self._groups: dict[str, Group] = {}
        self._group_answers: dict[str, GroupEvent | JoinRequest] = {}
        """The events that answered group settings commands of this user's (see _answer_group)."""
        self._profiles: dict[str, Profile] = {}
        self._invitations: dict[str, GroupInvitation] = {}
        self._subscriptions = Subscriptions()
        self._conversations: set[str] = set()
        """The conversations this session processed a message of (for a ``sync_reset``)."""

    # -- state -------------------------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """The highest inbox cursor processed in order."""
        return self._sequencer.processed

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def synced(self) -> bool:
        """Whether the sync after the latest connect reached the end (and the outbox was resent)."""
        return self._synced

    def presence(self, user: str) -> Presence | None:
        """The latest presence seen for ``user``."""
        return self._presence.get(user)

    def presence_unanswered(self, user: str) -> bool:
        """Whether a subscription to ``user``'s presence is out and the server has not answered it yet."""
        return self._subscriptions.unanswered(user)

    def presence_refused(self, user: str) -> bool:
        """Whether the server refused to show ``user``'s presence (and the app did not watch again since)."""
        return self._subscriptions.refused(user)

    def group(self, group_id: str) -> Group | None:
        """The group as the latest ``group`` event or ``groups`` answer described it (None: never seen).

        A group this user left or was removed from stays here as it was right after that.
        """
        return self._groups.get(group_id)

    def profile(self, user: str) -> Profile | None:
        """``user``'s profile as last seen (a profile event, an answer, a group snapshot), or None."""
        return self._profiles.get(user)

    def forget_invitation(self, group: str) -> None:
        """The server has no pending invitation to ``group`` (it expired, or was answered)."""
        self._invitations.pop(group, None)

    def group_invitations(self, *, now: float) -> list[GroupInvitation]:
        """The invitations to groups received and not answered yet, nor expired (oldest first)."""
        return [i for i in self._invitations.values() if i.expires > now]

    def next_tick(self) -> float | None:
        """When :meth:`on_tick` has something to do (None: nothing planned)."""
        if not self._subscribed:
            return None
        if self._active_sync is not None:
            return self._sync_deadline
        times = [t for t in (self._retry_at, self._resend_at, self._sequencer.gap_deadline) if t is not None]
        if self._synced and self._published_at:
            times.append(min(self._published_at.values()) + UNANSWERED_RESEND)
        if self._synced and self._receipts_pending:
            times.append(min(at for _, at in self._receipts_pending.values()) + UNANSWERED_RESEND)
        return min(times, default=None)

    # -- connection ----------------------------------------------------------------------------

    def on_connected(self) -> Effects:
        """The server accepted the connection (CONNACK): subscribe the inbox and the watched presences
        again."""
        self._reset_connection()
        self._connected = True
        return Effects(subscriptions=[self._subscriptions.on_connected()])

    def on_disconnected(self) -> None:
        """The connection is gone."""
        self._reset_connection()
        self._subscriptions.lost()

    def on_subscribing(self, message_id: int, subscribe: Subscribe) -> None:
        """``subscribe`` went out as the SUBSCRIBE ``message_id``; its SUBACK is awaited.

        Not called for a SUBSCRIBE that could not be sent: it is made again on the next connect.
        """
        self._subscriptions.sent(message_id, subscribe)

    def on_suback(self, message_id: int, refused: Sequence[bool], *, now: float) -> Effects:
        """The server answered SUBSCRIBE ``message_id``; ``refused`` tells, per topic in order,
        whether it refused that topic.

        A refused presence is no longer watched (a :class:`PresenceRefused` event); a granted inbox
        starts the catch-up (:meth:`on_subscribed`).
        """
        refusals, inbox_granted = self._subscriptions.answered(message_id, refused)
        for user in refusals:
            logger.info("the server refused to show the presence of %s to %s", user, self.user)
        effects = Effects(events=[PresenceRefused(user=user) for user in refusals])
        if inbox_granted is False:
            logger.error("the server refused the inbox subscription of %s", self.user)
        elif inbox_granted:
            effects += self.on_subscribed(now=now)
        return effects

    def on_subscribed(self, *, now: float) -> Effects:
        """The inbox subscription was granted: catch up with a ``sync`` from the processed cursor."""
        if not self._connected:
            return Effects()
        self._subscribed = True
        return self._start_sync(now=now)

    def on_tick(self, *, now: float) -> Effects:
        """Time passed: ask again for an unanswered or refused sync, or fill a gap that stayed open."""
        if not self._subscribed:
            return Effects()
        if self._active_sync is not None:
            if now < self._sync_deadline:
                return Effects()
            logger.warning(
                "sync %s unanswered after %.1f s; asking again", self._active_sync, self._sync_timeout
            )
            return self._start_sync(now=now)
        if self._retry_at is not None and now >= self._retry_at:
            return self._start_sync(now=now)
        if self._resend_at is not None and now >= self._resend_at and self._synced:
            return self._resend_throttled()
        if self._sequencer.gap_due(now=now):
            logger.info("inbox gap after cursor %d stayed open; syncing", self.cursor)
            return self._start_sync(now=now)
        if self._synced:
            return self._resend_unanswered(now=now)
        return Effects()

    def _resend_unanswered(self, *, now: float) -> Effects:
        stale = [
            o for o in self.outbox.pending() if self._published_at.get(o.id, now) <= now - UNANSWERED_RESEND
        ]
        if stale:
            logger.info(
                "%d message(s) unanswered for %.0f s; sending them again", len(stale), UNANSWERED_RESEND
            )
        effects = Effects(commands=[self._publish_send(o, now=now) for o in stale])
        effects.commands += self._republish_receipts(older_than=now - UNANSWERED_RESEND, now=now)
        return effects

    def _republish_receipts(
        self, *, older_than: float, now: float, only: set[str] | None = None
    ) -> list[Command]:
        again = [
            (ref, payload)
            for ref, (payload, at) in self._receipts_pending.items()
            if at <= older_than and (only is None or ref in only)
        ]
        for ref, payload in again:
            self._receipts_pending[ref] = (payload, now)
        return [Command(payload) for _, payload in again]

    def _publish_send(self, outgoing: OutgoingMessage, *, now: float) -> Command:
        self._published_at[outgoing.id] = now
        return Command(_outgoing_command(outgoing))

    # -- payloads from the server ---------------------------------------------------------------

    def on_inbox(self, payload: Any, *, now: float) -> Effects:
        """A decoded payload arrived on the inbox topic; malformed or unknown ones are logged and ignored."""
        try:
            item = parse_inbox(payload)
        except ValueError as exc:
            cursor = cursor_of(payload)
            if cursor is None:
                logger.warning("ignoring an undecodable inbox event: %s", exc)
                return Effects()
            # Keep the inbox moving: a bad (or newer-than-us) event still takes its place in the order.
            logger.error("skipping the unreadable inbox event at cursor %d: %s", cursor, exc)
            return self._sequence([(cursor, None)], now=now)
        if isinstance(item, SyncPage):
            return self._on_sync_page(item, now=now)
        if isinstance(item, ServerError):
            return self._on_error(item, now=now)
        if isinstance(item, Typing):
            return Effects(events=[item])
        if isinstance(item, GroupList):
            return self._on_group_list(item)
        if isinstance(item, ProfileList):
            for profile in item.profiles:
                self._profiles[profile.user] = profile
            self.requests.resolve(item.ref, item)
            return Effects()
        if isinstance(
            item,
            DeviceList | GroupInvite | JoinRequestList | TimerInfo | BlockList | ChatPage | SearchResults,
        ):
            self.requests.resolve(item.ref, item)
            return Effects()
        if isinstance(item, PrivacyAnswer):
            self.requests.resolve(item.ref, item)
            return Effects()
        if isinstance(item, Ok):
            self._receipts_pending.pop(item.ref, None)
            self.requests.resolve(item.ref, item)
            return Effects()
        if isinstance(item, HistoryPage):
            self.requests.resolve(item.ref, item)
            return Effects()
        if isinstance(item, SyncReset):
            return self._on_sync_reset(item, now=now)
        return self._sequence([(item.cursor, item)], now=now)

    def on_presence(self, user: str, payload: Any) -> Effects:
        """A decoded payload arrived on ``user``'s presence topic."""
        try:
            presence = parse_presence(payload)
        except ValueError as exc:
            logger.warning("ignoring an undecodable presence of %s: %s", user, exc)
            return Effects()
        if presence.user != user:
            logger.warning("ignoring a presence of %s published on the topic of %s", presence.user, user)
            return Effects()
        self._presence[user] = presence
        return Effects(events=[presence])

    # -- what the app asks for --------------------------------------------------------------------

    def send(
        self, *, to: str, text: str, id: str | None = None, now: float, reply_to: str | None = None
    ) -> tuple[OutgoingMessage, Effects]:
        """Queue a message (``reply_to``: the message it answers); it is published now when the
        session is synced, else after the next sync."""
        command = send_command(id=self._new_id() if id is None else id, to=to, text=text, reply_to=reply_to)
        outgoing = OutgoingMessage(id=command["id"], to=to, text=text, reply_to=reply_to)
        return self._queue(outgoing, now=now)

    def forward(
        self, *, message: str, to: str, id: str | None = None, now: float
    ) -> tuple[OutgoingMessage, Effects]:
        """Queue a forward of ``message`` to ``to``: an outgoing message like a send (resent until
        the server answers ``sent``, which carries the new message)."""
        command = forward_command(id=self._new_id() if id is None else id, message=message, to=to)
        outgoing = OutgoingMessage(id=command["id"], to=to, text="", forward_of=message)
        return self._queue(outgoing, now=now)

    def _queue(self, outgoing: OutgoingMessage, *, now: float) -> tuple[OutgoingMessage, Effects]:
        self.outbox.add(outgoing)
        if self._synced:
            return outgoing, Effects(commands=[self._publish_send(outgoing, now=now)])
        return outgoing, Effects()

    def receipts(self, message_ids: Iterable[str], *, status: Status, now: float) -> Effects:
        """``receipt`` commands for these message ids (at most 500 ids per command).

        Each is kept until the server answers ``ok`` and published again when it stays unanswered,
        like a send: a receipt lost with a job queue would otherwise leave the sender without ticks.
        """
        payloads = receipt_commands(status=status, message_ids=message_ids, new_id=self._new_id)
        for payload in payloads:
            self._receipts_pending[payload["id"]] = (payload, now)
        return Effects(commands=[Command(payload) for payload in payloads])

    def request(
        self, build: Callable[[str], dict[str, Any]], answer_type: type[_A]
    ) -> tuple[PendingRequest[_A], Effects]:
        """A command that waits for an answer event of ``answer_type`` with ``ref`` = its id.

        ``build`` makes the command payload from a fresh command id (and raises ValueError for a
        bad argument, before anything is registered). The command is published at once (QoS 1),
        not queued: the caller needs a connection and gives up with :meth:`PendingRequests.discard`.
        """
        payload = build(self._new_id())
        request = PendingRequest(id=payload["id"], kind=payload["type"], answer_type=answer_type)
        self.requests.add(request)
        return request, Effects(commands=[Command(payload)])

    def watch(self, user: str) -> Effects:
        """Follow ``user``'s presence from now on (subscribed at once when connected, and after every
        connect); watching a refused user again asks the server again."""
        if not self._subscriptions.watch(user) or not self._connected:
            return Effects()
        return Effects(subscriptions=[Subscribe(presence=(user,))])

    def typing(self, *, to: str, composing: bool) -> Effects:
        """A typing indicator (QoS 0: live only, lost when there is no connection)."""
        state = "composing" if composing else "paused"
        return Effects(commands=[Command(typing_command(id=self._new_id(), to=to, state=state), qos=0)])

    # -- internals ---------------------------------------------------------------------------------

    def _reset_connection(self) -> None:
        self._connected = False
        self._subscribed = False
        self._synced = False
        self._active_sync = None
        self._retry_at = None

    def _start_sync(self, *, now: float, after: int = 0) -> Effects:
        sync_id = self._new_id()
        self._active_sync = sync_id
        self._active_after = max(after, self.cursor)
        self._sync_deadline = now + self._sync_timeout
        self._retry_at = None
        self._my_syncs.append(sync_id)
        self._sequencer.restart_gap_clock(now=now)
        return Effects(
            commands=[Command(sync_command(id=sync_id, after=self._active_after, limit=self._sync_limit))]
        )

    def _on_sync_page(self, page: SyncPage, *, now: float) -> Effects:
        if page.ref not in self._my_syncs:
            # Another device of this user shares the inbox topic; its pages are not ours to follow.
            logger.debug("ignoring sync page %s of another client", page.ref)
            return Effects()
        earlier = set(self._receipts_pending)
        effects = self._sequence(page.entries, now=now)
        if page.ref != self._active_sync:
            return effects  # a late page of an abandoned sync: its entries help, its paging does not
        if page.more and max(page.cursor, self.cursor) > self._active_after:
            effects += self._start_sync(now=now, after=page.cursor)
            return effects
        if page.more:
            logger.warning("sync page %s says more but does not move past cursor %d", page.ref, page.cursor)
        self._active_sync = None
        if not self._synced and self._connected:
            self._synced = True
            self._throttled, self._resend_at = [], None  # everything pending is sent again below
            pending = self.outbox.pending()
            if pending:
                logger.debug(
                    "synced at cursor %d; resending %d unanswered messages", self.cursor, len(pending)
                )
            for outgoing in pending:
                effects.commands.append(self._publish_send(outgoing, now=now))
            # receipts still unconfirmed from before (not the ones this page just made)
            effects.commands += self._republish_receipts(older_than=float("inf"), now=now, only=earlier)
        return effects

    def _on_sync_reset(self, reset: SyncReset, *, now: float) -> Effects:
        """The server pruned the inbox after our cursor: jump to where it resumes, tell the app
        (which rebuilds from history: see the clients' ``_rebuild``), and sync on from there."""
        if reset.ref not in self._my_syncs:
            logger.debug("ignoring sync reset %s of another client", reset.ref)
            return Effects()
        if reset.ref != self._active_sync:
            return Effects()  # an abandoned sync's: the active one gets its own answer
        logger.warning(
            "the server pruned this inbox after cursor %d; resuming at %d after a rebuild from history",
            reset.after,
            reset.cursor,
        )
        self._sequencer.skip_to(reset.cursor)
        known = tuple(sorted(self._conversations | set(self._groups)))
        effects = Effects(events=[SyncReset(reset.ref, reset.after, reset.cursor, conversations=known)])
        effects += self._start_sync(now=now, after=reset.cursor)
        return effects

    def _resend_throttled(self) -> Effects:
        waiting = set(self._throttled)
        self._throttled, self._resend_at = [], None
        return Effects(
            commands=[Command(_outgoing_command(o)) for o in self.outbox.pending() if o.id in waiting]
        )

    def _on_error(self, error: ServerError, *, now: float) -> Effects:
        if error.code in TRANSIENT_CODES and error.ref is not None and error.ref in self.outbox:
            # the server will take it a little later: keep it in the outbox and send it again
            logger.info("message %s deferred by the server (%s); resending soon", error.ref, error.code)
            if error.ref not in self._throttled:
                self._throttled.append(error.ref)
            if self._resend_at is None:
                self._resend_at = now + THROTTLE_RESEND_DELAY
            return Effects(events=[error])
        if error.ref is not None:
            rejected = CommandRejected(code=error.code, ref=error.ref, message=error.message)
            self._published_at.pop(error.ref, None)
            self._receipts_pending.pop(error.ref, None)
            if self.outbox.reject(error.ref, rejected) is not None:
                logger.info("message %s rejected: %s: %s", error.ref, error.code, error.message)
            elif (request := self.requests.reject(error.ref, rejected)) is not None:
                logger.info("%s %s rejected: %s: %s", request.kind, error.ref, error.code, error.message)
            elif error.ref == self._active_sync:
                logger.warning(
                    "sync %s refused (%s: %s); retrying soon", error.ref, error.code, error.message
                )
                self._active_sync = None
                self._retry_at = now + self._sync_retry_delay
        return Effects(events=[error])

    def _on_group_list(self, answer: GroupList) -> Effects:
        # Another device's answer describes this user's groups just as well: take it into the cache.
        for group in answer.groups:
            self._groups[group.id] = group
            self._remember_profiles(group)
        self.requests.resolve(answer.ref, answer)
        return Effects()

    # -- group settings and invites ---------------------------------------------------------
    def _answer_group(self, ref: str | None, item: GroupEvent | JoinRequest) -> None:
        """A group setting, join or decision of this user's is answered by a ``group`` event, a
        ``group_request`` event or ``ok`` (nothing changed): its request waits for ``Ok`` and
        reads the event, if there was one, with :meth:`take_group_answer`."""
        if self.requests.kind_of(ref) in GROUP_SETTINGS_COMMAND_TYPES:
            assert ref is not None
            self._group_answers[ref] = item
            self.requests.resolve(ref, Ok(ref=ref))
        elif isinstance(item, GroupEvent):
            self.requests.resolve(ref, item)

    def take_group_answer(self, ref: str) -> GroupEvent | JoinRequest | None:
        """The event that answered the group settings command ``ref`` (None: it was ``ok``)."""
        return self._group_answers.pop(ref, None)

    def _remember_profiles(self, group: Group) -> None:
        for profile in group.profiles:
            known = self._profiles.get(profile.user)
            if known is None or known.ts <= profile.ts:
                self._profiles[profile.user] = profile

    def expect(self, command_id: str, kind: str, answer_type: type[_A]) -> PendingRequest[_A]:
        """Wait for the answer to a command made elsewhere (an HTTP request with this command id)."""
        request = PendingRequest(id=command_id, kind=kind, answer_type=answer_type)
        self.requests.add(request)
        return request

    def _sequence(self, entries: Iterable[tuple[int, Sequenced | None]], *, now: float) -> Effects:
        before = self.cursor
        ready: list[Sequenced | None] = []
        for cursor, item in entries:
            ready.extend(self._sequencer.offer(cursor, item, now=now))
        effects = Effects(cursor_advanced=self.cursor != before)
        delivered: list[str] = []
        for item in ready:
            if item is None:
                continue
            if isinstance(item, Message | Sent):
                message = item if isinstance(item, Message) else item.message
                self._conversations.add(message.conversation)
            if isinstance(item, Message):
                if self._auto_delivered and item.sender != self.user:
                    delivered.append(item.id)
            elif isinstance(item, Sent):
                self._published_at.pop(item.ref, None)
                self.outbox.resolve(item.ref, item.message)
            elif isinstance(item, Receipt):
                receipts = item.per_member()  # several members' receipts in one event
                for receipt in receipts:
                    self.outbox.on_receipt(receipt)
                effects.events += receipts
                continue
            elif isinstance(item, GroupEvent):
                self._groups[item.group.id] = item.group
                self._remember_profiles(item.group)
                if self.user in item.affected and item.action in ("joined", "added", "created"):
                    self._invitations.pop(item.group.id, None)  # joined: the invitation is used
                self._answer_group(item.ref, item)
            elif isinstance(item, JoinRequest):
                self._answer_group(item.ref, item)
            elif isinstance(item, PrivacyChanged):
                self.requests.resolve(item.ref, item)
            elif isinstance(item, GroupInvitation):
                if item.state == "invited":
                    self._invitations[item.group] = item
                else:
                    self._invitations.pop(item.group, None)
                self.requests.resolve(item.ref, item)
            elif isinstance(item, ProfileChanged):
                self._profiles[item.profile.user] = item.profile
                self.requests.resolve(item.ref, item)
            elif (
                isinstance(
                    item,
                    Reaction
                    | MessageEdited
                    | MessageDeleted
                    | MessageHidden
                    | TimerChanged
                    | Blocking
                    | ReadState,
                )
                and item.ref is not None
            ):
                # a react, edit, delete or timer change of this user's waits for its own event,
                # or for ``ok``: the server's answer when nothing changed
                self.requests.resolve(item.ref, Ok(ref=item.ref))
            effects.events.append(item)
        if delivered:
            effects += self.receipts(delivered, status=Status.DELIVERED, now=now)
        return effects
