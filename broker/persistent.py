"""Persistent MQTT sessions, kept in the store: resumed on any node, replayed from the inbox log.

A device that connects with clean session 0 (3.1.1) or a Session Expiry Interval (MQTT 5) has a
session row in the store (``MqttSessions``): the cursor up to which it acknowledged every inbox
event, the highest one sent to it, and when it expires unused. On its next connect, here or on
another node, ``PersistentSessions.resume`` finds it (CONNACK session present 1), the broker
restores the inbox subscription, and the connection's ``DeviceReplay`` publishes every event after
the acknowledged cursor, oldest first, with DUP set on those sent before; then live deliveries.

Inbox cursors are 1, 2, 3... per user without gaps, and every one is published live to each node
the user is connected to, so a device's stream is exactly "the next cursor": a live event already
sent (the replay read it from the store too) is dropped, and one that comes early (the replay is
still reading; or the node was not yet listed for the user when it was routed) is held until the
events before it are read from the store. The cursors are written in batches, every
``sessions.ack_flush`` seconds per node, never per PUBACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Final, Protocol, TypeVar

from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.persistence import Outlet
from broker.mqtt.properties import PublishProps
from client_sdk.contract import SEQUENCED_EVENT_TYPES, Topics
from config.settings import SessionSettings
from workers.events import encode
from workers.stores.records import InboxEntry, ResumedSession, SessionMark

__all__ = ["DeviceReplay", "PersistentSessions", "SessionStore", "sequenced_cursor"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_PAGE: Final = 200
"""Inbox entries read from the store at a time during a replay."""
_WINDOW: Final = 100
"""Replayed deliveries a device may have unacknowledged before the replay waits for PUBACKs
(well under ``limits.max_inflight_per_connection``)."""
_HOLD: Final = 1000
"""Live events kept while a replay catches up; more are read from the store in their turn."""
_SETTLE: Final = 1.0
"""Seconds after a connect's replay when the store is read once more: an event stored while the
locator did not list this node for the user yet was routed elsewhere, and only the log has it."""
_GAP_RETRIES: Final = 5
"""Reads of the store for events that came live ahead of the ones before them, before those are
given up for lost (pruned meanwhile) and the device goes on after them."""


class SessionStore(Protocol):
    """What persistent sessions need of the store: the sessions, and the inbox log to replay."""

    def open_mqtt_session(self, user: str, device: str, *, now: float, expiry: float) -> ResumedSession: ...
    def end_mqtt_sessions(self, devices: Sequence[tuple[str, str]]) -> None: ...
    def save_mqtt_sessions(self, marks: Sequence[SessionMark]) -> None: ...
    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]: ...


def sequenced_cursor(data: bytes) -> int | None:
    """The cursor of an inbox event kept in the log (replayed), None for a live-only one."""
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("type") not in SEQUENCED_EVENT_TYPES:
        return None
    cursor = event.get("cursor")
    return cursor if isinstance(cursor, int) and not isinstance(cursor, bool) else None


def _nothing() -> None:
    return None


class DeviceReplay:
    """The inbox deliveries of one connection with a persistent session (event loop only)."""

    def __init__(
        self,
        keeper: PersistentSessions,
        *,
        user: str,
        device: str,
        topic: str,
        expiry: float,
        at: ResumedSession,
    ) -> None:
        self.user, self.device, self.topic, self.expiry = user, device, topic, expiry
        self._keeper = keeper
        self.acked = at.acked
        """Every event up to this cursor is acknowledged."""
        self.sent = at.sent
        self._sent_before = at.sent
        """Cursors up to this were sent to an earlier connection: sent again, they carry DUP."""
        self._next = at.acked + 1
        """The next cursor to write to this connection."""
        self._acked_above: set[int] = set()
        self._held: dict[int, bytes] = {}
        self._send: Outlet | None = None
        self._catching_up = True
        self._task: asyncio.Task[None] | None = None
        """A catch-up started by a live event ahead of the next cursor."""
        self._first: asyncio.Task[None] | None = None
        """The connect's replay, and its second look at the store ``_SETTLE`` seconds later."""
        self._inflight = 0
        self._room = asyncio.Event()
        self._room.set()
        self.over = False
        self.ended_at: float | None = None
        self.saved_at = 0.0
        self.state: ConnectionState | None = None
        """The connection's facts (its session expiry, which an MQTT 5 DISCONNECT may change)."""

    # ---------------------------------------------------------------- the broker's calls
    def start(self, send: Outlet) -> None:
        self._send = send
        self._first = asyncio.create_task(self._first_catch_up())

    async def _first_catch_up(self) -> None:
        await self._catch_up()
        if self.over:
            return
        try:
            await asyncio.sleep(_SETTLE)
        except asyncio.CancelledError:
            return
        if not self.over and not self._catching_up:
            self._catching_up = True
            await self._catch_up()

    def offer(self, data: bytes, props: PublishProps | None = None) -> None:
        if self.over or self._send is None:
            return
        cursor = sequenced_cursor(data)
        if cursor is None:  # live only (typing, answers, errors): straight out
            self._send(data, dup=False, acked=_nothing, done=_nothing, props=props)
            return
        if cursor < self._next:
            return  # sent already: the replay read it from the store
        if not self._catching_up and cursor == self._next and self._inflight < _WINDOW:
            self._write(cursor, data)
            return
        if len(self._held) < _HOLD:  # else it is read from the store when its turn comes
            self._held[cursor] = data
        if not self._catching_up:  # a gap, or a full window: the rest comes from the store
            self._catching_up = True
            self._task = asyncio.create_task(self._catch_up())

    def ended(self) -> None:
        if self.over:
            return
        self.over = True
        self.ended_at = self._keeper._clock()
        if self.state is not None:  # an MQTT 5 DISCONNECT may have changed the session's expiry
            requested = getattr(self.state, "session_expiry", None)
            if requested == 0:
                self.expiry = 0.0
            elif requested is not None:
                self.expiry = min(float(requested), self._keeper._settings.max_expiry)
        self._room.set()
        for task in (self._first, self._task):
            if task is not None:
                task.cancel()
        self._held.clear()
        self._keeper._ended(self)

    def mark(self, now: float) -> SessionMark:
        """Where the session is; it expires ``expiry`` after now, or after its connection ended."""
        since = now if self.ended_at is None else self.ended_at
        return SessionMark(self.user, self.device, self.acked, self.sent, since + self.expiry)

    # ---------------------------------------------------------------- writing and acknowledgements
    def _write(self, cursor: int, data: bytes) -> bool:
        send = self._send
        if send is None or self.over:
            return False
        self._inflight += 1
        if not send(
            data, dup=cursor <= self._sent_before, acked=partial(self._acked, cursor), done=self._done
        ):
            self._inflight -= 1
            return False
        self._next = cursor + 1
        if cursor > self.sent:
            self.sent = cursor
            self._keeper._changed(self)
        return True

    def _acked(self, cursor: int) -> None:
        if cursor != self.acked + 1:
            if cursor > self.acked:
                self._acked_above.add(cursor)
            return
        acked, above = cursor, self._acked_above
        while acked + 1 in above:
            acked += 1
            above.discard(acked)
        self.acked = acked
        self._keeper._changed(self)

    def _done(self) -> None:
        self._inflight -= 1
        if self._inflight < _WINDOW:
            self._room.set()

    async def _room_to_send(self) -> None:
        while self._inflight >= _WINDOW and not self.over:
            self._room.clear()
            await self._room.wait()

    # ---------------------------------------------------------------- the replay
    async def _release_held(self) -> None:
        """Write the held live events that are next in line (as the window lets them go)."""
        held = self._held
        while self._next in held and not self.over:
            await self._room_to_send()
            cursor = self._next
            if cursor in held and not self._write(cursor, held.pop(cursor)):
                return
        for cursor in [c for c in held if c < self._next]:
            del held[cursor]

    async def _catch_up(self) -> None:
        """Write the events from ``_next`` on from the store, then the held live ones, until the
        device is level with what came live; then live deliveries go straight out (``offer``)."""
        tries = 0
        try:
            while not self.over:
                await self._release_held()
                entries, more = await self._keeper._read(self.user, after=self._next - 1)
                for entry in entries:
                    if entry.cursor < self._next:
                        continue
                    await self._room_to_send()
                    if self.over:
                        return
                    if entry.cursor < self._next:  # came live while waiting for room
                        continue
                    # a cursor above the next one: the ones between were pruned (retention)
                    self._held.pop(entry.cursor, None)
                    if not self._write(entry.cursor, encode(entry.payload)):
                        return
                if more:
                    continue
                await self._release_held()
                if not self._held:
                    self._catching_up = False  # no await since the read: nothing came between
                    return
                tries += 1  # held events ahead of the store: wait for the ones before them
                if tries > _GAP_RETRIES:
                    log.warning(
                        "%s/%s: inbox events %d-%d not found; going on after them",
                        self.user,
                        self.device,
                        self._next,
                        min(self._held) - 1,
                    )
                    self._next = min(self._held)
                    tries = 0
                    continue
                await asyncio.sleep(0.05 * tries)
        except asyncio.CancelledError:
            return
        except Exception:
            log.exception(
                "%s/%s: the replay stopped; the device gets the rest on its next connect",
                self.user,
                self.device,
            )


