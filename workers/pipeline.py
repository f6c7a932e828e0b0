"""What the workers do with client commands: store, answer, route. Independent of Dramatiq.

A batch holds commands in the order the node received them; each user's commands are handled in
that order (1-on-1 messages and receipts of several users may be stored together, see ``_plan``).
Each command is handled on its own: a refused command gets an ``error`` event and the rest of the
batch goes on. The batch is stored in
one store batch (one transaction on SQL, a savepoint per command), and every answer, routed event
and notification of the batch waits until it is committed: nothing is announced that a failure
could still undo. Only an unavailable store stops the batch; nothing of it is announced, and the
job is retried, which is safe because every handler is idempotent (a resent ``send`` is stored
once, statuses only move forward, sync pages are read-only).

What the pipeline says goes to narrow outputs its caller wires (``route``: the events to publish;
``waiting``: a message stored for a user, for the notifier; ``touch``: a user acted; ``discard``:
the media objects of a message deleted for everyone, to remove from storage), so each way of
running commands (``workers/runners/``) connects them where they belong, without stand-ins.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, Final, Protocol, TypeVar

from client_sdk.contract import VERSION, ErrorCode, is_group_id
from workers.answers import TYPING, PublishOptions
from workers.commands import (
    Block,
    BlockList,
    ChatList,
    Command,
    Delete,
    DeviceList,
    Edit,
    Forward,
    GroupAdd,
    GroupApprove,
    GroupCreate,
    GroupInviteAccept,
    GroupInviteDecline,
    GroupInviteLink,
    GroupJoin,
    GroupLeave,
    GroupList,
    GroupPromote,
    GroupReject,
    GroupRemove,
    GroupRename,
    GroupRequests,
    GroupSet,
    History,
    MarkRead,
    PrivacyGet,
    PrivacySet,
    ProfileGet,
    ProfileSet,
    PushRegister,
    PushUnregister,
    Raw,
    React,
    Receipt,
    Report,
    Search,
    Send,
    Sync,
    TimerGet,
    TimerSet,
    Typing,
    Unblock,
    typed_command,
)
from workers.errors import CommandError, Retryable, StoreUnavailable, UnknownUser
from workers.events import error_event, internal_error
from workers.metrics import command_error
from workers.routing import CONTROL_QOS, PRESENCE_CUT, Delivery
from workers.stores import (
    AcceptResult,
    CommandStore,
    InboxEntry,
    ReceiptRequest,
    ReceiptResult,
    TextSend,
)
from workers.stores.rules.chats import chat_wire, decode_cursor, encode_cursor
from workers.stores.rules.chats import clamp_limit as clamp_chats
from workers.stores.rules.deletion import check_user_delete
from workers.stores.rules.group_settings import clean_description, invite_hash, new_invite_code
from workers.stores.rules.history import HistoryQuery, clamp_limit
from workers.stores.rules.profiles import clean_about, clean_name
from workers.stores.rules.reactions import check_emoji
from workers.stores.rules.retention import needs_reset, sync_reset_event
from workers.stores.rules.search import check_cursor, clamp_search_limit
from workers.stores.rules.timers import check_timer
from workers.typing_gate import TypingGate

__all__ = ["Discard", "Pipeline", "Route", "Touch", "Waiting"]

log = logging.getLogger(__name__)

R = TypeVar("R")

SYNC_PAGE_BYTES = 256 * 1024
"""A sync page stops growing past this many bytes of entries (it always holds at least one)."""


Route = Callable[[list[Delivery]], None]
"""Publishes events to their users, in order (``Router.route``, or the commands process's answer)."""
Waiting = Callable[[str, str, str], None]
"""A message (id, sender) was stored for a user (the notifier's ``message_waiting``)."""


Discard = Callable[[Sequence[str]], None]
"""Media objects no message owns any more, to remove from storage (``send_cleanup_job``): called
once the deletion that gave them up is stored."""


class Touch(Protocol):
    """A user acted now (``Locator.touch``)."""

    def __call__(self, user: str, *, now: float) -> None: ...


_REORDERABLE = frozenset({"send", "receipt", "typing", "forward"})

Items = list[dict[str, Any]]


def _plan(batch: Items) -> Iterator[tuple[Items, Items, Items]]:
    """The batch as steps of ``(texts, receipts, others)``: 1-on-1 ``send`` commands to store
    together, then ``receipt`` commands to apply together, then the other commands one by one, in
    order. Commands go into phases that take turns (texts, receipts, others, texts, ...), each in
    the earliest phase of its kind not before its user's last one, so every user's commands keep
    their order: a user's send that follows their receipt goes into the next texts phase, with
    the other users' sends that came after a receipt of theirs, instead of one by one. A command
    that is not a send, receipt or typing (a sync, a group change...) ends the steps so far and
    runs alone, in its place. Between users, commands that came within the same batch have no
    order to keep."""
    phases: list[Items] = []
    last: dict[str, int] = {}  # each user's latest phase
    for item in batch:
        cmd, user = item["cmd"], item["user"]
        kind, to = cmd.get("type"), cmd.get("to")
        if kind == "send" and isinstance(to, str) and not is_group_id(to) and "reply_to" not in cmd:
            part = 0  # a reply reads its quoted message first: it goes one by one, as a group send
        elif kind == "receipt":
            part = 1
        elif kind in _REORDERABLE:
            part = 2
        else:
            yield from _steps(phases)
            yield [], [], [item]
            phases, last = [], {}
            continue
        start = last.get(user, 0)
        phase = start + (part - start) % 3
        while len(phases) <= phase:
            phases.append([])
        phases[phase].append(item)
        last[user] = phase
    yield from _steps(phases)


def _steps(phases: list[Items]) -> Iterator[tuple[Items, Items, Items]]:
    """Phases three by three: (texts, receipts, others)."""
    for first in range(0, len(phases), 3):
        texts, receipts, others = (*phases[first : first + 3], [], [])[:3]
        yield texts, receipts, others


def _to_response_topics(
    deliveries: list[Delivery], responses: Mapping[tuple[str, Any], PublishOptions]
) -> list[Delivery]:
    """The direct answers among ``deliveries`` sent to their command's reply target: an event to
    the commanding user, on the node that received the command, whose ``ref`` is the command's
    id. A live answer (``ok``, ``error``, ``sync_page``, ``groups``...) goes there instead of the
    inbox; a sequenced one (``sent``, a group change's event with ``ref``) goes there and stays
    in the inbox too, since it is in the user's inbox log, which every device follows in cursor
    order (a device that missed one would take the gap for a loss and sync)."""
    routed: list[Delivery] = []
    for delivery in deliveries:
        user, event, node, qos, _ = delivery
        target = None if node is None or qos == CONTROL_QOS else responses.get((user, event.get("ref")))
        if target is None:
            routed.append(delivery)
            continue
        if "cursor" in event:
            routed.append(delivery)
        routed.append((user, event, node, qos, target))
    return routed


def _privacy_answer(ref: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The live ``privacy`` answer (no cursor): to ``privacy_get``, and to a resent ``privacy_set``."""
    return {"v": VERSION, "type": "privacy", "ref": ref, "settings": settings}


def _untouched(user: str, *, now: float) -> None:
    return None


def _together(attempt: Callable[[], list[R] | None]) -> list[R] | None:
    """The results of storing commands together; None: store them one by one (the store could not,
    or failed in a way that each command's own handling answers better)."""
    try:
        return attempt()
    except (StoreUnavailable, Retryable):
        raise  # the batch is retried
    except Exception:
        log.exception("storing commands together failed; storing them one by one")
        return None


def _within_page_bytes(
    messages: list[dict[str, Any]], *, keep_last: bool
) -> tuple[list[dict[str, Any]], bool]:
    """The messages of a history page that fit in ``SYNC_PAGE_BYTES`` (at least one), dropping
    those farthest from where the page started (the oldest of a page back); True: some were."""
    order = reversed(messages) if keep_last else iter(messages)
    kept: list[dict[str, Any]] = []
    size = 0
    for message in order:
        size += len(json.dumps(message, ensure_ascii=False))
        if kept and size > SYNC_PAGE_BYTES:
            break
        kept.append(message)
    dropped = len(kept) < len(messages)
    return (kept[::-1] if keep_last else kept), dropped


class Pipeline:
    def __init__(
        self,
        *,
        store: CommandStore,
        route: Route,
        waiting: Waiting | None = None,
        touch: Touch | None = None,
        discard: Discard | None = None,
        sync_page_size: int = 200,
        max_group_members: int = 256,
        clock: Callable[[], float] = time.time,
        profiles_public: bool = False,
        edit_window: float = 900.0,
        delete_window: float = 172_800.0,
        disappearing_timers: Sequence[int] = (86_400, 604_800, 7_776_000),
    ) -> None:
        """``touch`` None: the caller records the users' actions itself. ``discard`` None: media
        objects of messages users delete are left in storage (only where there is none).
        ``profiles_public``: anyone may read anyone's profile (``presence.visibility =
        "everyone"``), not only contacts. ``edit_window``, ``delete_window``,
        ``disappearing_timers``: ``messages.*``."""
        self._store = store
        self._route_now = route
        self._waiting = waiting
        self._touch = touch or _untouched
        self._page_size = sync_page_size
        self._max_members = max_group_members
        self._clock = clock
        self._profiles_public = profiles_public
        self._discard = discard
        self._edit_window = edit_window
        self._delete_window = delete_window
        self._timers = tuple(disappearing_timers)
        self._typing_gate = TypingGate()
        """Group typing indicators forwarded at most every 2 s per user and group."""
        self._local = threading.local()
        """``outbox``: what the batch being processed by this thread will send once it is stored."""

    def process_batch(self, node: str, batch: list[dict[str, Any]]) -> None:
        """Handle ``[{"user":…, "cmd": {…}}, …]`` received by ``node``: each user's commands in
        the order they came (see ``_plan``). A command with ``"response"`` (an MQTT 5 reply
        target, see ``workers/answers.py``) gets its direct answer there (``_to_response_topics``)."""
        outbox: list[Callable[[], None]] = []
        deliveries: list[Delivery] = []
        self._local.outbox, self._local.deliveries = outbox, deliveries
        self._local.responses = {
            (item["user"], item["cmd"].get("id")): item["response"] for item in batch if "response" in item
        }
        try:
            with self._store.batch():
                for texts, receipts, others in _plan(batch):
                    self._step(node, texts, receipts, others)
        finally:
            self._local.outbox = self._local.deliveries = self._local.responses = None
        self._route_now(deliveries)  # one hand-off for the whole batch
        for send in outbox:
            send()

    def _step(self, node: str, texts: Items, receipts: Items, others: Items) -> None:
        """One step of ``_plan``, its commands typed here: texts and receipts together where the
        store can (else one by one), then the others one by one. A lone text or receipt goes the
        same way: the multi-row path takes fewer statements than the one-by-one handler, which is
        what a batch at a low rate holds."""
        sends = self._commands(node, texts, Send.from_wire)
        if not sends or not self._send_texts(node, sends):
            for send in sends:
                self._process(node, send)
        acks = self._commands(node, receipts, Receipt.from_wire)
        if not acks or not self._apply_receipts(node, acks):
            for ack in acks:
                self._process(node, ack)
        for command in self._commands(node, others, typed_command):
            self._process(node, command)

    def _commands(self, node: str, items: Items, parse: Callable[[str, Raw], R]) -> list[R]:
        """The commands of ``items``, typed by ``parse``. The ingest validated each, so one that
        cannot be read is a fault of the server's: like a handler's fault, it gets an internal
        error, and the others go on."""
        commands: list[R] = []
        for item in items:
            user, raw = item["user"], item["cmd"]
            try:
                commands.append(parse(user, raw))
            except Exception:
                ref = raw.get("id")
                log.exception("command %r of %s could not be read", ref, user)
                self._reply(node, user, internal_error(ref))
        return commands

    def _send_texts(self, node: str, sends: list[Send]) -> bool:
        """Store 1-on-1 ``send`` commands together, then answer and route each, in order, as
        ``_send`` does. False, with nothing done: the store could not (a resend, an unknown
        user...), so they go one by one."""
        now = self._clock()

        def attempt() -> list[AcceptResult] | None:
            texts = [TextSend(cmd.user, cmd.id, cmd.to, cmd.text) for cmd in sends]
            return self._store.accept_texts(texts, now=now)

        results = _together(attempt)
        if results is None:
            return False
        for cmd, result in zip(sends, results, strict=True):
            self._touch(cmd.user, now=now)
            self.route_message(node, cmd.user, result)
        return True

    def _apply_receipts(self, node: str, receipts: list[Receipt]) -> bool:
        """Apply ``receipt`` commands together (of 1-on-1 and group messages), then answer and route
        each, in order, as ``_receipt`` does. False, with nothing done: they go one by one."""
        now = self._clock()

        def attempt() -> list[ReceiptResult] | None:
            requests = [ReceiptRequest(cmd.user, cmd.status, cmd.messages) for cmd in receipts]
            return self._store.apply_receipts_of(requests, now=now)

        results = _together(attempt)
        if results is None:
            return False
        for cmd, result in zip(receipts, results, strict=True):
            self._touch(cmd.user, now=now)
            self._deliver(node, cmd.user, result.entries)
            self._ok(node, cmd.user, cmd.id)
        return True

    def _later(self, send: Callable[[], None]) -> None:
        """Send now, or once the batch this thread is processing is stored."""
        outbox: list[Callable[[], None]] | None = getattr(self._local, "outbox", None)
        if outbox is None:
            send()
        else:
            outbox.append(send)

    def _route(self, deliveries: list[Delivery]) -> None:
        """Publish events now, or once the batch this thread is processing is stored."""
        pending: list[Delivery] | None = getattr(self._local, "deliveries", None)
        if pending is None:
            self._route_now(deliveries)
            return
        responses: dict[tuple[str, Any], PublishOptions] | None = self._local.responses
        pending.extend(_to_response_topics(deliveries, responses) if responses else deliveries)

    def _process(self, node: str, cmd: Command) -> None:
        user, ref = cmd.user, cmd.id
        try:
            self._touch(user, now=self._clock())
            self._handle(node, cmd)
        except CommandError as exc:
            command_error(exc.code.value)
            self._reply(node, user, error_event(ref, exc.code, exc.message))
        except UnknownUser as exc:
            command_error(ErrorCode.UNKNOWN_USER.value)
            self._reply(node, user, error_event(ref, ErrorCode.UNKNOWN_USER, str(exc)))
        except (StoreUnavailable, Retryable):
            raise  # the batch is retried; every handler is idempotent
        except Exception:
            log.exception("command %r of %s failed", ref, user)
            self._reply(node, user, internal_error(ref))

    def _reply(self, node: str, user: str, event: dict[str, Any], qos: int = 1) -> None:
        """A live-only answer to the device(s) of ``user`` on the node that received the command."""
        self._route([(user, event, node, qos, None)])

    def _ok(self, node: str, user: str, ref: str) -> None:
        """``ok``, at QoS 0: it is live only, and a client that misses it (its connection dropped)
        sends the command again, which is idempotent. At QoS 1 it cost a PUBACK from the client
        for every delivered receipt, one packet in eight of a chat message."""
        self._reply(node, user, {"v": VERSION, "type": "ok", "ref": ref}, qos=0)

    def _deliver(self, node: str, user: str, entries: list[InboxEntry]) -> None:
        self._route([(e.user, e.payload, node if e.user == user else None, 1, None) for e in entries])

    # ------------------------------------------------------------------ handlers
    def _handle(self, node: str, cmd: Command) -> None:
        """Run the handler of the command's class (``_HANDLERS``; a test checks every command
        class has one)."""
        _HANDLERS[type(cmd)](self, node, cmd)

    def _send(self, node: str, cmd: Send) -> None:
        result = self._store.accept_message(
            sender=cmd.user,
            command_id=cmd.id,
            recipient=cmd.to,
            text=cmd.text,
            now=self._clock(),
            reply_to=cmd.reply_to,
        )
        self.route_message(node, cmd.user, result)

    def _forward(self, node: str, cmd: Forward) -> None:
        result = self._store.forward_message(
            sender=cmd.user, command_id=cmd.id, message_id=cmd.message, recipient=cmd.to, now=self._clock()
        )
        self.route_message(node, cmd.user, result)

    def route_message(self, node: str, user: str, result: AcceptResult) -> None:
        """Deliver a message ``user`` stored (text, or media from the media job): ``sent`` to the
        sender, a copy to each recipient, and a notification for those who are offline."""
        self._deliver(node, user, [result.sent] if result.duplicate else result.entries)
        self._notify(result)

    def _notify(self, result: AcceptResult) -> None:
        """Tell the notifier about each new copy of a message, for recipients who are offline."""
        waiting = self._waiting
        if waiting is None or result.duplicate:
            return
        message = result.message
        for entry in result.entries:
            if entry.payload["type"] == "message":
                self._later(partial(waiting, entry.user, message.id, message.sender))

    def _receipt(self, node: str, cmd: Receipt) -> None:
        user = cmd.user
        result = self._store.apply_receipts(
            user=user, status=cmd.status, message_ids=cmd.messages, now=self._clock()
        )
        self._deliver(node, user, result.entries)
        if not result.not_recipient:
            self._ok(node, user, cmd.id)
            return
        if result.not_recipient:
            shown = ", ".join(result.not_recipient[:5]) + ("…" if len(result.not_recipient) > 5 else "")
            raise CommandError(
                ErrorCode.NOT_RECIPIENT,
                f"{len(result.not_recipient)} message(s) were not sent to you or do not exist: {shown}",
            )

    def _typing(self, node: str, cmd: Typing) -> None:
        recipient = cmd.to
        if is_group_id(recipient):
            self._group_typing(cmd)
            return
        if not self._store.user_exists(recipient):
            raise UnknownUser(recipient)
        if self._store.is_blocked(recipient, cmd.user):
            return  # whom the recipient blocks is not heard typing either (rules.blocks)
        event = {"v": VERSION, "type": "typing", "from": cmd.user, "state": cmd.state}
        self._route([(recipient, event, None, 0, TYPING)])

    def _sync(self, node: str, cmd: Sync) -> None:
        user, after = cmd.user, cmd.after
        limit = min(cmd.limit or self._page_size, 1000)
        page = self._store.sync_page(user=user, after=after, limit=limit, max_bytes=SYNC_PAGE_BYTES)
        if page.first != after + 1:  # a gap (or nothing new): was what came after ``after`` pruned?
            floor = self._store.inbox_floor(user)
            if needs_reset(after, page.first, floor):
                self._reply(node, user, sync_reset_event(cmd.id, after=after, floor=floor))
                return
        event = {
            "v": VERSION,
            "type": "sync_page",
            "ref": cmd.id,
            "entries": page.entries,
            "more": page.more,
            "cursor": after if page.last is None else page.last,
        }
        self._reply(node, user, event)

    # ------------------------------------------------------------------ history
    def _history(self, node: str, cmd: History) -> None:
        query = HistoryQuery(cmd.user, cmd.conversation, cmd.before, cmd.after, clamp_limit(cmd.limit))
        found = self._store.history(query)
        messages, more = _within_page_bytes(found.messages, keep_last=query.backwards)
        event = {
            "v": VERSION,
            "type": "history",
            "ref": cmd.id,
            "conversation": cmd.conversation,
            "messages": messages,
            "receipts": {m["id"]: found.receipts[m["id"]] for m in messages if m["id"] in found.receipts},
            "more": found.more or more,
        }
        self._reply(node, cmd.user, event)

    # ------------------------------------------------------------------ groups
    def _group_create(self, node: str, cmd: GroupCreate) -> None:
        change = self._store.create_group(
            creator=cmd.user,
            name=cmd.name,
            members=cmd.members,
            now=self._clock(),
            ref=cmd.id,
            max_members=self._max_members,
        )
        self._deliver(node, cmd.user, change.entries)

    def _group_add(self, node: str, cmd: GroupAdd) -> None:
        change = self._store.add_members(
            group=cmd.group,
            actor=cmd.user,
            members=cmd.members,
            now=self._clock(),
            ref=cmd.id,
            max_members=self._max_members,
        )
        self._deliver(node, cmd.user, change.entries)

    def _group_remove(self, node: str, cmd: GroupRemove) -> None:
        change = self._store.remove_members(
            group=cmd.group, actor=cmd.user, members=cmd.members, now=self._clock(), ref=cmd.id
        )
        self._deliver(node, cmd.user, change.entries)

    def _group_promote(self, node: str, cmd: GroupPromote) -> None:
        change = self._store.promote(
            group=cmd.group, actor=cmd.user, members=cmd.members, now=self._clock(), ref=cmd.id
        )
        self._deliver(node, cmd.user, change.entries)

    def _group_rename(self, node: str, cmd: GroupRename) -> None:
        change = self._store.rename_group(
            group=cmd.group, actor=cmd.user, name=cmd.name, now=self._clock(), ref=cmd.id
        )
        self._deliver(node, cmd.user, change.entries)

    def _group_leave(self, node: str, cmd: GroupLeave) -> None:
        change = self._store.leave_group(group=cmd.group, user=cmd.user, now=self._clock(), ref=cmd.id)
        self._deliver(node, cmd.user, change.entries)

    def _group_list(self, node: str, cmd: GroupList) -> None:
        listed = [group.wire() for group in self._store.groups_of(cmd.user)]
        self._reply(node, cmd.user, {"v": VERSION, "type": "groups", "ref": cmd.id, "groups": listed})

    # ------------------------------------------------------------------ push tokens
    def _push_register(self, node: str, cmd: PushRegister) -> None:
        self._store.register_push_token(
            user=cmd.user,
            token=cmd.token,
            platform=cmd.platform,
            preview=cmd.preview,
            now=self._clock(),
        )
        self._ok(node, cmd.user, cmd.id)

    def _device_list(self, node: str, cmd: DeviceList) -> None:
        listed = [device.wire() for device in self._store.devices_of(cmd.user)]
        self._reply(node, cmd.user, {"v": VERSION, "type": "devices", "ref": cmd.id, "devices": listed})

    def _push_unregister(self, node: str, cmd: PushUnregister) -> None:
        if not self._store.unregister_push_token(user=cmd.user, token=cmd.token):
            raise CommandError(ErrorCode.BAD_REQUEST, "no such push token of yours")
        self._ok(node, cmd.user, cmd.id)

    # ------------------------------------------------------------------ profiles
    def _profile_set(self, node: str, cmd: ProfileSet) -> None:
        changes: dict[str, str | None] = {}
        if cmd.name is not None:
            changes["name"] = clean_name(cmd.name) if cmd.name.strip() else None
        if cmd.about is not None:
            changes["about"] = clean_about(cmd.about)
        if not changes:
            raise CommandError(ErrorCode.BAD_REQUEST, "name or about: give at least one field to change")
        change = self._store.update_profile(user=cmd.user, changes=changes, now=self._clock(), ref=cmd.id)
        self._deliver(node, cmd.user, change.entries)

    def _profile_get(self, node: str, cmd: ProfileGet) -> None:
        seen = self._store.profiles_for(watcher=cmd.user, users=cmd.users, everyone=self._profiles_public)
        event = {"v": VERSION, "type": "profiles", "ref": cmd.id, "profiles": [p.wire() for p in seen]}
        self._reply(node, cmd.user, event)

    # ------------------------------------------------------------------ search
    def _search(self, node: str, cmd: Search) -> None:
        """A live ``search_results`` page; nothing is stored, so a resend just searches again."""
        page = self._store.search_messages(
            user=cmd.user,
            query=cmd.query,
            conversation=cmd.conversation,
            before=check_cursor(cmd.before),
            limit=clamp_search_limit(cmd.limit),
        )
        event = {
            "v": VERSION,
            "type": "search_results",
            "ref": cmd.id,
            "hits": page.hits,
            "more": page.more,
            "next": page.next,
        }
        self._reply(node, cmd.user, event)

    # ------------------------------------------------------------------ reactions
    def _react(self, node: str, cmd: React) -> None:
        """A change is a ``reaction`` event to every hearer (ref on the reactor's own); a react
        that changes nothing (the same emoji, a resent command) is answered by a live ``ok``."""
        emoji = check_emoji(cmd.emoji)
        change = self._store.react(
            user=cmd.user, message_id=cmd.message, emoji=emoji, command_id=cmd.id, now=self._clock()
        )
        if change.changed:
            self._deliver(node, cmd.user, change.entries)
        else:
            self._ok(node, cmd.user, cmd.id)

    # ------------------------------------------------------------------ privacy (rules.privacy)
    def _privacy(
        self, node: str, cmd: PrivacySet | PrivacyGet | GroupInviteAccept | GroupInviteDecline
    ) -> None:
        user, now = cmd.user, self._clock()
        match cmd:
            case PrivacySet():
                changes = cmd.changes()
                if not changes:
                    raise CommandError(ErrorCode.BAD_REQUEST, "give at least one setting to change")
                settings, entries = self._store.set_privacy(
                    user=user, changes=changes, command_id=cmd.id, now=now
                )
                if entries:
                    self._deliver(node, user, entries)
                    if {"photo", "about"} & changes.keys():
                        self._profile_again(node, user, now)
                else:  # a resend: answered as the first time, nothing stored again
                    self._reply(node, user, _privacy_answer(cmd.id, settings.wire()))
            case PrivacyGet():
                self._reply(node, user, _privacy_answer(cmd.id, self._store.privacy_of(user).wire()))
            case GroupInviteAccept():
                change = self._store.accept_invitation(
                    group=cmd.group, user=user, now=now, ref=cmd.id, max_members=self._max_members
                )
                self._answer_change(node, user, cmd.id, bool(change.entries), change.entries)
            case GroupInviteDecline():
                entries = self._store.decline_invitation(group=cmd.group, user=user, now=now, ref=cmd.id)
                self._answer_change(node, user, cmd.id, bool(entries), entries)

    def _profile_again(self, node: str, user: str, now: float) -> None:
        """The photo or about audience changed: contacts get the user's profile again as they may
        now see it (a ``profile`` event without ``ref``), so that a client drops what it cached."""
        (own,) = self._store.profiles_for(watcher=user, users=[user], everyone=True)
        if own.ts:  # never set: nothing to show or hide
            change = self._store.update_profile(user=user, changes={}, now=now, ref=None)
            self._deliver(node, user, [e for e in change.entries if e.user != user])

    # ------------------------------------------------------------------ changes to sent messages
    def _edit(self, node: str, cmd: Edit) -> None:
        change = self._store.edit_message(
            cmd.message,
            user=cmd.user,
            text=cmd.text,
            command_id=cmd.id,
            now=self._clock(),
            window=self._edit_window,
        )
        self._answer_change(node, cmd.user, cmd.id, change.changed, change.entries)

    def _delete(self, node: str, cmd: Delete) -> None:
        user, now = cmd.user, self._clock()
        if cmd.for_ == "me":
            change = self._store.hide_message(cmd.message, user=user, command_id=cmd.id, now=now)
            self._answer_change(node, user, cmd.id, change.changed, change.entries)
            return
        facts = self._store.message_facts(cmd.message)
        check_user_delete(facts, message_id=cmd.message, user=user, now=now, window=self._delete_window)
        deletion = self._store.delete_for_everyone(cmd.message, by=user, now=now, ref=cmd.id)
        self._answer_change(node, user, cmd.id, deletion.changed, deletion.entries)
        if deletion.media_keys and self._discard is not None:
            self._later(partial(self._discard, deletion.media_keys))

    def _answer_change(
        self, node: str, user: str, ref: str, changed: bool, entries: list[InboxEntry]
    ) -> None:
        """The events of a change to a message, the changer's own with ``ref`` among them; ``ok``
        when nothing changed (a resend, a message deleted or hidden already) or when the changer
        gets no event (they hid the message they edited)."""
        self._deliver(node, user, entries)
        if not changed or all(entry.user != user for entry in entries):
            self._ok(node, user, ref)

    # ------------------------------------------------------------------ group settings and invites
    def _group_set(self, node: str, cmd: GroupSet) -> None:
        changes: dict[str, Any] = {}
        if cmd.description is not None:
            changes["description"] = clean_description(cmd.description)
        if cmd.only_admins_send is not None:
            changes["only_admins_send"] = cmd.only_admins_send
        if cmd.approval is not None:
            changes["approval"] = cmd.approval
        if cmd.remove_icon:
            changes["icon"] = None
        if not changes:
            raise CommandError(
                ErrorCode.BAD_REQUEST, "description, only_admins_send, approval or remove_icon: give one"
            )
        update = self._store.set_group_settings(
            group=cmd.group, actor=cmd.user, changes=changes, now=self._clock(), ref=cmd.id
        )
        self._answer_change(node, cmd.user, cmd.id, update.changed, update.entries)
        if update.replaced and self._discard is not None:
            self._later(partial(self._discard, update.replaced))

    def _group_invite_link(self, node: str, cmd: GroupInviteLink) -> None:
        """The code goes to the admin's devices on this node only (live): the store keeps its hash."""
        now = self._clock()
        code = None if cmd.revoke else new_invite_code()
        expires_at = None if code is None or cmd.expires_in is None else now + cmd.expires_in
        self._store.set_invite(
            group=cmd.group,
            actor=cmd.user,
            code_hash=None if code is None else invite_hash(code),
            expires_at=expires_at,
            now=now,
        )
        event = {"v": VERSION, "type": "group_invite", "ref": cmd.id, "group": cmd.group}
        self._reply(node, cmd.user, {**event, "code": code, "expires_at": expires_at})

    def _group_join(self, node: str, cmd: GroupJoin) -> None:
        update = self._store.join_by_invite(
            user=cmd.user,
            code_hash=invite_hash(cmd.code),
            now=self._clock(),
            ref=cmd.id,
            max_members=self._max_members,
        )
        self._answer_change(node, cmd.user, cmd.id, update.changed, update.entries)

    def _group_requests(self, node: str, cmd: GroupRequests) -> None:
        found = self._store.join_requests(group=cmd.group, actor=cmd.user)
        event = {"v": VERSION, "type": "group_requests", "ref": cmd.id, "group": cmd.group}
        self._reply(node, cmd.user, {**event, "requests": [r.wire() for r in found]})

    def _group_decide(self, node: str, cmd: GroupApprove | GroupReject) -> None:
        update = self._store.decide_request(
            group=cmd.group,
            actor=cmd.user,
            user=cmd.member,
            approve=isinstance(cmd, GroupApprove),
            now=self._clock(),
            ref=cmd.id,
            max_members=self._max_members,
        )
        self._answer_change(node, cmd.user, cmd.id, update.changed, update.entries)

    # ------------------------------------------------------------------ disappearing messages
    def _timer_set(self, node: str, cmd: TimerSet) -> None:
        """A change is a ``timer`` event to every participant (ref on the setter's own); the same
        value again (a resent command) is answered by a live ``ok``."""
        seconds = check_timer(cmd.seconds, self._timers)
        change = self._store.set_timer(
            user=cmd.user, to=cmd.to, seconds=seconds, now=self._clock(), ref=cmd.id
        )
        self._answer_change(node, cmd.user, cmd.id, change.changed, change.entries)

    def _timer_get(self, node: str, cmd: TimerGet) -> None:
        conversation, seconds = self._store.timer_of(user=cmd.user, to=cmd.to)
        event = {
            "v": VERSION,
            "type": "timer_info",
            "ref": cmd.id,
            "conversation": conversation,
            "seconds": seconds,
        }
        self._reply(node, cmd.user, event)

    # ------------------------------------------------------------------ blocking and reports
    def _block(self, node: str, cmd: Block | Unblock) -> None:
        """A change is a ``blocking`` event on every device of the blocker; a block also cuts the
        blocked user's subscription to the blocker's presence on every node they are on (a
        control delivery, see ``PRESENCE_CUT``). The same state again: a live ``ok``."""
        self._set_block(node, cmd.user, cmd.target, blocked=isinstance(cmd, Block), ref=cmd.id)

    def _set_block(self, node: str, user: str, target: str, *, blocked: bool, ref: str) -> bool:
        change = self._store.set_block(user=user, target=target, blocked=blocked, ref=ref, now=self._clock())
        if not change.changed:
            self._ok(node, user, ref)
            return False
        self._deliver(node, user, change.entries)
        if blocked:
            self._route(
                [(target, {"v": VERSION, "type": PRESENCE_CUT, "user": user}, None, CONTROL_QOS, None)]
            )
        return True

    def _block_list(self, node: str, cmd: BlockList) -> None:
        users = self._store.blocked_users(cmd.user)
        self._reply(node, cmd.user, {"v": VERSION, "type": "blocks", "ref": cmd.id, "users": users})

    def _report(self, node: str, cmd: Report) -> None:
        """Stored once per command id and answered by ``ok``; with ``block`` the reported user is
        blocked too and the answer is the ``blocking`` event (``ok`` when blocked already)."""
        self._store.report_user(
            reporter=cmd.user,
            user=cmd.target,
            message_ids=list(cmd.messages),
            reason=cmd.reason,
            ref=cmd.id,
            now=self._clock(),
        )
        if cmd.block:  # answered by the blocking event, or by ok when blocked already
            self._set_block(node, cmd.user, cmd.target, blocked=True, ref=cmd.id)
            return
        self._ok(node, cmd.user, cmd.id)

    # ------------------------------------------------------------------ chat list, read state
    def _chat_list(self, node: str, cmd: ChatList) -> None:
        before = None if cmd.before is None else decode_cursor(cmd.before)
        chats, more = self._store.chat_list(user=cmd.user, before=before, limit=clamp_chats(cmd.limit))
        last = chats[-1] if chats and more else None
        event = {
            "v": VERSION,
            "type": "chats",
            "ref": cmd.id,
            "chats": [chat_wire(chat, cmd.user) for chat in chats],
            "next": None if last is None else encode_cursor(last.ts, last.conversation),
        }
        self._reply(node, cmd.user, event)

    def _mark_read(self, node: str, cmd: MarkRead) -> None:
        """The ``read`` event to every device of the user (``ok`` when it was read that far already)."""
        change = self._store.mark_read(
            user=cmd.user, conversation=cmd.conversation, seq=cmd.seq, now=self._clock(), ref=cmd.id
        )
        self._answer_change(node, cmd.user, cmd.id, change.changed, change.entries)

    def _group_typing(self, cmd: Typing) -> None:
        """Typing in a group reaches its other members' connected devices (QoS 0, never stored),
        only from a member, and at most every 2 s per user and group (see TypingGate)."""
        audience = self._store.typing_audience(user=cmd.user, group=cmd.to)
        if not audience or not self._typing_gate.allow(cmd.user, cmd.to, cmd.state, now=self._clock()):
            return
        event = {"v": VERSION, "type": "typing", "from": cmd.user, "state": cmd.state, "group": cmd.to}
        self._route([(member, event, None, 0, TYPING) for member in audience])


_HANDLERS: Final[Mapping[type, Callable[[Pipeline, str, Any], None]]] = {
    Send: Pipeline._send,
    Receipt: Pipeline._receipt,
    Typing: Pipeline._typing,
    Sync: Pipeline._sync,
    GroupCreate: Pipeline._group_create,
    GroupAdd: Pipeline._group_add,
    GroupRemove: Pipeline._group_remove,
    GroupPromote: Pipeline._group_promote,
    GroupRename: Pipeline._group_rename,
    GroupLeave: Pipeline._group_leave,
    GroupList: Pipeline._group_list,
    PushRegister: Pipeline._push_register,
    PushUnregister: Pipeline._push_unregister,
    ProfileSet: Pipeline._profile_set,
    ProfileGet: Pipeline._profile_get,
    DeviceList: Pipeline._device_list,
    React: Pipeline._react,
    Edit: Pipeline._edit,
    Delete: Pipeline._delete,
    Forward: Pipeline._forward,
    TimerSet: Pipeline._timer_set,
    TimerGet: Pipeline._timer_get,
    History: Pipeline._history,
    PrivacySet: Pipeline._privacy,
    PrivacyGet: Pipeline._privacy,
    GroupInviteAccept: Pipeline._privacy,
    GroupInviteDecline: Pipeline._privacy,
    Block: Pipeline._block,
    Unblock: Pipeline._block,
    BlockList: Pipeline._block_list,
    Report: Pipeline._report,
    ChatList: Pipeline._chat_list,
    MarkRead: Pipeline._mark_read,
    Search: Pipeline._search,
    GroupSet: Pipeline._group_set,
    GroupInviteLink: Pipeline._group_invite_link,
    GroupJoin: Pipeline._group_join,
    GroupRequests: Pipeline._group_requests,
    GroupApprove: Pipeline._group_decide,
    GroupReject: Pipeline._group_decide,
}
"""The handler of each command class: a table, not a match, as commands keep being added."""
