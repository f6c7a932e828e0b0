"""The broker side of one MQTT 5 connection: ``MqchatHandler`` with MQTT 5's packets and limits.

The CONNECT's protocol level chooses the handler (``open_connection``); a 3.1.1 connection keeps
``MqchatHandler`` and its hot path untouched. What MQTT 5 adds here:

- **Every packet through ``broker/mqtt/mqtt5.py``**, on every listener: TCP and TLS read whatever
  the socket holds, WebSocket a packet at a time through amqtt's reader; nothing of amqtt's 3.1.1
  encoding reaches an MQTT 5 client (CONNACK, SUBACK, UNSUBACK, retained messages included).
- **Reason codes**: a PUBLISH's PUBACK carries the gate's verdict (0x87, 0x97, 0x99); a refused
  subscription is 0x87 in its SUBACK; bad input ends the connection with a DISCONNECT that says
  why (0x81 malformed, 0x82 protocol error, 0x94 topic alias, 0x95 too large, 0x9B QoS 2).
- **The client's limits**: its Receive Maximum is the window of QoS 1 deliveries in flight (the
  rest wait in order; the broker's ``max_inflight`` bounds them), its Maximum Packet Size drops a
  larger delivery (for it alone, logged), its Topic Alias Maximum lets a topic be sent once and
  then as an alias (an inbox is one topic: every delivery after the first saves its name).
- **Inbound topic aliases** up to ``TOPIC_ALIAS_MAXIMUM``.
- **The will** is the client's own PUBLISH, given to the gate like any other (so the ACL and ingest
  judge it), when the client ends with DISCONNECT 0x04, or its connection is lost or closed for
  silence or bad input; not after another DISCONNECT of the client, a take-over or a sign-out.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from amqtt.adapters import StreamWriterAdapter
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.session import Session

from broker.mqtt.codec import PUBACK, PUBLISH, Frame, PacketTooLarge, read_frames
from broker.mqtt.connect import read_connect, read_frame
from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.handler import PUBACK_TIMEOUT, MqchatHandler
from broker.mqtt.mqtt5 import (
    Malformed,
    Prop,
    Reason,
    decode_disconnect,
    decode_puback,
    decode_publish,
    decode_subscribe,
    decode_unsubscribe,
    encode_ack,
    encode_connack,
    encode_disconnect,
    encode_publish,
    encode_suback,
    encode_unsuback,
)
from broker.mqtt.properties import PublishProps

__all__ = ["RECEIVE_MAXIMUM", "TOPIC_ALIAS_MAXIMUM", "Mqtt5Handler", "open_connection"]

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 1000
"""QoS 1 PUBLISHes a client may have unacknowledged (announced; PUBACKs follow within a read)."""
TOPIC_ALIAS_MAXIMUM = 16
"""Topic aliases a client may set towards the server (it publishes to one outbox: a few suffice)."""

_READ_SIZE = 64 * 1024
_FLUSH_TIMEOUT = 1.0
"""Seconds a CONNACK or DISCONNECT may take to leave before the connection goes on (or closes)."""
_PINGREQ, _PINGRESP = 12, b"\xd0\x00"
_SUBSCRIBE, _UNSUBSCRIBE, _DISCONNECT = 8, 10, 14
_REFUSED = 0x80
_Tracking = tuple[bool, Callable[[], None]]
"""A persistent session's delivery (``publish_tracked``): its DUP flag, and what its PUBACK calls."""
_Waiting = tuple[str, bytes, Callable[[], None], PublishProps | None, bool, float, "_Tracking | None"]
"""A delivery waiting for the client's Receive Maximum: topic, data, done, props, retain, since,
and how a persistent session tracks it."""


async def open_connection(
    reader: Any, writer: Any, plugins_manager: Any
) -> tuple[MqchatHandler, ConnectionState]:
    """Read the CONNECT and make the handler of its protocol (``Mqtt5Handler`` for MQTT 5)."""
    session, read_ahead = await read_connect(reader, writer, plugins_manager)
    handler = (Mqtt5Handler if session.protocol_level == 5 else MqchatHandler)(plugins_manager)
    handler._read_ahead = read_ahead
    return handler, session


