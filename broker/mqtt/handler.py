"""The broker side of one MQTT connection: amqtt's BrokerProtocolHandler, lighter and with mqchat's fixes.

What changes from stock amqtt 0.12.1 (``tests/unit/test_amqtt_pin.py`` pins what this relies on):

- **Ingest before PUBACK.** A client PUBLISH goes to the ``Gate`` (ingest) before its PUBACK, and
  not to amqtt's delivery queue: clients only publish to their own outbox, which nobody reads.
- **Keep-alive enforced.** A connection silent past its keep-alive is closed, also when it stops
  in the middle of a packet (stock: ignored).
- **SUBSCRIBE and UNSUBSCRIBE go straight to the broker** (``Requests``), one at a time per
  connection and in order, instead of through two queues and two waiting tasks per connection.
- **TCP read by frames** (``broker/mqtt/codec.py``). Stock amqtt read each packet with four or more
  awaited reads and a task per packet, under ``asyncio.wait_for`` (a task and a timer more). Here
  one read takes whatever the socket holds, and every whole packet in it is handled in order:
  PUBLISH, PUBACK and PINGREQ on bytes, the rest decoded by amqtt and dispatched; only packets that
  wait on something else (SUBSCRIBE, UNSUBSCRIBE, QoS 2) get a task. A malformed packet is dropped
  alone; a stream that cannot be framed any more is closed. WebSocket connections, or a plugin that
  wants every packet received, keep amqtt's packet-at-a-time reader.
- **QoS 1 deliveries without a task, future or timer each** (``publish_now``, TCP): stock amqtt
  ran each server PUBLISH as a task that built an application message, awaited the write under a
  lock and a PUBACK under ``wait_for``. Here the PUBLISH is written at once, the session's
  ``quick_out`` keeps it until its PUBACK, and one timer per connection drops deliveries left
  unacknowledged past ``PUBACK_TIMEOUT`` (as stock).
- **Fewer writes.** Deliveries and PUBACKs are written through the broker's ``WriteScheduler``
  (broker/mqtt/writes.py), which batches a connection's packets into one system call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from amqtt.adapters import BufferReader, StreamWriterAdapter
from amqtt.errors import AMQTTError, MQTTError, NoDataError, ProtocolHandlerError
from amqtt.events import MQTTEvents
from amqtt.mqtt import packet_class
from amqtt.mqtt.connack import (
    BAD_USERNAME_PASSWORD,
    CONNECTION_ACCEPTED,
    IDENTIFIER_REJECTED,
    NOT_AUTHORIZED,
    SERVER_UNAVAILABLE,
    ConnackPacket,
)
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.mqtt.packet import PINGREQ, RESERVED_0, RESERVED_15, SUBSCRIBE, MQTTFixedHeader
from amqtt.mqtt.pingreq import PingReqPacket
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.pubcomp import PubcompPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.mqtt.pubrec import PubrecPacket
from amqtt.mqtt.pubrel import PubrelPacket
from amqtt.mqtt.subscribe import SubscribePacket
from amqtt.mqtt.unsubscribe import UnsubscribePacket
from amqtt.session import Session

from broker.mqtt.codec import (
    PUBACK,
    Frame,
    encode_puback,
    encode_publish,
    mark_dup,
    read_publish,
)
from broker.mqtt.connection_state import DISCARD, ConnectionState
from broker.mqtt.feed import FrameFeed
from broker.mqtt.keepalive import KeepAliveWheel
from broker.mqtt.lean import Lazy, LeanHandler, run_now, share_names
from broker.mqtt.mqtt5 import Reason
from broker.mqtt.properties import PublishProps
from broker.mqtt.protocol import MqttProtocol
from broker.mqtt.writes import WriteScheduler

__all__ = ["PUBACK_TIMEOUT", "Gate", "MqchatHandler", "Requests"]

log = logging.getLogger(__name__)

# MQTT 5 CONNACK reasons as 3.1.1 codes; any other refusal is 5, not authorized
_CONNACK_311: dict[int, int] = {
    Reason.CLIENT_ID_NOT_VALID: IDENTIFIER_REJECTED,
    Reason.BAD_CREDENTIALS: BAD_USERNAME_PASSWORD,
    Reason.SERVER_BUSY: SERVER_UNAVAILABLE,
    Reason.QUOTA_EXCEEDED: SERVER_UNAVAILABLE,
}

PUBACK_TIMEOUT = 5.0
"""Seconds a QoS 1 delivery waits for its PUBACK before it is dropped (stock amqtt's)."""

_PINGRESP = b"\xd0\x00"


class Gate(Protocol):
    def accept(
        self,
        user: str | None,
        topic: str,
        data: bytes | bytearray,
        client_id: str | None = None,
        props: PublishProps | None = None,
    ) -> int:
        """Take a client's PUBLISH; the MQTT 5 PUBACK reason code (0: accepted; 3.1.1 ignores it)."""
        ...


class Requests(Protocol):
    async def on_subscribe(
        self, session: Session, handler: MqchatHandler, packet_id: int, topics: list[tuple[str, int]]
    ) -> None: ...

    async def on_unsubscribe(
        self, session: Session, handler: MqchatHandler, packet_id: int, topics: list[str]
    ) -> None: ...


class MqchatHandler(LeanHandler, BrokerProtocolHandler):
    gate: Gate | None = None
    requests: Requests | None = None
    writes: WriteScheduler | None = None
    """The broker's: when this connection's deliveries and PUBACKs are written (None: at once)."""
    _closing: asyncio.Future[None] | None = None
    _watchdog: asyncio.TimerHandle | int | None = None
    """The keep-alive deadline: its bucket in ``keepalives`` (or its own timer without one)."""
    keepalives: KeepAliveWheel | None = None
    """The broker's: the keep-alive deadlines of its connections on one timer (None: one each)."""
    _reading_since: float | None = None
    _sweeper: asyncio.TimerHandle | None = None
    max_packet: int | None = None
    """Bytes a packet may say it has (TCP): a longer one closes the connection before it is read."""
    held: bytearray | None = None  # packets held back by ``writes`` (its own: see broker/mqtt/writes.py)
    due = False  # on ``writes``' list of connections to write at the end of its batch

    _pending_subscriptions: Any = DISCARD  # amqtt's queues: SUBSCRIBE and UNSUBSCRIBE go to ``requests``
    _pending_unsubscriptions: Any = DISCARD
    # made on first use (broker/mqtt/lean.py): most connections never subscribe twice at once
    _requests_lock: Lazy[asyncio.Lock] = Lazy(asyncio.Lock)
    _tasks: Lazy[set[asyncio.Task[None]]] = Lazy(set)

    # ------------------------------------------------------------------ the connection's life
    async def start(self) -> None:
        if not self._is_attached():
            raise ProtocolHandlerError("Handler is not attached to a stream")
        # a clean session has nothing in flight to retry, and the broker's write timeout does nothing
        if not self._feed_frames():
            self._reader_task = asyncio.create_task(self._reader_loop())
        waiter: asyncio.Future[Any] | None = getattr(self, "_disconnect_waiter", None)
        if waiter is None or waiter.done():
            self._disconnect_waiter = asyncio.get_running_loop().create_future()

    def _feed_frames(self) -> bool:
        """TCP: hand the connection's bytes to a ``FrameFeed`` as they arrive, with no reading task
        (broker/mqtt/feed.py); False where that cannot be done (WebSocket, a plugin that wants
        every packet received), for the reading task to read."""
        session, connection = self.session, self._connection()
        if session is None or connection is None or connection.transport is None:
            return False
        feed = FrameFeed(self, session, connection.transport)
        self._arm_watchdog()
        self._reading_since = asyncio.get_running_loop().time()
        unread, eof = connection.attach_feed(feed)
        if unread:  # what came with the CONNECT, or after it before now
            feed.data_received(unread)
        if eof:
            feed.end()
        return True

    def _arm_watchdog(self, seconds: float | None = None) -> None:
        """Check the keep-alive in ``seconds`` (None: the session's keep-alive, if it has one)."""
        if seconds is None:
            session = self.session
            if session is None or session.keep_alive <= 0:
                return
            seconds = session.keep_alive
        wheel = self.keepalives
        if wheel is None:
            self._watchdog = asyncio.get_running_loop().call_later(seconds, self.keepalive_due)
        else:
            self._watchdog = wheel.watch(self, seconds)

    def _disarm_watchdog(self) -> None:
        watchdog, self._watchdog = self._watchdog, None
        if isinstance(watchdog, asyncio.TimerHandle):
            watchdog.cancel()
        elif watchdog is not None and self.keepalives is not None:
            self.keepalives.forget(self, watchdog)

    async def _reader_loop(self) -> None:
        session = self.session
        self._arm_watchdog()
        broken: MQTTError | None = None
        try:
            await self._read_packets(session)
        except asyncio.CancelledError:
            pass
        except ConnectionError:
            log.debug("%s: connection lost", self._client_id)
        except MQTTError as exc:  # the byte stream itself is broken: no later packet can be found
            broken = exc
        except Exception as exc:  # noqa: BLE001 - as stock amqtt: any failure ends the connection
            log.warning("%s: reader stopped on %r", self._client_id, exc)
        try:
            if broken is not None:
                await self._unreadable(broken)
        finally:
            await self._finish()

    async def _finish(self) -> None:
        """The connection's reading ended (EOF, an error, a stop): end everything else of it."""
        self._disarm_watchdog()
        for task in list(self._tasks):
            task.cancel()
        self._ended()
        await self.handle_connection_closed()
        self._reader_stopped.set()
        await self.stop()

    def _connection(self) -> MqttProtocol | None:
        """The TCP (or TLS) connection under the writer, open, when no plugin wants each packet
        received as an object (broker/mqtt/protocol.py)."""
        if MQTTEvents.PACKET_RECEIVED in self.plugins_manager._event_plugin_callbacks:
            return None
        writer = self.writer
        return writer if isinstance(writer, MqttProtocol) and not writer.is_closed else None

    def _on_publish(self, frame: Frame, session: Session) -> bytes:
        """A QoS 0 or 1 PUBLISH to ingest; its PUBACK, if any, to write."""
        try:
            topic, _qos, packet_id, data = read_publish(frame)
        except MQTTError as exc:
            log.debug("%s: malformed PUBLISH discarded: %s", session.client_id, exc)
            return b""
        self._ingest(session, topic, data)
        return b"" if packet_id is None else encode_puback(packet_id)

    def _on_puback(self, body: bytes) -> bool:
        """A PUBACK's body: True if it ended a ``publish_now`` delivery, False for ``_on_frame``
        (amqtt's own flow: a retained message's, say)."""
        return len(body) == 2 and self._quick_acknowledged((body[0] << 8) | body[1])

    async def _unreadable(self, exc: MQTTError) -> None:
        """The stream cannot be framed any more: say why before the connection ends (3.1.1 has
        no way to tell the client)."""
        log.info("%s: closing a stream that cannot be read: %s", self._client_id, exc)

    async def _on_frame(self, frame: Frame, session: Session) -> bool:
        """Handle one packet other than a QoS 0/1 PUBLISH or a quick PUBACK; False ends the connection."""
        kind = frame.first >> 4
        if kind == PUBACK and len(frame.body) == 2:  # of amqtt's own flow (a retained message's, say)
            await self._acknowledge((frame.body[0] << 8) | frame.body[1])
            return True
        if kind == PINGREQ:
            self._write(_PINGRESP)
            return True
        if kind in (RESERVED_0, RESERVED_15):
            log.warning("%s sent a reserved packet type: closing", session.client_id)
            return False
        header = MQTTFixedHeader(kind, frame.first & 0x0F, len(frame.body))
        try:
            packet = await packet_class(header).from_stream(BufferReader(frame.body), fixed_header=header)
            await self._dispatch(packet)
        except (MQTTError, NoDataError) as exc:  # a packet shorter than its fields, or malformed
            log.debug("%s: malformed packet discarded: %r", session.client_id, exc)
        return True

    def _subscribe_now(self, frame: Frame, session: Session) -> bool:
        """A SUBSCRIBE, decoded here and handled by a task of its own (``_dispatch``'s); False
        for the reading task to handle it instead (``_on_frame``), where decoding failed in a way
        that ends the connection there."""
        header = MQTTFixedHeader(SUBSCRIBE, frame.first & 0x0F, len(frame.body))
        try:
            packet = run_now(SubscribePacket.from_stream(BufferReader(frame.body), fixed_header=header))
        except (MQTTError, NoDataError) as exc:  # as ``_on_frame``: dropped alone
            log.debug("%s: malformed packet discarded: %r", session.client_id, exc)
            return True
        except Exception:  # noqa: BLE001 - ``_on_frame`` meets it again and ends the connection
            return False
        self._spawn(self.handle_subscribe(packet))
        return True

    def _write(self, data: bytes) -> None:
        writer = self.writer
        if writer is not None:
            writer.write(data)

    async def _read_packets(self, session: Session | None) -> None:
        """amqtt's way, a packet at a time (WebSocket, or a plugin that wants packets received)."""
        loop = asyncio.get_running_loop()
        while self.reader is not None and session is not None:
            try:
                # the whole packet, not just its header: a client silent mid-packet is dead too
                self._reading_since = loop.time()
                packet = await self._read_packet()
                self._reading_since = None
                if packet is None:
                    break
                await self.plugins_manager.fire_event(
                    MQTTEvents.PACKET_RECEIVED, packet=packet, session=session
                )
                await self._dispatch(packet)
            except MQTTError:
                log.debug("%s: malformed packet discarded", session.client_id)
            except NoDataError:
                break

    def keepalive_due(self) -> None:
        """The keep-alive deadline of the packet being read (one timer or wheel bucket per
        connection, re-armed lazily, instead of an ``asyncio.timeout`` per packet); time spent
        handling a packet counts for nothing."""
        self._watchdog = None
        session = self.session
        keep_alive = session.keep_alive if session is not None else 0
        if keep_alive <= 0:
            return
        since = self._reading_since
        now = asyncio.get_running_loop().time()
        if since is not None and now - since >= keep_alive:
            self.handle_read_timeout()
            return
        self._arm_watchdog(keep_alive if since is None else keep_alive - (now - since))

    async def _read_packet(self) -> Any:
        """The next packet, or None at EOF or on a reserved packet type (the connection ends)."""
        header = await MQTTFixedHeader.from_stream(self.reader)
        if not header:
            return None  # EOF
        if header.packet_type in (RESERVED_0, RESERVED_15):
            log.warning("%s sent a reserved packet type: closing", self._client_id)
            return None
        return await packet_class(header).from_stream(self.reader, fixed_header=header)

    async def _dispatch(self, packet: Any) -> None:
        if isinstance(packet, PublishPacket):
            if packet.qos in (QOS_0, QOS_1):
                await self.handle_publish(packet)
            else:  # QoS 2 waits for the client's PUBREL, which this loop reads
                self._spawn(self.handle_publish(packet))
        elif isinstance(packet, PubackPacket):
            await self.handle_puback(packet)
        elif isinstance(packet, PingReqPacket):
            await self.handle_pingreq(packet)
        elif isinstance(packet, DisconnectPacket):
            await self.handle_disconnect(packet)
        elif isinstance(packet, SubscribePacket):
            self._spawn(self.handle_subscribe(packet))
        elif isinstance(packet, UnsubscribePacket):
            self._spawn(self.handle_unsubscribe(packet))
        else:  # the rest of the QoS 2 flow, CONNECT again, packets a client may not send
            self._spawn(self._handle_other(packet))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        tasks = self._tasks
        tasks.discard(task)
        if not tasks:  # an idle connection holds no empty set (made again on the next task)
            del self._tasks

    async def _handle_other(self, packet: Any) -> None:
        if isinstance(packet, PubrecPacket):
            await self.handle_pubrec(packet)
        elif isinstance(packet, PubrelPacket):
            await self.handle_pubrel(packet)
        elif isinstance(packet, PubcompPacket):
            await self.handle_pubcomp(packet)
        elif isinstance(packet, ConnectPacket):
            await self.handle_connect(packet)
        else:
            log.warning("%s sent an unexpected %s", self._client_id, type(packet).__name__)

    @property
    def _client_id(self) -> str | None:
        return self.session.client_id if self.session is not None else None

    def handle_read_timeout(self) -> None:
        log.info("%s silent past its keep-alive: closing", self._client_id)
        self._closing = asyncio.ensure_future(self.handle_connection_closed())

    def _ended(self) -> None:
        """The reader stopped: the connection is over."""
        self._drop_deliveries()

    # ------------------------------------------------------------------ what the broker says
    async def send_connack(self, reason: int, session_present: bool) -> None:
        """The CONNACK: ``reason`` an MQTT 5 reason code (0: accepted), said with the nearest of
        3.1.1's five refusals. A client must tell "try again later" (3, server unavailable) from
        "these credentials will never do" (4 and 5): one that stops reconnecting on every refusal
        would give up for good while the credential store restarts."""
        code = CONNECTION_ACCEPTED if reason == 0 else _CONNACK_311.get(reason, NOT_AUTHORIZED)
        present = 1 if session_present and reason == 0 else 0
        if not await self._sent_now(bytes((0x20, 2, present, code))):
            await self._send_packet(ConnackPacket.build(present, code))

    async def mqtt_acknowledge_subscription(self, packet_id: int, return_codes: list[int]) -> None:
        body = packet_id.to_bytes(2, "big") + bytes(return_codes)
        if len(body) < 128 and await self._sent_now(bytes((0x90, len(body))) + body):
            return
        await super().mqtt_acknowledge_subscription(packet_id, return_codes)

    async def _sent_now(self, packet: bytes) -> bool:
        """Write an answer made as bytes over TCP (or TLS), as amqtt's ``_send_packet`` would write
        its packet object, without building one, encoding it by awaited steps and firing an event
        no plugin listens to: in a connect storm every connection's CONNACK and SUBACK went that
        way. False, with nothing written, where amqtt's way must be kept (WebSocket, whose writer
        may raise; a plugin that wants every packet sent)."""
        writer = self.writer
        if type(writer) is not MqttProtocol:
            return False
        if MQTTEvents.PACKET_SENT in self.plugins_manager._event_plugin_callbacks:
            return False
        writer.write(packet)
        try:
            await writer.drain()
        except ConnectionResetError:  # as amqtt's: the connection is over
            await self.handle_connection_closed()
        return True

    async def acknowledge_unsubscribe(self, packet_id: int, codes: list[int]) -> None:
        """The UNSUBACK; ``codes`` (MQTT 5 reason codes, one per filter) are not in 3.1.1's."""
        await self.mqtt_acknowledge_unsubscription(packet_id)

    async def close_with(self, reason: int) -> None:
        """Close the connection from the server's side; ``reason`` an MQTT 5 DISCONNECT reason code
        (3.1.1 has no server DISCONNECT: the connection just ends)."""
        await self.handle_connection_closed()

    # ------------------------------------------------------------------ packets
    async def handle_subscribe(self, subscribe: SubscribePacket) -> None:
        if subscribe.variable_header is None or subscribe.payload is None:
            raise MQTTError("SUBSCRIBE packet without header or payload")
        async with self._requests_lock:
            if self.requests is not None and self.session is not None:
                await self.requests.on_subscribe(
                    self.session, self, subscribe.variable_header.packet_id, subscribe.payload.topics
                )

    async def handle_unsubscribe(self, unsubscribe: UnsubscribePacket) -> None:
        if unsubscribe.variable_header is None or unsubscribe.payload is None:
            raise MQTTError("UNSUBSCRIBE packet without header or payload")
        async with self._requests_lock:
            if self.requests is not None and self.session is not None:
                await self.requests.on_unsubscribe(
                    self.session, self, unsubscribe.variable_header.packet_id, unsubscribe.payload.topics
                )

    async def handle_publish(self, publish_packet: PublishPacket) -> None:
        topic, data, qos = publish_packet.topic_name, publish_packet.data, publish_packet.qos
        if topic is None or data is None or self.session is None:
            return
        self._ingest(self.session, topic, data)
        if qos == QOS_0:
            return
        if qos == QOS_1:
            assert publish_packet.variable_header is not None
            await self._send_packet(PubackPacket.build(publish_packet.variable_header.packet_id))
            return
        # QoS 2 keeps amqtt's flow for its acknowledgements; the message itself, already ingested,
        # ends in the session's DISCARD queue.
        await super().handle_publish(publish_packet)

    def _ingest(self, session: Session, topic: str, data: bytes | bytearray) -> None:  # 3.1.1: no code
        if self.gate is not None:
            try:
                self.gate.accept(session.username, topic, data, session.client_id)
            except Exception:
                log.exception("ingest failed on a PUBLISH of %s", session.client_id)

    async def handle_puback(self, puback: PubackPacket) -> None:
        assert puback.variable_header is not None
        await self._acknowledge(puback.variable_header.packet_id)

    # ------------------------------------------------------------------ deliveries
    def publish_now(
        self,
        topic: str,
        data: bytes,
        done: Callable[[], None],
        qos: int = QOS_1,
        props: PublishProps | None = None,
        retain: bool = False,
    ) -> bool:
        """Write a QoS 1 PUBLISH now (event loop); ``done()`` runs once it is acknowledged, timed
        out or the connection ended. False, with nothing sent: use ``mqtt_publish`` (not TCP).
        ``qos`` 0: written the same way, and ``done()`` runs at once (amqtt's flow for it cost a
        task, a packet object and a stream write per delivery).
        "Now" is as ``writes`` says: inside its ``corked`` block, at the block's end.

        Calls write in call order, so a connection's deliveries keep their order. There is no
        ``drain``: what a slow reader leaves in the socket buffer is bounded by the broker's
        per-connection limit of unacknowledged deliveries, as the tasks waiting on it were. No
        future or timer per delivery: the session's ``quick_out`` keeps them in sending order and
        one timer per connection drops those unacknowledged after ``PUBACK_TIMEOUT``.

        ``props``: MQTT 5 properties, which 3.1.1 has no room for; ``retain``: the RETAIN flag (a
        retained presence sent on subscribe).
        """
        session, writer = self.session, self.writer
        # TCP's writer first: an ABC's isinstance goes through ``ABCMeta.__instancecheck__``
        if not isinstance(session, ConnectionState) or (
            type(writer) is not MqttProtocol and not isinstance(writer, StreamWriterAdapter)
        ):
            return False
        if writer.is_closed:
            return False
        writes = self.writes
        if qos == QOS_0:
            packet = encode_publish(topic, data, None, QOS_0, retain)
            if writes is None:
                writer.write(packet)
            else:
                writes.send(self, packet)
            done()
            return True
        return self._send_qos1(session, writer, topic, data, done, False, retain) is not None

    def _send_qos1(
        self,
        session: ConnectionState,
        writer: StreamWriterAdapter,
        topic: str,
        data: bytes,
        done: Callable[[], None],
        dup: bool = False,
        retain: bool = False,
        acked: Callable[[], None] | None = None,
    ) -> int | None:
        """Write a QoS 1 PUBLISH kept in ``quick_out`` until its PUBACK (``_track``); its packet id
        (None: 65535 in flight, nothing sent)."""
        try:
            packet_id = session.next_packet_id
        except AMQTTError:
            return None  # 65535 in flight: let amqtt's flow refuse it
        self._track(session, packet_id, done, acked)
        packet = encode_publish(topic, data, packet_id, QOS_1, retain)
        if dup:
            packet = mark_dup(packet)
        writes = self.writes
        if writes is None:
            writer.write(packet)
        else:
            writes.send(self, packet)
        return packet_id

    def _track(
        self,
        session: ConnectionState,
        packet_id: int,
        done: Callable[[], None],
        acked: Callable[[], None] | None = None,
    ) -> None:
        """Keep QoS 1 delivery ``packet_id`` in ``quick_out`` until its PUBACK (``acked()`` then, a
        persistent session's) or ``PUBACK_TIMEOUT``; ``done()`` either way."""
        loop = self._loop  # not ``get_running_loop()``: a getpid system call per delivery
        session.quick_out[packet_id] = (loop.time(), done)
        if acked is not None:
            session.on_ack[packet_id] = acked
        if self._sweeper is None:
            self._sweeper = loop.call_later(PUBACK_TIMEOUT, self._sweep)

    def publish_tracked(
        self,
        topic: str,
        data: bytes,
        *,
        dup: bool,
        acked: Callable[[], None],
        done: Callable[[], None],
        props: PublishProps | None = None,
    ) -> bool:
        """A QoS 1 delivery of a persistent session: as ``publish_now``, with DUP set when ``dup``,
        and ``acked()`` called when its PUBACK comes (then ``done()``; only ``done()`` when it times
        out or the connection ends). Over WebSocket it goes amqtt's way (without DUP). False when
        the connection is closed: nothing was sent, nothing will be called."""
        session, writer = self.session, self.writer
        if isinstance(session, ConnectionState) and isinstance(writer, StreamWriterAdapter):
            if writer.is_closed:
                return False
            return self._send_qos1(session, writer, topic, data, done, dup=dup, acked=acked) is not None
        if session is None or self.writer is None:
            return False
        self._spawn(self._publish_amqtt(topic, data, acked, done))
        return True

    async def _publish_amqtt(
        self, topic: str, data: bytes, acked: Callable[[], None], done: Callable[[], None]
    ) -> None:
        try:
            await self.mqtt_publish(topic, data, QOS_1, retain=False)
        except Exception as exc:  # noqa: BLE001 - the connection ended: it is redelivered next time
            log.debug("%s: delivery not acknowledged: %r", self._client_id, exc)
        else:
            acked()
        finally:
            done()

    def _hold(self, acks: bytes) -> None:
        """The PUBACKs of one read: to ``writes``, which lets them wait for the commands' answers."""
        writes = self.writes
        if writes is None:
            self._write(acks)
        else:
            writes.hold(self, acks)

    async def _acknowledge(self, packet_id: int) -> None:
        """A PUBACK: ends a ``publish_now`` delivery, or resolves amqtt's own waiter for it."""
        if not self._quick_acknowledged(packet_id):
            await super().handle_puback(PubackPacket.build(packet_id))

    def _quick_acknowledged(self, packet_id: int) -> bool:
        """End the ``publish_now`` delivery ``packet_id``; False if there is none."""
        session = self.session
        if not isinstance(session, ConnectionState):
            return False
        entry = session.quick_out.pop(packet_id, None)
        if entry is None:
            return False
        if session.on_ack:
            acked = session.on_ack.pop(packet_id, None)
            if acked is not None:
                acked()
        entry[1]()
        return True

    def _sweep(self) -> None:
        """Drop the deliveries unacknowledged for ``PUBACK_TIMEOUT`` (oldest first), as stock did."""
        self._sweeper = None
        session = self.session
        if not isinstance(session, ConnectionState):
            return
        quick = session.quick_out
        loop = asyncio.get_running_loop()
        deadline = loop.time() - PUBACK_TIMEOUT
        while quick:
            packet_id, (sent, done) = next(iter(quick.items()))
            if sent > deadline:
                self._sweeper = loop.call_later(sent - deadline, self._sweep)
                return
            del quick[packet_id]
            session.on_ack.pop(packet_id, None)
            log.warning("%s: no PUBACK for packet %d", session.client_id, packet_id)
            done()

    def _drop_deliveries(self) -> None:
        """The connection ended: every delivery still waiting for its PUBACK is over."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        session = self.session
        if isinstance(session, ConnectionState):
            waiting = list(session.quick_out.values())
            session.quick_out.clear()
            session.on_ack.clear()
            for _sent, done in waiting:
                done()


MqchatHandler.NAMES = (  # every name a connection's handler sets (see broker/mqtt/lean.py)
    *LeanHandler.NAMES,
    *("gate", "requests", "writes", "max_packet", "held", "due", "_requests_lock"),
    *("_tasks", "_watchdog", "keepalives", "_reading_since", "_sweeper", "_closing"),
)
share_names(MqchatHandler, MqchatHandler.NAMES)
