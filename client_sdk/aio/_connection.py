"""The asyncio client's lifecycle: connecting and reconnecting with aiomqtt, carrying out the
session's effects, and the ticker task that runs the session's timers.

Why aiomqtt: it is well kept and typed, and it is asyncio on top of paho-mqtt, the MQTT library of
the blocking client. Both clients thus speak MQTT through the same code (the same CONNACK reason
codes, TLS and WebSocket options), and aiomqtt only moves paho's socket onto the event loop. Its
client is reusable but not reentrant: one ``async with`` per connection, which is what the
reconnect loop below needs.

One event loop, no threads and no locks: aiomqtt drives paho's socket from the loop, so every
input reaches the :class:`~client_sdk._session.Session` (the same I/O-free protocol core as the
blocking client's) on the loop's thread. Three kinds of task:

- the connection task (:meth:`Connection._run`): one ``aiomqtt.Client`` per connection, its
  messages fed to the session, reconnecting after a loss (1 s, doubling up to 5 s, as the
  blocking client does);
- the ticker (:meth:`Connection._tick`): ``Session.on_tick`` when ``Session.next_tick`` is due;
- one short task per PUBLISH or SUBSCRIBE (aiomqtt awaits the PUBACK/SUBACK): started in the
  order the session asked for them, so the packets leave in that order; cancelled when their
  connection ends (the session resends what stayed unanswered after the next connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import ssl
import time
from collections.abc import Coroutine
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from client_sdk._base import END, Closed, State
from client_sdk._connection import RECONNECT_MAX_DELAY, RECONNECT_MIN_DELAY, log_refused_publish
from client_sdk._errors import AuthenticationError, ConnectError, NotConnected, Timeout, connect_refused
from client_sdk._events import Event
from client_sdk._inbound import feed, incoming
from client_sdk._session import Command, Effects, Session
from client_sdk._settings import MqttVersion
from client_sdk._statefile import StateFile
from client_sdk._subscriptions import Subscribe
from client_sdk._transfer import MediaEndpoint
from client_sdk.aio._changes import Changes
from client_sdk.contract import Topics, encode

try:
    import aiomqtt
    from aiomqtt.exceptions import MqttConnectError  # a refused CONNACK (not re-exported by aiomqtt)
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError("client_sdk.aio needs aiomqtt: pip install 'mqchat[aio]'") from exc

__all__ = ["Connection"]

logger = logging.getLogger(__name__)
_paho_logger = logging.getLogger(f"{__name__}.paho")

# aiomqtt warns when more calls than this await their answer; a client with many messages in
# flight is normal here (each publish is a task until its PUBACK).
_PENDING_CALLS_THRESHOLD = 10_000


class Connection:
    """The state of an asyncio client and its connection (assigned in ``Client.__init__``)."""

    _host: str
    _port: int
    _user: str
    _token: str
    _device: str
    _transport: Literal["tcp", "websockets"]
    _ws_path: str
    _mqtt_version: MqttVersion
    _tls: ssl.SSLContext | bool
    _keepalive: int
    _connect_timeout: float
    _reconnect: bool
    _topics: Topics
    _inbox: str
    _outbox: str
    _state_file: StateFile | None
    _session: Session
    _media: MediaEndpoint
    _changes: Changes
    """Notified whenever the session or the client's state may have changed."""
    _events: asyncio.Queue[Event | Closed]
    _state: State
    _mqtt: aiomqtt.Client | None
    """The live connection (None while there is none)."""
    _runner: asyncio.Task[None] | None
    _ticker: asyncio.Task[None] | None
    _io: set[asyncio.Task[None]]
    """The publishes and subscribes still awaiting their answer."""
    _subscribe_ids: itertools.count[int]

    # -- state -----------------------------------------------------------------------------------

    @property
    def user(self) -> str:
        return self._user

    @property
    def device(self) -> str:
        return self._device

    @property
    def client_id(self) -> str:
        """The MQTT client id, ``<user>/<device>``."""
        return f"{self._user}/{self._device}"

    @property
    def connected(self) -> bool:
        """Whether the connection is up right now (it may drop and come back at any time)."""
        return self._state is not State.CLOSED and self._session.connected

    @property
    def cursor(self) -> int:
        """The highest inbox cursor processed in order."""
        return self._session.cursor

    # -- lifecycle -----------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, and keep connected in the background; returns once the server accepted the
        connection (the initial sync goes on: see :meth:`wait_synced`).

        Raises :class:`AuthenticationError` when the credentials are refused, :class:`ConnectError`
        when the server cannot be reached or does not answer within ``connect_timeout``, and
        ``RuntimeError`` when the client is already open or was closed.
        """
        if self._state is not State.NEW:
            raise RuntimeError(f"the client is {self._state.value}; a client is opened only once")
        self._state = State.CONNECTING
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        runner = self._runner = asyncio.create_task(self._run(first), name=f"mqchat {self.client_id}")
        try:
            await first
        except BaseException:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            self._runner = None
            if self._state is State.CONNECTING:
                self._state = State.NEW
            raise
        if self._state is not State.CONNECTING:  # closed by another task meanwhile
            raise NotConnected("the client was closed while connecting")
        self._state = State.OPEN
        self._ticker = asyncio.create_task(self._tick(), name=f"mqchat-ticker {self.client_id}")

    async def close(self) -> None:
        """Disconnect and stop the client's tasks. Idempotent.

        Iterators over :meth:`events` end once the queued events are consumed; waits on outgoing
        messages raise :class:`NotConnected`. Messages not yet published are dropped.
        """
        if self._state is State.CLOSED:
            return
        self._state = State.CLOSED
        self._session.on_disconnected()
        self._changes.notify()
        tasks = [task for task in (self._runner, self._ticker) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop_io()
        self._session.outbox.close()
        self._session.requests.close()
        self._events.put_nowait(END)
        self._changes.notify()
        self._persist(self._session.cursor)
        logger.debug("%s closed at cursor %d", self.client_id, self._session.cursor)

    async def wait_synced(self, *, timeout: float | None = None) -> None:
        """Wait until the catch-up after the latest connect reached the end of the inbox.

        Raises :class:`Timeout` after ``timeout`` seconds (None: no limit), :class:`NotConnected`
        when the client is not open or gets closed.
        """
        self._require_open()
        session = self._session
        if not await self._changes.wait_for(lambda: session.synced or self._closed(), timeout):
            raise Timeout(f"{self.client_id} did not finish syncing within {timeout} s")
        self._require_open()

    # -- internals shared by the calls ----------------------------------------------------------------

    def _closed(self) -> bool:
        return self._state is State.CLOSED

    def _require_open(self) -> None:
        if self._state is not State.OPEN:
            raise NotConnected(f"the client is {self._state.value}")

    def _apply(self, effects: Effects) -> None:
        """Carry out what the session asked for: SUBSCRIBEs and PUBLISHes in order (only on a live
        connection: the session makes them again after the next connect), events to the app."""
        client = self._mqtt
        if client is not None:
            for subscribe in effects.subscriptions:
                subscribe_id = next(self._subscribe_ids)
                self._session.on_subscribing(subscribe_id, subscribe)
                self._spawn(self._subscribe(client, subscribe_id, subscribe))
            for command in effects.commands:
                self._spawn(self._publish(client, command))
        for event in effects.events:
            self._events.put_nowait(event)
        self._changes.notify()

    def _persist(self, cursor: int) -> None:
        # a few bytes replaced in place: not worth a thread (the blocking client does it inline too)
        if self._state_file is not None:
            self._state_file.keep(cursor, client_id=self.client_id)

    # -- the connection task ---------------------------------------------------------------------------

    async def _run(self, first: asyncio.Future[None]) -> None:
        """Connect, read, and (with ``reconnect``) connect again after every loss until cancelled.

        The outcome of the first attempt goes to ``first``; a failed first attempt ends the task.
        """
        where = f"{self._host}:{self._port}"
        delay: float = RECONNECT_MIN_DELAY
        while True:
            client = self._new_mqtt()
            entered = False
            try:
                async with client:
                    entered = True
                    if not first.done():
                        first.set_result(None)
                        logger.info("%s connected to %s", self.client_id, where)
                    delay = RECONNECT_MIN_DELAY
                    self._mqtt = client
                    self._apply(self._session.on_connected())
                    async for message in client.messages:
                        self._on_message(message)
            except MqttConnectError as exc:
                error = connect_refused(where, self._user, exc.rc)
                if not first.done():
                    first.set_exception(error)
                    return
                logger.warning("%s: the server refused the reconnection: %s", self.client_id, exc.rc)
                if isinstance(error, AuthenticationError):
                    # signed out, or its token revoked: trying again would only be refused
                    logger.error("%s: credentials refused; no more reconnecting", self.client_id)
                    self._events.put_nowait(Closed(error))
                    return
            except aiomqtt.MqttError as exc:
                unanswered = not entered and await _close_half_open(client)
                if not first.done():
                    if unanswered:
                        reason = f"{where} did not accept the connection within {self._connect_timeout} s"
                    else:
                        reason = f"cannot connect to {where}: {exc}"
                    first.set_exception(ConnectError(reason))
                    return
                if self._session.connected:
                    logger.warning(
                        "%s: disconnected (%s)%s",
                        self.client_id,
                        exc,
                        "; reconnecting" if self._reconnect else "",
                    )
            except Exception as exc:
                # not an MQTT error (paho refusing an option, say): the first connect raises it
                # instead of waiting for ever; later, the connection is tried again as after a loss
                if not first.done():
                    first.set_exception(exc)
                    return
                logger.exception("%s: the connection failed", self.client_id)
            finally:
                await self._lost()
            if not self._reconnect:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_DELAY)

    def _new_mqtt(self) -> aiomqtt.Client:
        tls: ssl.SSLContext | None = None
        if isinstance(self._tls, ssl.SSLContext):
            tls = self._tls
        elif self._tls:
            tls = ssl.create_default_context()
        mqtt5 = self._mqtt_version == "5"
        client = aiomqtt.Client(
            self._host,
            self._port,
            username=self._user,
            password=self._token,
            identifier=self.client_id,
            # MQTT 5 has clean start instead of clean session; every connection starts clean on
            # both (the client catches up with `sync` from its cursor)
            clean_session=None if mqtt5 else True,
            clean_start=True if mqtt5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,  # paho: v5 only
            protocol=aiomqtt.ProtocolVersion.V5 if mqtt5 else aiomqtt.ProtocolVersion.V311,
            transport=self._transport,
            websocket_path=self._ws_path if self._transport == "websockets" else None,
            tls_context=tls,
            keepalive=self._keepalive,
            timeout=self._connect_timeout,
            logger=_paho_logger,
        )
        client.pending_calls_threshold = _PENDING_CALLS_THRESHOLD
        if mqtt5:
            _log_refused_publishes(client, self.client_id)
        return client

    async def _lost(self) -> None:
        """The connection ended (or never came): forget it and what was in flight on it."""
        self._mqtt = None
        self._session.on_disconnected()
        self._changes.notify()
        await self._stop_io()

    async def _stop_io(self) -> None:
        io = list(self._io)
        for task in io:
            task.cancel()
        await asyncio.gather(*io, return_exceptions=True)

    def _on_message(self, message: aiomqtt.Message) -> None:
        try:
            payload = message.payload
            if not isinstance(payload, bytes | bytearray):
                return  # paho always hands over bytes
            item = incoming(
                client_id=self.client_id,
                topics=self._topics,
                inbox=self._inbox,
                topic=message.topic.value,
                payload=payload,
            )
            if item is None or self._closed():
                return
            effects = feed(self._session, item, client_id=self.client_id, now=time.monotonic())
            if effects is None:
                return
            self._apply(effects)
            if effects.cursor_advanced:
                self._persist(self._session.cursor)
        except Exception:
            logger.exception("%s: error while handling a message", self.client_id)

    # -- the ticker task ------------------------------------------------------------------------------

    async def _tick(self) -> None:
        """Run the session's timers (gap syncs, sync retries, resends) when they are due."""
        while True:
            due = self._session.next_tick()
            now = time.monotonic()
            if due is None or due > now:
                await self._changes.next(None if due is None else due - now)
                continue
            try:
                self._apply(self._session.on_tick(now=now))
            except Exception:
                logger.exception("%s: a timer failed", self.client_id)
                await asyncio.sleep(1.0)

    # -- one PUBLISH or SUBSCRIBE ----------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._io.add(task)
        task.add_done_callback(self._io.discard)

    async def _subscribe(self, client: aiomqtt.Client, subscribe_id: int, subscribe: Subscribe) -> None:
        topics = [(self._topics.presence(user), 1) for user in subscribe.presence]
        if subscribe.inbox:
            topics.insert(0, (self._inbox, 1))
        try:
            granted = await client.subscribe(topics, timeout=math.inf)
        except aiomqtt.MqttError as exc:  # the connection is going: subscribed again on connect
            logger.debug("%s: subscribing failed: %s", self.client_id, exc)
            return
        if client is not self._mqtt:
            return
        refused = [code >= 0x80 if isinstance(code, int) else code.is_failure for code in granted]
        try:
            self._apply(self._session.on_suback(subscribe_id, refused, now=time.monotonic()))
        except Exception:
            logger.exception("%s: error while handling a subscription", self.client_id)

    async def _publish(self, client: aiomqtt.Client, command: Command) -> None:
        try:
            await client.publish(self._outbox, encode(command.payload), qos=command.qos, timeout=math.inf)
        except aiomqtt.MqttError as exc:
            # Unanswered sends and receipts go out again after the next connect.
            logger.log(
                logging.WARNING if client is self._mqtt else logging.DEBUG,
                "%s: publishing the %s command %s failed: %s",
                self.client_id,
                command.payload["type"],
                command.payload["id"],
                exc,
            )


def _log_refused_publishes(client: aiomqtt.Client, client_id: str) -> None:
    """Log the PUBACKs that refused a command, as the blocking client does: aiomqtt's ``publish``
    returns without the reason code, so paho's callback (``_client``, aiomqtt's documented escape
    hatch) is wrapped to see it first."""
    forward = client._on_publish  # what aiomqtt set as paho's callback

    def on_publish(
        paho_client: mqtt.Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Properties
    ) -> None:
        log_refused_publish(client_id, reason_code)
        forward(paho_client, userdata, mid, reason_code, properties)

    client._client.on_publish = on_publish


async def _close_half_open(client: aiomqtt.Client) -> bool:
    """Close the socket of a connection whose CONNACK never came; False when there was none.

    aiomqtt gives up waiting but leaves paho's socket open (and its housekeeping task running);
    paho's own ``disconnect`` closes it once the DISCONNECT is written. ``_client`` is the paho
    client aiomqtt documents as its escape hatch.
    """
    paho = client._client
    if paho.socket() is None:
        return False
    paho.disconnect()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while paho.socket() is not None:
                await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the housekeeping task, cancelled with the socket, ends now
    return True
