"""The broker side of one MQTT 5 connection: ``MqchatHandler`` with MQTT 5's packets and limits.

The CONNECT's protocol level chooses the handler (``open_connection``); a 3.1.1 connection keeps
``MqchatHandler`` and its hot path untouched. What MQTT 5 adds here:

- **Every packet through ``broker/mqtt/mqtt5.py``**, on every listener: TCP and TLS are read by
  callbacks as 3.1.1 (``FrameFeed``, broker/mqtt/feed.py: no reading task per connection, PUBLISH
  and PUBACK handled as the bytes arrive), WebSocket a packet at a time through amqtt's reader
  (and written by ``Mqtt5WebSocketHandler``, one WebSocket message a loop pass);
  nothing of amqtt's 3.1.1 encoding reaches an MQTT 5 client (CONNACK, SUBACK, UNSUBACK, retained
  messages included).
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
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

from amqtt.adapters import StreamWriterAdapter
from amqtt.errors import MQTTError
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.session import Session

from broker.mqtt.codec import PUBACK, PUBLISH, Frame, PacketTooLarge, encode_puback, mark_dup
from broker.mqtt.connect import read_connect, read_frame
from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.handler import MqchatHandler
from broker.mqtt.lean import Lazy, share_names
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
from broker.mqtt.protocol import MqttProtocol

__all__ = [
    "RECEIVE_MAXIMUM",
    "TOPIC_ALIAS_MAXIMUM",
    "Mqtt5Handler",
    "Mqtt5WebSocketHandler",
    "open_connection",
]

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 1000
"""QoS 1 PUBLISHes a client may have unacknowledged (announced; PUBACKs follow within a read)."""
TOPIC_ALIAS_MAXIMUM = 16
"""Topic aliases a client may set towards the server (it publishes to one outbox: a few suffice)."""

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
    session = await read_connect(reader, writer, plugins_manager)
    if session.protocol_level != 5:
        return MqchatHandler(plugins_manager), session
    # TCP's writer first: an ABC's isinstance goes through ``ABCMeta.__instancecheck__``
    stream = type(writer) is MqttProtocol or isinstance(writer, StreamWriterAdapter)
    return (Mqtt5Handler if stream else Mqtt5WebSocketHandler)(plugins_manager), session


class Mqtt5Handler(MqchatHandler):
    keep_alive_announced = 0
    """The keep-alive told the client in CONNACK (its own; the broker enforces it with grace)."""
    _closed_as: int | None = None
    """The reason of the DISCONNECT that ended the connection (the client's or the server's)."""
    _no_will = False
    """The connection ends without its will: a DISCONNECT from the client (0x04 sent it already),
    a take-over or a sign-out."""
    # made on first use (broker/mqtt/lean.py): an idle connection holds none of them
    _aliases_in: Lazy[dict[int, str]] = Lazy(dict)
    _aliases_out: Lazy[dict[str, int]] = Lazy(dict)
    _waiting: deque[_Waiting] | None = None
    """The deliveries waiting for the client's Receive Maximum (None: none wait)."""

    # ------------------------------------------------------------------ writing
    def _out(self, data: bytes) -> None:
        """Write ``data``: TCP and TLS, through ``writes`` (``Mqtt5WebSocketHandler``: a WebSocket's)."""
        writer = self.writer
        if writer is None:
            return
        writes = self.writes
        if writes is None:
            writer.write(data)
        else:
            writes.send(self, data)

    async def _flush_now(self) -> None:
        """Write what is held and wait (a little) for it to leave: a CONNACK, a DISCONNECT before the
        connection closes. A client that reads nothing cannot hold up a take-over for long."""
        sending = self._sending()
        if sending is None:
            return
        try:
            await asyncio.wait_for(sending, _FLUSH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the peer is gone already, or reads nothing
            log.debug("%s: write not completed: %r", self._client_id, exc)

    def _sending(self) -> Awaitable[Any] | None:
        """Write what is held; what to await for it to have left (None: nothing to wait for)."""
        writer = self.writer
        if writer is None:
            return None
        if self.writes is not None:
            self.writes.flush(self)
        return cast("Awaitable[Any]", writer.drain())

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
    async def _read_packets(self, session: Session | None) -> None:
        """WebSocket (or a plugin that wants packets): a packet at a time through amqtt's reader;
        TCP and TLS are read by callbacks, as 3.1.1 (broker/mqtt/feed.py). A packet that breaks
        MQTT 5 ends the connection through ``_unreadable``."""
        loop = asyncio.get_running_loop()
        limit = self.max_packet
        while self.reader is not None and session is not None:
            self._reading_since = loop.time()
            try:
                frame = await read_frame(self.reader, limit)
            except MQTTError:
                raise  # PacketTooLarge: 0x95; a remaining length that cannot be read: 0x81
            except Exception as exc:  # the WebSocket failed mid-packet: closed as malformed
                raise Malformed(str(exc)) from exc
            self._reading_since = None
            if frame is None:
                return
            if frame.first >> 4 == PUBLISH:
                ack = self._on_publish(frame, session)
                if ack:
                    self._out(ack)
                continue
            if not await self._on_frame(frame, session):
                return

    async def _unreadable(self, exc: MQTTError) -> None:
        """Close with the reason code of what broke MQTT 5 (the will goes, as on a lost connection)."""
        if isinstance(exc, Malformed):
            reason = exc.reason
        else:
            reason = Reason.PACKET_TOO_LARGE if isinstance(exc, PacketTooLarge) else Reason.MALFORMED
        log.info("%s: closing with reason 0x%02x: %s", self._client_id, reason, exc)
        await self.close_with(reason)

    def _on_publish(self, frame: Frame, session: Session) -> bytes:
        """A client PUBLISH to the gate; its PUBACK with the gate's reason code (b"" for QoS 0).
        ``Malformed`` if it breaks MQTT 5 (QoS 2 is above the CONNACK's Maximum QoS)."""
        topic, qos, _retain, packet_id, data, alias, props = decode_publish(frame.first, frame.body)
        if qos > QOS_1:
            raise Malformed("QoS 2 is above the Maximum QoS of the CONNACK", Reason.QOS_NOT_SUPPORTED)
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
        code = self._ingest5(session, topic, data, props)
        if packet_id is None:
            return b""
        return encode_puback(packet_id) if code == 0 else encode_ack(PUBACK, packet_id, code)

    def _on_puback(self, body: bytes) -> bool:
        """Every MQTT 5 PUBACK is handled at once (amqtt has no flow of its own here); one for no
        delivery in flight is ignored. ``Malformed`` if it cannot be read."""
        if len(body) == 2:
            packet_id = (body[0] << 8) | body[1]
        else:
            packet_id, _reason = decode_puback(body)
        self._quick_acknowledged(packet_id)
        return True

    def _ingest5(self, session: Session, topic: str, data: bytes, props: PublishProps | None) -> int:
        gate = self.gate
        if gate is None:
            return 0
        try:
            return int(gate.accept(session.username, topic, data, session.client_id, props) or 0)
        except Exception:
            log.exception("ingest failed on a PUBLISH of %s", session.client_id)
            return Reason.UNSPECIFIED

    async def _on_frame(self, frame: Frame, session: Session) -> bool:
        """One packet other than a QoS 0/1 PUBLISH; False ends the connection, and so does
        ``Malformed`` (with its reason code, through ``_unreadable``)."""
        kind, body = frame.first >> 4, frame.body
        if kind == PUBLISH:  # QoS 2 or 3: refused
            self._on_publish(frame, session)
        elif kind == PUBACK:
            self._on_puback(body)
        elif kind == _PINGREQ:
            if body or frame.first & 0x0F:
                raise Malformed("a PINGREQ with content")
            self._out(_PINGRESP)
        elif kind == _SUBSCRIBE:
            self._subscribe_now(frame, session)
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
        return True

    def _subscribe_now(self, frame: Frame, session: Session) -> bool:
        """A SUBSCRIBE decoded here and handled by a task of its own; ``Malformed`` ends the
        connection (with its reason code, through ``_unreadable``)."""
        packet_id, filters, props = decode_subscribe(frame.first, frame.body)
        if Prop.SUBSCRIPTION_ID in props.values:  # the CONNACK said: not available
            raise Malformed("a subscription identifier", Reason.PROTOCOL_ERROR)
        topics = [(topic_filter, min(options & 0x03, QOS_1)) for topic_filter, options in filters]
        self._spawn(self._subscribe(session, packet_id, topics))
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
        waiting, self._waiting = self._waiting, None
        for _topic, _data, done, _props, _retain, _since, _tracking in waiting or ():
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
        self._within_window(session, topic, data, done, props, retain)
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
        self._within_window(session, topic, data, done, props, False, (dup, acked))
        return True

    def _within_window(
        self,
        session: ConnectionState,
        topic: str,
        data: bytes,
        done: Callable[[], None],
        props: PublishProps | None,
        retain: bool,
        tracking: _Tracking | None = None,
    ) -> None:
        """A QoS 1 delivery sent now, or after those waiting when the client's Receive Maximum is
        reached."""
        waiting = self._waiting
        if len(session.quick_out) < session.receive_maximum and not waiting:
            self._start(session, topic, data, done, props, retain, tracking)
            return
        if waiting is None:
            waiting = self._waiting = deque()
        waiting.append((topic, data, done, props, retain, asyncio.get_running_loop().time(), tracking))

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
        self._track(session, packet_id, done, None if tracking is None else tracking[1])

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
        if dup:
            packet = mark_dup(packet)
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
        acknowledged = MqchatHandler._quick_acknowledged(self, packet_id)  # per PUBACK: not ``super()``
        if self._waiting:
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
        if not waiting:
            self._waiting = None  # an idle connection holds no empty deque


class Mqtt5WebSocketHandler(Mqtt5Handler):
    """An MQTT 5 connection over WebSocket: what is written goes out one WebSocket message a loop
    pass, from one task. A class of its own, so that TCP's writes (every delivery, every read's
    PUBACKs) ask nothing about the transport."""

    _drainer: asyncio.Task[None] | None = None
    _ws_out: Lazy[bytearray] = Lazy(bytearray)
    """What ``_drain`` sends next."""

    def _out(self, data: bytes) -> None:
        """Write ``data`` on the next drain."""
        if self.writer is None:
            return
        self._ws_out += data
        if self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())

    def _hold(self, acks: bytes) -> None:
        self._out(acks)

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

    def _sending(self) -> Awaitable[Any] | None:
        if self.writer is None:
            return None
        if self._drainer is None and self._ws_out:
            self._drainer = asyncio.ensure_future(self._drain())
        if self._drainer is None:
            return None
        return asyncio.shield(self._drainer)


_NAMES5 = (*MqchatHandler.NAMES, "keep_alive_announced", "_waiting", "_aliases_out", "_aliases_in")
# every name a connection's handler sets (see broker/mqtt/lean.py), 29 at most: ``_closed_as`` and
# ``_no_will`` are left out, set only as the connection ends
share_names(Mqtt5Handler, _NAMES5)
share_names(Mqtt5WebSocketHandler, (*_NAMES5, "_ws_out", "_drainer"))
