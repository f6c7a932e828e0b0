"""Reading a client's CONNECT into a ConnectionState: amqtt 0.12.1's ``init_from_connect`` checks, unchanged.

Stock ``BrokerProtocolHandler.init_from_connect`` builds an ``amqtt.session.Session`` by name, with a
state machine and queues per connection (see broker/mqtt/connection_state.py); this is the same sequence of
checks and refusals, building a ``ConnectionState`` instead. ``tests/unit/test_amqtt_pin.py`` pins the
stock method's source so that a change upstream is noticed here.

Over TCP (and TLS) the CONNECT is read whole: the connection (broker/mqtt/protocol.py) frames what
the socket gives (``broker/mqtt/codec.py``), instead of amqtt's awaited read per byte of the fixed
header and per field. A client may send more right behind its CONNECT (a SUBSCRIBE, a PUBLISH): the
connection keeps those bytes for the handler, which handles them first. Over WebSocket, or when a
plugin wants every packet received, the CONNECT is read through amqtt's reader adapter, a packet at
a time.

Either way the CONNECT's protocol level chooses the connection's protocol: 4 is decoded by amqtt as
before, 5 by ``broker/mqtt/mqtt5.py`` (with a CONNACK reason code for what it refuses).
"""

from __future__ import annotations

from typing import Any

from amqtt.adapters import BufferReader
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.events import MQTTEvents
from amqtt.mqtt.connack import (
    BAD_USERNAME_PASSWORD,
    IDENTIFIER_REJECTED,
    UNACCEPTABLE_PROTOCOL_VERSION,
    ConnackPacket,
)
from amqtt.mqtt.connect import ConnectPacket
from amqtt.mqtt.packet import CONNECT, MQTTFixedHeader
from amqtt.utils import format_client_message

from broker.mqtt.codec import Frame, PacketTooLarge
from broker.mqtt.connection_state import ConnectionState, ConnectionState5
from broker.mqtt.mqtt5 import Malformed, Prop, Reason, decode_connect, encode_connack, protocol_level
from broker.mqtt.protocol import MqttProtocol

__all__ = ["read_connect", "read_frame"]

_MQTT_311 = 4
_MQTT_5 = 5


async def read_frame(reader: Any, limit: int | None = None) -> Frame | None:
    """The next whole packet from an amqtt reader adapter (WebSocket), None at EOF;
    ``PacketTooLarge`` if it says it is longer than ``limit`` (before it is read)."""
    head = await reader.read(1)
    if not head:
        return None
    length = shift = 0
    while True:
        byte = await reader.read(1)
        if not byte:
            return None
        length |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            break
        shift += 7
        if shift >= 28:
            raise MQTTError(f"invalid remaining length in a packet of type {head[0] >> 4}")
    if limit is not None and length > limit:
        raise PacketTooLarge(f"a packet of {length} bytes, over the limit of {limit}")
    body = await reader.read(length) if length else b""
    if len(body) < length:
        return None
    return Frame(head[0], bytes(body))


async def read_connect(reader: Any, writer: Any, plugins_manager: Any) -> ConnectionState:
    """The session a valid CONNECT asks for (what came after the CONNECT stays unread: over TCP the
    connection keeps it for the handler); MQTTError (after a CONNACK refusal where due) if the
    CONNECT is not valid."""
    connection = _reads_whole(reader, plugins_manager)
    if connection is None:
        frame = await read_frame(reader)
        if frame is None:
            raise NoDataError("No more data")  # as amqtt's reader, at EOF before a whole CONNECT
    else:
        frame = await connection.first_frame()
    if frame.first >> 4 != CONNECT:
        raise AMQTTError(f"Invalid fixed packet type {frame.first >> 4} for ConnectPacket init")
    if protocol_level(frame.body) == _MQTT_5:
        return await _connect_v5(frame.body, writer)
    header = MQTTFixedHeader(CONNECT, frame.first & 0x0F, len(frame.body))
    connect = await ConnectPacket.from_stream(BufferReader(frame.body), fixed_header=header)
    await plugins_manager.fire_event(MQTTEvents.PACKET_RECEIVED, packet=connect)
    if connect.variable_header is None:
        raise MQTTError("CONNECT packet: variable header not initialized.")
    if connect.payload is None:
        raise MQTTError("CONNECT packet: payload not initialized.")
    if connect.payload.client_id is None:
        raise MQTTError("[[MQTT-3.1.3-3]] : Client identifier must be present")
    if connect.variable_header.will_flag and (
        connect.payload.will_topic is None or connect.payload.will_message is None
    ):
        raise MQTTError("Will flag set, but will topic/message not present in payload")
    if connect.variable_header.reserved_flag:
        raise MQTTError("[MQTT-3.1.2-3] CONNECT reserved flag must be set to 0")
    if connect.proto_name != "MQTT":
        raise MQTTError(f'[MQTT-3.1.2-1] Incorrect protocol name: "{connect.proto_name}"')

    remote_address = remote_port = None
    remote_info = writer.get_peer_info()
    if remote_info is not None:
        remote_address, remote_port = remote_info
        await _refuse_if_invalid(connect, writer, plugins_manager, remote_address, remote_port)

    session = ConnectionState()
    session.client_id = connect.client_id
    session.clean_session = connect.clean_session_flag
    session.will_flag = connect.will_flag
    session.will_retain = connect.will_retain_flag
    session.will_qos = connect.will_qos
    session.will_topic = connect.will_topic
    session.will_message = connect.will_message
    session.username = connect.username
    session.password = connect.password
    session.remote_address = remote_address
    session.remote_port = remote_port
    session.ssl_object = writer.get_ssl_info()
    session.keep_alive = max(connect.keep_alive, 0)
    session.clean_start = bool(connect.clean_session_flag)
    session.session_expiry = 0 if connect.clean_session_flag else None
    return session