class PersistentSessions:
    """The node's ``SessionKeeper`` (broker/mqtt/persistence.py): resumes sessions from the store
    and writes their cursors back in batches. ``start`` and ``close`` on the event loop."""

    def __init__(
        self,
        store: SessionStore,
        *,
        topics: Topics,
        settings: SessionSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._topics = topics
        self._settings = settings
        self._clock = clock
        self._calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqchat-sessions")
        self._live: dict[str, DeviceReplay] = {}
        """The persistent connections of this node, by client id."""
        self._changed_ones: dict[int, DeviceReplay] = {}
        self._ends: dict[str, tuple[str, str]] = {}
        """Clean-session connects since the last flush: their stored sessions end."""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_loop())

    async def close(self) -> None:
        """After the broker stopped: every session's last cursors written."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for replay in list(self._live.values()):
            replay.ended()
        await self.flush()
        self._calls.shutdown(wait=True)
        self._calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqchat-sessions")

    # ---------------------------------------------------------------- SessionKeeper
    async def resume(self, state: ConnectionState) -> bool:
        user, client_id = state.username, state.client_id or ""
        owner, _, device = client_id.partition("/")
        if not user or owner != user or not device:
            return False  # the login check refuses these: nothing to keep for them
        previous = self._live.pop(client_id, None)
        if previous is not None:  # taken over here: its cursors go with the flush below
            previous.ended()
        requested = getattr(state, "session_expiry", 0)
        if requested == 0:
            self._ends[client_id] = (user, device)
            return False
        settings = self._settings
        expiry = settings.persistent_ttl if requested is None else min(float(requested), settings.max_expiry)
        await self.flush()  # what this node knows of the device is stored before it is read
        store, now = self._store, self._clock()
        if state.clean_start:  # MQTT 5 Clean Start with an expiry: a new session
            await self._run(partial(store.end_mqtt_sessions, [(user, device)]))
        at = await self._run(partial(store.open_mqtt_session, user, device, now=now, expiry=expiry))
        replay = DeviceReplay(
            self, user=user, device=device, topic=self._topics.inbox(user), expiry=expiry, at=at
        )
        replay.saved_at = now
        replay.state = state
        state.resumable = replay
        self._live[client_id] = replay
        log.info(
            "%s: persistent session %s after cursor %d",
            client_id,
            "resumed" if at.present else "made",
            at.acked,
        )
        return at.present

    # ---------------------------------------------------------------- batched writes
    def _changed(self, replay: DeviceReplay) -> None:
        self._changed_ones[id(replay)] = replay

    def _ended(self, replay: DeviceReplay) -> None:
        client_id = f"{replay.user}/{replay.device}"
        if self._live.get(client_id) is replay:
            del self._live[client_id]
        self._changed_ones[id(replay)] = replay  # its expiry counts from now
        if not replay.expiry:  # MQTT 5: DISCONNECT with a Session Expiry Interval of 0
            self._ends[client_id] = (replay.user, replay.device)

    async def _read(self, user: str, *, after: int) -> tuple[list[InboxEntry], bool]:
        return await self._run(partial(self._store.sync, user=user, after=after, limit=_PAGE))

    async def _run(self, call: Callable[[], _T]) -> _T:
        """A blocking store call, on this keeper's thread (its calls keep their order)."""
        return await asyncio.get_running_loop().run_in_executor(self._calls, call)

    async def flush(self) -> None:
        """Write the cursors that moved, the expiry of sessions idle for half of it, and the ends."""
        async with self._lock:
            now = self._clock()
            for replay in self._live.values():
                if now - replay.saved_at > replay.expiry / 2:
                    self._changed_ones[id(replay)] = replay
            changed, self._changed_ones = self._changed_ones, {}
            ends, self._ends = self._ends, {}
            if not changed and not ends:
                return
            marks = [replay.mark(now) for replay in changed.values()]
            try:
                if marks:
                    await self._run(partial(self._store.save_mqtt_sessions, marks))
                if ends:
                    await self._run(partial(self._store.end_mqtt_sessions, list(ends.values())))
            except Exception:
                log.warning("could not save %d persistent sessions; trying again", len(marks), exc_info=True)
                for key, replay in changed.items():
                    self._changed_ones.setdefault(key, replay)
                for client_id, end in ends.items():
                    self._ends.setdefault(client_id, end)
                return
            for replay in changed.values():
                replay.saved_at = now

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.ack_flush)
            try:
                await self.flush()
            except Exception:
                log.warning("persistent sessions: flush failed", exc_info=True)