class Mqtt5Handler(MqchatHandler):
    keep_alive_announced = 0
    """The keep-alive told the client in CONNACK (its own; the broker enforces it with grace)."""
    _closed_as: int | None = None
    """The reason of the DISCONNECT that ended the connection (the client's or the server's)."""
    _no_will = False
    """The connection ends without its will: a DISCONNECT from the client (0x04 sent it already),
    a take-over or a sign-out."""
    _drainer: asyncio.Task[None] | None = None

    def __init__(self, plugins_manager: Any, session: Session | None = None, loop: Any = None) -> None:
        super().__init__(plugins_manager, session, loop)
        self._aliases_in: dict[int, str] = {}
        self._aliases_out: dict[str, int] = {}
        self._waiting: deque[_Waiting] = deque()
        self._ws_out = bytearray()
        """WebSocket: what ``_drain`` sends next."""

    # ------------------------------------------------------------------ writing
    @property
    def _stream(self) -> bool:
        return isinstance(self.writer, StreamWriterAdapter)

    def _out(self, data: bytes) -> None:
        """Write ``data`` (through ``writes`` over TCP; a WebSocket sends on its next drain)."""
        writer = self.writer
        if writer is None:
            return
        if self._stream:
            if self.writes is None:
                writer.write(data)
            else:
                self.writes.send(self, data)
            return
        self._ws_out += data
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        """Send what ``_out`` gathered, one WebSocket message a pass, from this one task: amqtt's
        WebSocket writer drops what is written while its ``drain`` awaits the send."""
        try:
            await asyncio.sleep(0)  # what else this pass writes goes in the same message
            while self._ws_out and self.writer is not None:
                data, self._ws_out = bytes(self._ws_out), bytearray()
                self.writer.write(data)
                await self.writer.drain()
        except Exception as exc:  # noqa: BLE001 - a closed WebSocket: the reader ends the connection
            log.debug("%s: write failed: %r", self._client_id, exc)
        finally:
            self._drainer = None

    def _hold(self, acks: bytes) -> None:
        if self._stream:
            super()._hold(acks)
        else:
            self._out(acks)

    async def _flush_now(self) -> None:
        """Write what is held and wait (a little) for it to leave: a CONNACK, a DISCONNECT before the
        connection closes. A client that reads nothing cannot hold up a take-over for long."""
        writer = self.writer
        if writer is None:
            return
        if self._stream:
            if self.writes is not None:
                self.writes.flush(self)
            sending: Any = writer.drain()
        else:
            if self._drainer is None and self._ws_out:
                self._drainer = asyncio.ensure_future(self._drain())
            if self._drainer is None:
                return
            sending = asyncio.shield(self._drainer)
        try:
            await asyncio.wait_for(sending, _FLUSH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the peer is gone already, or reads nothing
            log.debug("%s: write not completed: %r", self._client_id, exc)

    # ------------------------------------------------------------------ what the broker says
    async def send_connack(self, reason: int, session_present: bool) -> None:
        session = self.session
        values: dict[int, Any] = {}
        if reason == 0 and isinstance(session, ConnectionState):
            values = {
                Prop.SERVER_KEEP_ALIVE: self.keep_alive_announced,
                Prop.RECEIVE_MAXIMUM: RECEIVE_MAXIMUM,
                Prop.TOPIC_ALIAS_MAXIMUM: TOPIC_ALIAS_MAXIMUM,
                Prop.MAXIMUM_PACKET_SIZE: self.max_packet,
                Prop.MAXIMUM_QOS: 1,
                Prop.RETAIN_AVAILABLE: 1,
                Prop.WILDCARD_AVAILABLE: 1,
                Prop.SUBSCRIPTION_IDS_AVAILABLE: 0,
                Prop.SHARED_AVAILABLE: 0,
                Prop.ASSIGNED_CLIENT_ID: session.client_id if session.assigned_client_id else None,
            }
        self._out(encode_connack(session_present, reason, values))
        await self._flush_now()

    async def mqtt_acknowledge_subscription(self, packet_id: int, return_codes: list[int]) -> None:
        codes = [Reason.NOT_AUTHORIZED if code == _REFUSED else min(code, QOS_1) for code in return_codes]
        self._out(encode_suback(packet_id, codes))

    async def acknowledge_unsubscribe(self, packet_id: int, codes: list[int]) -> None:
        self._out(encode_unsuback(packet_id, codes))

    async def close_with(self, reason: int) -> None:
        if reason in (Reason.SESSION_TAKEN_OVER, Reason.ADMINISTRATIVE_ACTION):
            self._no_will = True  # the user is here on another connection, or signed this one out
        if self._closed_as is None:
            self._closed_as = reason
            self._out(encode_disconnect(reason))
            await self._flush_now()
        await self.handle_connection_closed()

    def handle_read_timeout(self) -> None:
        log.info("%s silent past its keep-alive: closing", self._client_id)
        self._closing = asyncio.ensure_future(self.close_with(Reason.KEEP_ALIVE_TIMEOUT))

    async def mqtt_publish(
        self,
        topic: str,
        data: bytes | bytearray | None,
        qos: int | None,
        retain: bool,
        ack_timeout: int | None = None,
    ) -> Any:
        """A retained message on subscribe (amqtt's path for it), as an MQTT 5 PUBLISH."""
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def done() -> None:
            if not acknowledged.done():
                acknowledged.set_result(None)

        if self.publish_now(topic, bytes(data or b""), done, min(qos or 0, QOS_1), retain=retain):
            await acknowledged
        return None

    # ------------------------------------------------------------------ reading
    def _feed_frames(self) -> bool:
        """MQTT 5 keeps the reading task: its packets have properties the 3.1.1 ``FrameFeed`` does
        not read (it would take an MQTT 5 PUBLISH's properties for its payload)."""
        return False

    async def _read_frames(self, stream: asyncio.StreamReader, session: Session) -> None:
        """TCP and TLS: every whole packet of each read, in order."""
        loop = asyncio.get_running_loop()
        pending = bytearray(self._read_ahead)
        self._read_ahead = b""
        while self.reader is not None:
            try:
                frames, used = read_frames(pending, limit=self.max_packet)
            except PacketTooLarge as exc:
                await self._refuse(session, Reason.PACKET_TOO_LARGE, str(exc))
                return
            except Malformed as exc:
                await self._refuse(session, exc.reason, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - the remaining length cannot be read
                await self._refuse(session, Reason.MALFORMED, str(exc))
                return
            del pending[:used]
            if frames:
                self._reading_since = None
            acks = b""
            for frame in frames:
                if frame.first >> 4 == PUBLISH:
                    try:
                        acks += self._on_publish5(frame, session)
                    except Malformed as exc:
                        self._hold(acks)
                        await self._refuse(session, exc.reason, str(exc))
                        return
                    continue
                if acks:
                    self._hold(acks)
                    acks = b""
                if self.writes is not None:
                    self.writes.flush(self)
                if not await self._on_frame5(frame, session):
                    return
            if acks:
                self._hold(acks)
            writer = self._tcp_writer()
            if writer is None:
                return
            await writer.drain()
            if not pending or self._reading_since is None:
                self._reading_since = loop.time()
            chunk = await stream.read(_READ_SIZE)
            if not chunk:
                return
            pending += chunk

    async def _read_packets(self, session: Session | None) -> None:
        """WebSocket (or a plugin that wants packets): a packet at a time through amqtt's reader."""
        loop = asyncio.get_running_loop()
        limit = self.max_packet
        while self.reader is not None and session is not None:
            self._reading_since = loop.time()
            try:
                frame = await read_frame(self.reader, limit)
            except PacketTooLarge as exc:
                await self._refuse(session, Reason.PACKET_TOO_LARGE, str(exc))
                return
            except Exception as exc:  # noqa: BLE001 - the remaining length cannot be read
                await self._refuse(session, Reason.MALFORMED, str(exc))
                return
            self._reading_since = None
            if frame is None:
                return
            if frame.first >> 4 == PUBLISH:
                try:
                    ack = self._on_publish5(frame, session)
                except Malformed as exc:
                    await self._refuse(session, exc.reason, str(exc))
                    return
                if ack:
                    self._out(ack)
                continue
            if not await self._on_frame5(frame, session):
                return

    async def _refuse(self, session: Session, reason: int, why: str) -> None:
        log.info("%s: closing with reason 0x%02x: %s", session.client_id, reason, why)
        await self.close_with(reason)

    def _on_publish5(self, frame: Frame, session: Session) -> bytes:
        """A client PUBLISH to the gate; its PUBACK with the gate's reason code (b"" for QoS 0)."""
        publish = decode_publish(frame.first, frame.body)
        if publish.qos > QOS_1:
            raise Malformed("QoS 2 is above the Maximum QoS of the CONNACK", Reason.QOS_NOT_SUPPORTED)
        topic, alias = publish.topic, publish.alias
        if alias is not None:
            if not 0 < alias <= TOPIC_ALIAS_MAXIMUM:
                raise Malformed(f"topic alias {alias}", Reason.TOPIC_ALIAS_INVALID)
            if topic:
                self._aliases_in[alias] = topic
            else:
                known = self._aliases_in.get(alias)
                if known is None:
                    raise Malformed(f"topic alias {alias} was never set", Reason.PROTOCOL_ERROR)
                topic = known
        elif not topic:
            raise Malformed("a PUBLISH without a topic or alias", Reason.PROTOCOL_ERROR)
        code = self._ingest5(session, topic, publish.data, publish.props)
        return b"" if publish.packet_id is None else encode_ack(PUBACK, publish.packet_id, code)

    def _ingest5(self, session: Session, topic: str, data: bytes, props: PublishProps | None) -> int:
        gate = self.gate
        if gate is None:
            return 0
        try:
            return int(gate.accept(session.username, topic, data, session.client_id, props) or 0)
        except Exception:
            log.exception("ingest failed on a PUBLISH of %s", session.client_id)
            return Reason.UNSPECIFIED

    async def _on_frame5(self, frame: Frame, session: Session) -> bool:
        """One packet other than a PUBLISH; False ends the connection."""
        kind, body = frame.first >> 4, frame.body
        try:
            if kind == PUBACK:
                packet_id, _reason = decode_puback(body)
                self._quick_acknowledged(packet_id)
            elif kind == _PINGREQ:
                if body or frame.first & 0x0F:
                    raise Malformed("a PINGREQ with content")
                self._out(_PINGRESP)
            elif kind == _SUBSCRIBE:
                packet_id, filters, props = decode_subscribe(frame.first, body)
                if Prop.SUBSCRIPTION_ID in props.values:  # the CONNACK said: not available
                    raise Malformed("a subscription identifier", Reason.PROTOCOL_ERROR)
                topics = [(topic_filter, min(options & 0x03, QOS_1)) for topic_filter, options in filters]
                self._spawn(self._subscribe(session, packet_id, topics))
            elif kind == _UNSUBSCRIBE:
                packet_id, topic_filters = decode_unsubscribe(frame.first, body)
                self._spawn(self._unsubscribe(session, packet_id, topic_filters))
            elif kind == _DISCONNECT:
                reason, props = decode_disconnect(body)
                self._closed_as = reason
                self._no_will = True
                expiry = props.get(Prop.SESSION_EXPIRY)
                if expiry is not None and isinstance(session, ConnectionState):
                    if not session.session_expiry and expiry:  # [MQTT-3.14.2-2]
                        raise Malformed("a session expiry set at DISCONNECT after 0", Reason.PROTOCOL_ERROR)
                    session.session_expiry = expiry
                if reason == Reason.DISCONNECT_WITH_WILL:
                    self._send_will(session)
                return False
            elif kind == 0:
                raise Malformed("reserved packet type 0")
            else:  # CONNECT again, AUTH without an authentication method, QoS 2 acks, server packets
                raise Malformed(f"a packet of type {kind} here", Reason.PROTOCOL_ERROR)
        except Malformed as exc:
            await self._refuse(session, exc.reason, str(exc))
            return False
        return True

    async def _subscribe(self, session: Session, packet_id: int, topics: list[tuple[str, int]]) -> None:
        async with self._requests_lock:
            if self.requests is not None:
                await self.requests.on_subscribe(session, self, packet_id, topics)

    async def _unsubscribe(self, session: Session, packet_id: int, topic_filters: list[str]) -> None:
        async with self._requests_lock:
            if self.requests is not None:
                await self.requests.on_unsubscribe(session, self, packet_id, topic_filters)

    # ------------------------------------------------------------------ the end
    def _ended(self) -> None:
        session = self.session
        if not self._no_will and session is not None:  # lost, timed out or closed for bad input
            self._send_will(session)
        super()._ended()
        waiting, self._waiting = self._waiting, deque()
        for _topic, _data, done, _props, _retain, _since, _tracking in waiting:
            done()

    def _send_will(self, session: Session) -> None:
        """The will, as the client's own PUBLISH to the gate (its ACL and checks apply), once."""
        will = session.will5 if isinstance(session, ConnectionState) else None
        if will is None:
            return
        assert isinstance(session, ConnectionState)
        session.will5 = None
        self._ingest5(session, will.topic, will.message, will.props)

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
        """As ``MqchatHandler.publish_now``, on any listener, within the client's limits: past its
        Receive Maximum a QoS 1 delivery waits for a PUBACK (in order), and one larger than its
        Maximum Packet Size is dropped."""
        session = self.session
        if not isinstance(session, ConnectionState) or self.writer is None or self._closed_as is not None:
            return False
        if qos == QOS_0:
            self._send(session, topic, data, None, QOS_0, props, retain)
            done()
            return True
        if len(session.quick_out) >= session.receive_maximum or self._waiting:
            since = asyncio.get_running_loop().time()
            self._waiting.append((topic, data, done, props, retain, since, None))
            return True
        self._start(session, topic, data, done, props, retain)
        return True

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
        """As ``MqchatHandler.publish_tracked``, on any listener, within the client's Receive
        Maximum and Maximum Packet Size (as ``publish_now``)."""
        session = self.session
        if not isinstance(session, ConnectionState) or self.writer is None or self._closed_as is not None:
            return False
        if len(session.quick_out) >= session.receive_maximum or self._waiting:
            since = asyncio.get_running_loop().time()
            self._waiting.append((topic, data, done, props, False, since, (dup, acked)))
            return True
        self._start(session, topic, data, done, props, False, (dup, acked))
        return True

    def _start(
        self,
        session: ConnectionState,
        topic: str,
        data: bytes,
        done: Callable[[], None],
        props: PublishProps | None,
        retain: bool,
        tracking: _Tracking | None = None,
    ) -> None:
        try:
            packet_id = session.next_packet_id
        except Exception:  # noqa: BLE001 - 65535 in flight (the broker closes such a client first)
            done()
            return
        dup = tracking is not None and tracking[0]
        if not self._send(session, topic, data, packet_id, QOS_1, props, retain, dup=dup):
            done()
            return
        loop = asyncio.get_running_loop()
        session.quick_out[packet_id] = (loop.time(), done)
        if tracking is not None:
            session.on_ack[packet_id] = tracking[1]
        if self._sweeper is None:
            self._sweeper = loop.call_later(PUBACK_TIMEOUT, self._sweep)

    def _send(
        self,
        session: ConnectionState,
        topic: str,
        data: bytes,
        packet_id: int | None,
        qos: int,
        props: PublishProps | None,
        retain: bool,
        *,
        dup: bool = False,
    ) -> bool:
        """Encode and write one PUBLISH (its topic by alias when the client takes aliases); False
        when it is over the client's Maximum Packet Size (not sent). ``dup``: a redelivery."""
        alias = None
        name = topic
        new_alias = False
        if session.topic_alias_maximum:
            alias = self._aliases_out.get(topic)
            if alias is not None:
                name = ""
            elif len(self._aliases_out) < session.topic_alias_maximum:
                alias = len(self._aliases_out) + 1
                new_alias = True
        packet = encode_publish(name, data, packet_id, qos, retain, props, alias)
        if dup:  # [MQTT-3.3.1-1]
            packet = bytes((packet[0] | 0x08,)) + packet[1:]
        limit = session.max_packet_size
        if limit is not None and len(packet) > limit:
            log.warning(
                "%s: a delivery of %d bytes to %s is over its Maximum Packet Size (%d): dropped",
                session.client_id,
                len(packet),
                topic,
                limit,
            )
            return False
        if new_alias:
            self._aliases_out[topic] = alias  # type: ignore[assignment]
        self._out(packet)
        return True

    def _quick_acknowledged(self, packet_id: int) -> bool:
        acknowledged = super()._quick_acknowledged(packet_id)
        self._release()
        return acknowledged

    def _sweep(self) -> None:
        super()._sweep()
        self._release()

    def _release(self) -> None:
        """Send the deliveries waiting for the client's Receive Maximum, while it has room."""
        session = self.session
        waiting = self._waiting
        if not waiting or not isinstance(session, ConnectionState) or self._closed_as is not None:
            return
        now = asyncio.get_running_loop().time()
        while waiting and len(session.quick_out) < session.receive_maximum:
            topic, data, done, props, retain, since, tracking = waiting.popleft()
            if props is not None and props.message_expiry is not None:
                # [MQTT-3.3.2-6]: the time it waited is taken off; expired while waiting: not sent
                left = props.message_expiry - int(now - since)
                if left <= 0:
                    done()
                    continue
                props = replace(props, message_expiry=left)
            self._start(session, topic, data, done, props, retain, tracking)