async def _connect_v5(body: bytes, writer: Any) -> ConnectionState:
    """The session an MQTT 5 CONNECT asks for; MQTTError after a CONNACK refusal if it is not valid."""
    try:
        connect = decode_connect(body)
        if connect.props.get(Prop.AUTH_METHOD) is not None:  # mqchat has no enhanced authentication
            raise Malformed("an authentication method mqchat does not support", Reason.BAD_AUTH_METHOD)
    except Malformed as exc:
        writer.write(encode_connack(False, exc.reason))
        await writer.drain()
        await writer.close()
        raise
    props = connect.props
    session = ConnectionState5()
    session.protocol_level = _MQTT_5
    session.client_id = connect.client_id
    session.clean_session = session.clean_start = connect.clean_start
    session.will_flag = False  # a will goes through the gate, not amqtt (see ``will5``)
    session.will5 = connect.will
    session.username = connect.username
    session.password = connect.password
    session.session_expiry = props.get(Prop.SESSION_EXPIRY, 0)
    session.receive_maximum = props.get(Prop.RECEIVE_MAXIMUM, 65535)
    session.max_packet_size = props.get(Prop.MAXIMUM_PACKET_SIZE)
    session.topic_alias_maximum = props.get(Prop.TOPIC_ALIAS_MAXIMUM, 0)
    remote_info = writer.get_peer_info()
    if remote_info is not None:
        session.remote_address, session.remote_port = remote_info
    session.ssl_object = writer.get_ssl_info()
    session.keep_alive = connect.keep_alive
    return session


def _reads_whole(reader: Any, plugins_manager: Any) -> MqttProtocol | None:
    """The connection under ``reader`` (TCP, TLS), unless a plugin wants each packet received (as
    amqtt reads it)."""
    if MQTTEvents.PACKET_RECEIVED in plugins_manager._event_plugin_callbacks:
        return None
    return reader if isinstance(reader, MqttProtocol) else None


async def _refuse_if_invalid(
    connect: ConnectPacket, writer: Any, plugins_manager: Any, address: Any, port: Any
) -> None:
    where = format_client_message(address=address, port=port)
    connack = error = None
    if connect.proto_level != _MQTT_311:
        error = f"Invalid protocol from {where}: {connect.proto_level}"
        connack = ConnackPacket.build(0, UNACCEPTABLE_PROTOCOL_VERSION)  # [MQTT-3.2.2-4]
    elif not connect.username_flag and connect.password_flag:
        connack = ConnackPacket.build(0, BAD_USERNAME_PASSWORD)  # [MQTT-3.1.2-22]
    elif connect.username_flag and connect.username is None:
        error = f"Invalid username from {where}"
        connack = ConnackPacket.build(0, BAD_USERNAME_PASSWORD)
    elif connect.password_flag and connect.password is None:
        error = f"Invalid password from {where}"
        connack = ConnackPacket.build(0, BAD_USERNAME_PASSWORD)
    elif connect.clean_session_flag is False and connect.payload.client_id_is_random:
        error = f"[MQTT-3.1.3-8] [MQTT-3.1.3-9] {where}: No client Id provided (cleansession=0)"
        connack = ConnackPacket.build(0, IDENTIFIER_REJECTED)
    if connack is not None:
        await plugins_manager.fire_event(MQTTEvents.PACKET_SENT, packet=connack)
        await connack.to_stream(writer)
        await writer.close()
        raise MQTTError(error) from None
