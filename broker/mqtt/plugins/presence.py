"""Presence: retained ``online``/``offline`` with ``last_seen`` on ``<presence_prefix>/<user>``.

A user is online while at least one of its connections is open on this node. The plugin publishes
on the first connect and the last disconnect (a dead connection counts: the broker closes it when
its keep-alive runs out), records the node in the locator, and saves ``last_seen`` in the
store. While the user is online, each of its actions moves ``last_seen``, republished at most once
per ``min_interval`` seconds.

The broker awaits the connect and disconnect hooks in place (broker/mqtt/server.py), so they only keep
count and queue a change; one drain task works through the queue in order, a batch at a time: the
locator is told of all the batch's changes in one call off the event loop, then each change
is published, then the ``last_seen`` of the batch's departures and the batch's device records
(each connect and disconnect of a ``<user>/<device>`` client id, and a device's platform) are
saved in one more call.

Privacy: a user whose ``last_seen`` setting is narrower than their ``online`` one is published
without ``last_seen`` (one retained message serves every watcher, so it carries only what all of
them may see). ``hiding_last_seen`` (blocking) tells which users of a batch going online do; a
change of the setting comes through :meth:`privacy_changed`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from amqtt.session import Session

from broker.members import add_member, remove_member
from broker.mqtt.plugins.base import BrokerPlugin, PluginContext
from client_sdk.contract import VERSION, Topics, encode
from workers.locator import Locator
from workers.stores.records import DeviceSeen

__all__ = ["PresencePlugin"]

log = logging.getLogger(__name__)


class PresencePlugin(BrokerPlugin):
    @dataclass(frozen=True)
    class Config:
        prefix: str = "chat"
        presence_prefix: str = "presence"
        min_interval: float = 5.0

    def __init__(
        self,
        config: Config,
        *,
        node_id: str,
        locator: Locator,
        save_last_seen: Callable[[str, float], None],
        on_change: Callable[[str, bytes], None] | None = None,
        save_devices: Callable[[Sequence[DeviceSeen]], None] | None = None,
        clock: Callable[[], float] = time.time,
        hiding_last_seen: Callable[[Sequence[str] | None], set[str]] | None = None,
    ) -> None:
        """``on_change(user, payload)`` runs (on the event loop) after each presence publish;
        ``save_devices`` (blocking) records a batch of device connects, disconnects and platforms."""
        self.config = config
        self._topics = Topics(config.prefix, config.presence_prefix)
        self._node = node_id
        self._locator = locator
        self._save_last_seen = save_last_seen
        self._on_change: Callable[[str, bytes], None] = on_change or (lambda user, data: None)
        self._clock = clock
        self._context: PluginContext | None = None
        self._connections: dict[str, int | set[int]] = {}
        """Each user's sessions here, by id (one: the id itself; broker/members.py)."""
        self._last_published: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._changes: deque[tuple[str, str, float]] = deque()  # (user, status, ts), in order
        self._save_devices = save_devices
        self._devices: dict[str, tuple[int, float]] = {}
        """Client id (``<user>/<device>``) → (its session, connected at), of this node."""
        self._device_changes: list[DeviceSeen] = []
        self._drain: asyncio.Task[None] | None = None
        self._hiding_last_seen = hiding_last_seen
        self._hidden: set[str] = set()
        """Users published without ``last_seen`` (privacy)."""
        # the locator may be remote (Redis): call it off the event loop, one call at a time so
        # that a quick connect/disconnect reaches it in order
        self._locator_calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqchat-locator")

    def attach(self, context: PluginContext) -> None:
        self._context = context

    @property
    def _broker(self) -> PluginContext:
        if self._context is None:
            raise RuntimeError("the presence plugin is not attached to a broker")
        return self._context

    def is_online(self, user: str) -> bool:
        return user in self._connections

    def local_users(self) -> list[str]:
        """Users with a connection on this node."""
        return list(self._connections)

    @property
    def online_users(self) -> int:
        return len(self._connections)

    def connected_at(self, client_id: str) -> float | None:
        """When the connection of ``client_id`` on this node started (None: not connected here)."""
        found = self._devices.get(client_id)
        return None if found is None else found[1]

    def note_platform(self, user: str, device: str, platform: str) -> None:
        """The device said which platform it is (its push registration): record it (event loop)."""
        self._queue_device(DeviceSeen(user, device, self._clock(), self._node, True, platform))

    async def restore(self, last_seen: dict[str, float]) -> None:
        """Retain ``offline`` with the stored last seen of every user (after a restart)."""
        if self._hiding_last_seen is not None:
            self._hidden = await asyncio.to_thread(self._hiding_last_seen, None)
        for user, ts in last_seen.items():
            if user not in self._connections:
                await self._broker.retain_message(
                    self._topics.presence(user), self._payload(user, "offline", ts), 1
                )

    # ------------------------------------------------------------------ broker events
    async def client_connected(self, session: Session) -> None:
        user = session.username
        if user is None:
            return
        first = add_member(self._connections, user, id(session))
        client_id = session.client_id
        if client_id and self._save_devices is not None:
            now = self._clock()
            self._devices[client_id] = (id(session), now)
            self._queue_device(DeviceSeen(user, client_id.partition("/")[2], now, self._node, True))
        if first:
            self._queue(user, "online")

    async def client_disconnected(self, session: Session) -> None:
        user = session.username
        if not user or not remove_member(self._connections, user, id(session)):
            return
        client_id = session.client_id
        if client_id and self._devices.get(client_id, (None,))[0] == id(session):  # not taken over
            del self._devices[client_id]
            self._queue_device(
                DeviceSeen(user, client_id.partition("/")[2], self._clock(), self._node, False)
            )
        if user in self._connections:
            return
        self._queue(user, "offline")

    async def announce_offline(self, user: str, ts: float) -> None:
        """``user`` went offline with a dead node (and is connected nowhere else)."""
        if user not in self._connections:
            await self._publish(user, "offline", ts)

    async def apply_remote(self, user: str, data: bytes) -> None:
        """A presence change published by another node: retain and route it here too."""
        if user in self._connections:
            return  # connected here: this node's own view wins
        topic = self._topics.presence(user)
        broker = self._broker
        await broker.retain_message(topic, data, 1)
        await broker.broadcast_message(topic, data, 1)

    async def privacy_changed(self, user: str, hides_last_seen: bool) -> None:
        """``user`` changed their privacy settings: publish their presence again, with or without
        ``last_seen``, if they are connected here (the other nodes get it as any change)."""
        if hides_last_seen:
            self._hidden.add(user)
        else:
            self._hidden.discard(user)
        if user in self._connections:
            await self._publish(user, "online", self._last_published.get(user, self._clock()))

    def touch(self, user: str) -> None:
        """The user acted (sent a command): move its last seen (event loop only)."""
        now = self._clock()
        if (
            user in self._connections
            and now - self._last_published.get(user, 0.0) >= self.config.min_interval
        ):
            self._last_published[user] = now
            task = asyncio.ensure_future(self._publish(user, "online", now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """The node stops: the queued changes are made, then everyone connected here goes offline."""
        if self._drain is not None:
            await asyncio.gather(self._drain, return_exceptions=True)
        now = self._clock()
        for user in list(self._connections):
            del self._connections[user]
            await self._locator_call(partial(self._locator.set_offline, user, self._node, now=now))
            await self._save(user, now)
        gone = [
            DeviceSeen(client_id.partition("/")[0], client_id.partition("/")[2], now, self._node, False)
            for client_id in self._devices
        ]
        self._devices.clear()
        if gone and self._save_devices is not None:
            try:
                await asyncio.to_thread(self._save_devices, gone)
            except Exception:
                log.warning("could not record %d devices offline", len(gone), exc_info=True)
        self._locator_calls.shutdown(wait=True)

    # ------------------------------------------------------------------ queued changes
    def _queue(self, user: str, status: str) -> None:
        self._changes.append((user, status, self._clock()))
        self._start_drain()

    def _queue_device(self, change: DeviceSeen) -> None:
        if self._save_devices is not None:
            self._device_changes.append(change)
            self._start_drain()

    def _start_drain(self) -> None:
        if self._drain is None:
            self._drain = asyncio.ensure_future(self._make_changes())

    async def _make_changes(self) -> None:
        try:
            await asyncio.sleep(0)  # the connections handled in the same turn of the loop join in
            while self._changes or self._device_changes:
                batch = list(self._changes)
                self._changes.clear()
                devices, self._device_changes = self._device_changes, []
                await self._apply(batch, devices)
        finally:
            self._drain = None

    async def _apply(
        self, batch: Sequence[tuple[str, str, float]], devices: Sequence[DeviceSeen] = ()
    ) -> None:
        locator, node = self._locator, self._node
        calls = [
            partial(locator.set_online if up == "online" else locator.set_offline, user, node, now=ts)
            for user, up, ts in batch
        ]
        if calls:
            await self._locator_call(partial(_each, calls, "locator update failed"))
        arriving = [user for user, status, _ in batch if status == "online"]
        if arriving and self._hiding_last_seen is not None:
            try:
                hidden = await asyncio.to_thread(self._hiding_last_seen, arriving)
            except Exception:
                log.warning("privacy of %d users unknown: last seen left out", len(arriving), exc_info=True)
                hidden = set(arriving)  # deny by default
            self._hidden.difference_update(arriving)
            self._hidden.update(hidden)
        for user, status, ts in batch:
            try:
                await self._publish(user, status, ts)
            except Exception:
                log.warning("presence of %s not published", user, exc_info=True)
        gone = [partial(self._save_last_seen, user, ts) for user, status, ts in batch if status == "offline"]
        if devices and self._save_devices is not None:
            gone.append(partial(self._save_devices, devices))
        if gone:
            try:
                await asyncio.to_thread(_each, gone, "could not save a last seen")
            except Exception:
                log.warning("could not save the last seen of %d users", len(gone), exc_info=True)

    # ------------------------------------------------------------------ helpers
    def _payload(self, user: str, status: str, ts: float) -> bytes:
        if user in self._hidden:
            return encode({"v": VERSION, "type": "presence", "user": user, "status": status})
        return encode({"v": VERSION, "type": "presence", "user": user, "status": status, "last_seen": ts})

    async def _publish(self, user: str, status: str, ts: float) -> None:
        self._last_published[user] = ts
        topic, data = self._topics.presence(user), self._payload(user, status, ts)
        broker = self._broker
        await broker.retain_message(topic, data, 1)
        await broker.broadcast_message(topic, data, 1)
        try:
            self._on_change(user, data)
        except Exception:
            log.warning("presence of %s not passed on to other nodes", user, exc_info=True)

    async def _locator_call(self, call: Callable[[], None]) -> None:
        try:
            await asyncio.get_running_loop().run_in_executor(self._locator_calls, call)
        except Exception:
            log.warning("locator update failed", exc_info=True)

    async def _save(self, user: str, ts: float) -> None:
        try:
            await asyncio.to_thread(self._save_last_seen, user, ts)
        except Exception:
            log.warning("could not save last seen of %s", user, exc_info=True)


def _each(calls: Sequence[Callable[[], None]], failure: str) -> None:
    """Make every call (blocking); one that fails is logged and the rest still run."""
    for call in calls:
        try:
            call()
        except Exception:
            log.warning("%s: %s", failure, call, exc_info=True)
