"""MQTT 5 packets on bytes: the properties, and the packets a broker reads and writes.

Why not the ``mqtt5`` package (0.8.0, a sans-I/O codec in Rust): it reads one packet from a buffer
and decodes properties well, but a string field that is not valid UTF-8 (a client id, a topic)
makes it *panic* (``pyo3_runtime.PanicException``, a ``BaseException``, "PyObject pointer is
null") instead of raising an error: one bad packet from any client would go through every
``except Exception`` of the broker. So this module is the codec: it only cuts and builds bytes,
every bad input is a ``Malformed`` with the reason code the connection is closed with, and the
framing is ``broker/mqtt/codec.py``'s (the same ``read_frames`` as 3.1.1).

MQTT 5.0 (OASIS standard, 2019), sections 2.2.2 (properties), 3.1 to 3.15 (packets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

from amqtt.errors import MQTTError

from broker.mqtt.codec import encode_publish as encode_plain_publish
from broker.mqtt.codec import remaining_length
from broker.mqtt.properties import PublishProps

__all__ = [
    "WILL",
    "Connect5",
    "Malformed",
    "Prop",
    "Props",
    "Publish5",
    "Reason",
    "Will",
    "decode_connect",
    "decode_disconnect",
    "decode_props",
    "decode_puback",
    "decode_publish",
    "decode_publish_fully",
    "decode_subscribe",
    "decode_unsubscribe",
    "encode_ack",
    "encode_connack",
    "encode_disconnect",
    "encode_props",
    "encode_publish",
    "encode_suback",
    "encode_unsuback",
    "protocol_level",
    "publish_props",
]


class Reason(IntEnum):
    """The reason codes mqchat sends (MQTT 5.0, 2.4)."""

    SUCCESS = 0x00
    DISCONNECT_WITH_WILL = 0x04
    NO_SUBSCRIPTION_EXISTED = 0x11
    UNSPECIFIED = 0x80
    MALFORMED = 0x81
    PROTOCOL_ERROR = 0x82
    UNSUPPORTED_PROTOCOL = 0x84
    CLIENT_ID_NOT_VALID = 0x85
    BAD_CREDENTIALS = 0x86
    NOT_AUTHORIZED = 0x87
    SERVER_BUSY = 0x89
    BAD_AUTH_METHOD = 0x8C
    KEEP_ALIVE_TIMEOUT = 0x8D
    SESSION_TAKEN_OVER = 0x8E
    TOPIC_FILTER_INVALID = 0x8F
    TOPIC_ALIAS_INVALID = 0x94
    PACKET_TOO_LARGE = 0x95
    QUOTA_EXCEEDED = 0x97
    ADMINISTRATIVE_ACTION = 0x98
    PAYLOAD_FORMAT_INVALID = 0x99
    QOS_NOT_SUPPORTED = 0x9B


class Malformed(MQTTError):
    """A packet that breaks MQTT 5: ``reason`` is what the connection is closed with (0x81, 0x82...)."""

    def __init__(self, message: str, reason: int = Reason.MALFORMED) -> None:
        super().__init__(message)
        self.reason = reason


class Prop(IntEnum):
    PAYLOAD_FORMAT = 0x01
    MESSAGE_EXPIRY = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_ID = 0x0B
    SESSION_EXPIRY = 0x11
    ASSIGNED_CLIENT_ID = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTH_METHOD = 0x15
    AUTH_DATA = 0x16
    REQUEST_PROBLEM_INFO = 0x17
    WILL_DELAY = 0x18
    REQUEST_RESPONSE_INFO = 0x19
    RESPONSE_INFO = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_AVAILABLE = 0x28
    SUBSCRIPTION_IDS_AVAILABLE = 0x29
    SHARED_AVAILABLE = 0x2A


WILL = 0
"""The will properties of a CONNECT, as a "packet type" of their own in ``_ALLOWED``."""

_CONNECT, _CONNACK, _PUBLISH, _PUBACK, _PUBREC, _PUBREL, _PUBCOMP = 1, 2, 3, 4, 5, 6, 7
_SUBSCRIBE, _SUBACK, _UNSUBSCRIBE, _UNSUBACK, _DISCONNECT, _AUTH = 8, 9, 10, 11, 14, 15
_ACKS = {_PUBACK, _PUBREC, _PUBREL, _PUBCOMP, _SUBACK, _UNSUBACK}

# property -> (its wire type, the packets it may be in)
_BYTE, _INT2, _INT4, _VARINT, _STR, _BIN, _PAIR = range(7)
_TABLE: dict[int, tuple[int, frozenset[int]]] = {
    Prop.PAYLOAD_FORMAT: (_BYTE, frozenset({_PUBLISH, WILL})),
    Prop.MESSAGE_EXPIRY: (_INT4, frozenset({_PUBLISH, WILL})),
    Prop.CONTENT_TYPE: (_STR, frozenset({_PUBLISH, WILL})),
    Prop.RESPONSE_TOPIC: (_STR, frozenset({_PUBLISH, WILL})),
    Prop.CORRELATION_DATA: (_BIN, frozenset({_PUBLISH, WILL})),
    Prop.SUBSCRIPTION_ID: (_VARINT, frozenset({_PUBLISH, _SUBSCRIBE})),
    Prop.SESSION_EXPIRY: (_INT4, frozenset({_CONNECT, _CONNACK, _DISCONNECT})),
    Prop.ASSIGNED_CLIENT_ID: (_STR, frozenset({_CONNACK})),
    Prop.SERVER_KEEP_ALIVE: (_INT2, frozenset({_CONNACK})),
    Prop.AUTH_METHOD: (_STR, frozenset({_CONNECT, _CONNACK, _AUTH})),
    Prop.AUTH_DATA: (_BIN, frozenset({_CONNECT, _CONNACK, _AUTH})),
    Prop.REQUEST_PROBLEM_INFO: (_BYTE, frozenset({_CONNECT})),
    Prop.WILL_DELAY: (_INT4, frozenset({WILL})),
    Prop.REQUEST_RESPONSE_INFO: (_BYTE, frozenset({_CONNECT})),
    Prop.RESPONSE_INFO: (_STR, frozenset({_CONNACK})),
    Prop.SERVER_REFERENCE: (_STR, frozenset({_CONNACK, _DISCONNECT})),
    Prop.REASON_STRING: (_STR, frozenset({_CONNACK, _DISCONNECT, _AUTH} | _ACKS)),
    Prop.RECEIVE_MAXIMUM: (_INT2, frozenset({_CONNECT, _CONNACK})),
    Prop.TOPIC_ALIAS_MAXIMUM: (_INT2, frozenset({_CONNECT, _CONNACK})),
    Prop.TOPIC_ALIAS: (_INT2, frozenset({_PUBLISH})),
    Prop.MAXIMUM_QOS: (_BYTE, frozenset({_CONNACK})),
    Prop.RETAIN_AVAILABLE: (_BYTE, frozenset({_CONNACK})),
    Prop.USER_PROPERTY: (_PAIR, frozenset(range(16))),
    Prop.MAXIMUM_PACKET_SIZE: (_INT4, frozenset({_CONNECT, _CONNACK})),
    Prop.WILDCARD_AVAILABLE: (_BYTE, frozenset({_CONNACK})),
    Prop.SUBSCRIPTION_IDS_AVAILABLE: (_BYTE, frozenset({_CONNACK})),
    Prop.SHARED_AVAILABLE: (_BYTE, frozenset({_CONNACK})),
}
_BOOLEANS = {
    Prop.PAYLOAD_FORMAT,
    Prop.REQUEST_PROBLEM_INFO,
    Prop.REQUEST_RESPONSE_INFO,
    Prop.MAXIMUM_QOS,
    Prop.RETAIN_AVAILABLE,
    Prop.WILDCARD_AVAILABLE,
    Prop.SUBSCRIPTION_IDS_AVAILABLE,
    Prop.SHARED_AVAILABLE,
}
_NOT_ZERO = {Prop.RECEIVE_MAXIMUM, Prop.MAXIMUM_PACKET_SIZE, Prop.SUBSCRIPTION_ID}


@dataclass(slots=True)
class Props:
    """The properties of one packet: ``values`` by property id, user properties apart, in order."""

    values: dict[int, Any] = field(default_factory=dict)
    user: list[tuple[str, str]] = field(default_factory=list)

    def get(self, prop: int, default: Any = None) -> Any:
        return self.values.get(prop, default)


class _Cursor:
    """Reads the fields of one packet body; every overrun or bad value is ``Malformed``."""

    __slots__ = ("body", "pos")

    def __init__(self, body: bytes, pos: int = 0) -> None:
        self.body = body
        self.pos = pos

    def left(self) -> int:
        return len(self.body) - self.pos

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.body):
            raise Malformed("a field runs past the end of its packet")
        out = self.body[self.pos : end]
        self.pos = end
        return out

    def byte(self) -> int:
        if self.pos >= len(self.body):
            raise Malformed("a field runs past the end of its packet")
        value = self.body[self.pos]
        self.pos += 1
        return value

    def int2(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def int4(self) -> int:
        return int.from_bytes(self.take(4), "big")

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift >= 28:
                raise Malformed("a variable byte integer longer than four bytes")

    def binary(self) -> bytes:
        return self.take(self.int2())

    def string(self) -> str:
        raw = self.take(self.int2())
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("a string that is not UTF-8") from None
        if "\x00" in text:  # [MQTT-1.5.4-2]
            raise Malformed("a string with U+0000")
        return text


def _read_props(cur: _Cursor, packet: int) -> Props:
    length = cur.varint()
    if length > cur.left():
        raise Malformed("properties longer than their packet")
    end = cur.pos + length
    outer, cur = cur, _Cursor(cur.body[:end], cur.pos)  # a property cannot read past the properties
    outer.pos = end
    props = Props()
    values = props.values
    while cur.pos < end:
        ident = cur.varint()
        entry = _TABLE.get(ident)
        if entry is None:
            raise Malformed(f"unknown property 0x{ident:02x}")
        kind, allowed = entry
        if packet not in allowed:
            raise Malformed(f"property 0x{ident:02x} is not allowed in this packet", Reason.PROTOCOL_ERROR)
        value: Any
        if kind == _BYTE:
            value = cur.byte()
        elif kind == _INT2:
            value = cur.int2()
        elif kind == _INT4:
            value = cur.int4()
        elif kind == _VARINT:
            value = cur.varint()
        elif kind == _STR:
            value = cur.string()
        elif kind == _BIN:
            value = cur.binary()
        else:
            props.user.append((cur.string(), cur.string()))
            continue
        if ident in values:
            raise Malformed(f"property 0x{ident:02x} twice", Reason.PROTOCOL_ERROR)
        if ident in _BOOLEANS and value > 1:
            raise Malformed(f"property 0x{ident:02x} must be 0 or 1", Reason.PROTOCOL_ERROR)
        if ident in _NOT_ZERO and value == 0:
            raise Malformed(f"property 0x{ident:02x} must not be 0", Reason.PROTOCOL_ERROR)
        values[ident] = value
    return props


def decode_props(body: bytes, packet: int) -> Props:
    """The properties at the start of ``body`` (for tests and the fuzzer)."""
    return _read_props(_Cursor(body), packet)


def _str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw


def encode_props(
    values: dict[int, Any], user: tuple[tuple[str, str], ...] | list[tuple[str, str]] = ()
) -> bytes:
    """Properties as written in a packet: their length, then each (``values`` by property id)."""
    out = bytearray()
    for ident, value in values.items():
        if value is None:
            continue
        kind = _TABLE[ident][0]
        out.append(ident)
        if kind == _BYTE:
            out.append(int(value))
        elif kind == _INT2:
            out += int(value).to_bytes(2, "big")
        elif kind == _INT4:
            out += int(value).to_bytes(4, "big")
        elif kind == _VARINT:
            out += remaining_length(int(value))
        elif kind == _STR:
            out += _str(value)
        else:
            out += len(value).to_bytes(2, "big") + bytes(value)
    for key, value in user:
        out.append(Prop.USER_PROPERTY)
        out += _str(key) + _str(value)
    return remaining_length(len(out)) + bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


# ---------------------------------------------------------------------------------------------- CONNECT
def protocol_level(body: bytes) -> int | None:
    """The protocol level of a CONNECT body (4: 3.1.1, 5: MQTT 5), None if it cannot be read."""
    if len(body) < 2:
        return None
    at = 2 + ((body[0] << 8) | body[1])
    return body[at] if at < len(body) else None


class Will(NamedTuple):
    topic: str
    message: bytes
    qos: int
    retain: bool
    props: PublishProps


class Connect5(NamedTuple):
    client_id: str
    clean_start: bool
    keep_alive: int
    username: str | None
    password: str | None
    """None also when the password is not UTF-8 (mqchat's secrets are text: refused as bad ones)."""
    will: Will | None
    props: Props


def decode_connect(body: bytes) -> Connect5:
    cur = _Cursor(body)
    if cur.string() != "MQTT":
        raise Malformed("not an MQTT CONNECT", Reason.UNSUPPORTED_PROTOCOL)
    if cur.byte() != 5:
        raise Malformed("not MQTT 5", Reason.UNSUPPORTED_PROTOCOL)
    flags = cur.byte()
    if flags & 0x01:
        raise Malformed("[MQTT-3.1.2-3] the reserved CONNECT flag is set")
    will_flag = bool(flags & 0x04)
    will_qos = (flags >> 3) & 0x03
    will_retain = bool(flags & 0x20)
    if will_qos == 3 or (not will_flag and (will_qos or will_retain)):
        raise Malformed("[MQTT-3.1.2-11] will QoS or retain without a will")
    keep_alive = cur.int2()
    props = _read_props(cur, _CONNECT)
    client_id = cur.string()
    will = None
    if will_flag:
        will_props = _read_props(cur, WILL)
        topic = cur.string()
        message = cur.binary()
        will = Will(topic, message, will_qos, will_retain, publish_props(will_props))
    username = cur.string() if flags & 0x80 else None
    password = None
    if flags & 0x40:
        secret = cur.binary()
        try:
            password = secret.decode("utf-8")
        except UnicodeDecodeError:
            password = None
    if cur.left():
        raise Malformed("bytes after the CONNECT payload")
    return Connect5(client_id, bool(flags & 0x02), keep_alive, username, password, will, props)


def encode_connack(session_present: bool, reason: int, values: dict[int, Any] | None = None) -> bytes:
    body = bytes((1 if session_present and reason == 0 else 0, reason)) + encode_props(values or {})
    return _packet(0x20, body)


# ---------------------------------------------------------------------------------------------- PUBLISH
class Publish5(NamedTuple):
    topic: str
    """Empty when the PUBLISH names its topic by alias only."""
    qos: int
    retain: bool
    packet_id: int | None
    data: bytes
    alias: int | None
    props: PublishProps | None
    """None when it carries none that mqchat reads (as a 3.1.1 PUBLISH)."""


_NO_PROPS = PublishProps()
_new_tuple = tuple.__new__


def publish_props(props: Props) -> PublishProps:
    values = props.values
    return PublishProps(
        response_topic=values.get(Prop.RESPONSE_TOPIC),
        correlation_data=values.get(Prop.CORRELATION_DATA),
        user_properties=tuple(props.user),
        message_expiry=values.get(Prop.MESSAGE_EXPIRY),
        content_type=values.get(Prop.CONTENT_TYPE),
    )


def decode_publish(first: int, body: bytes) -> Publish5:
    """A client's PUBLISH. Most have a topic and no property (a property length of 0): those are
    read here on bytes, the rest by ``decode_publish_fully``, to the same result (the fuzzer in
    tests/unit/test_mqtt5_codec.py checks that they agree)."""
    qos = (first >> 1) & 0x03
    cut = 2 + ((body[0] << 8) | body[1]) if len(body) >= 2 else len(body)
    at = cut + 2 if qos else cut
    if qos == 3 or at >= len(body) or body[at]:  # QoS 3, too short, or properties: read them
        return decode_publish_fully(first, body)
    try:
        topic = body[2:cut].decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("a string that is not UTF-8") from None
    if "\x00" in topic:  # [MQTT-1.5.4-2]
        raise Malformed("a string with U+0000")
    if "#" in topic or "+" in topic:
        raise Malformed("[MQTT-3.3.2-2] a PUBLISH topic must not contain wildcard characters")
    packet_id = None
    if qos:
        packet_id = (body[cut] << 8) | body[cut + 1]
        if packet_id == 0:
            raise Malformed("[MQTT-2.2.1-3] packet id 0")
    # ``tuple.__new__``: a NamedTuple's constructor is a Python function (as ``Frame``'s in the codec)
    return _new_tuple(Publish5, (topic, qos, bool(first & 0x01), packet_id, body[at + 1 :], None, None))


def decode_publish_fully(first: int, body: bytes) -> Publish5:
    """A client's PUBLISH, every field through the property reader (see ``decode_publish``)."""
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise Malformed("[MQTT-3.3.1-4] PUBLISH with QoS 3")
    cur = _Cursor(body)
    topic = cur.string()
    if "#" in topic or "+" in topic:
        raise Malformed("[MQTT-3.3.2-2] a PUBLISH topic must not contain wildcard characters")
    packet_id = None
    if qos:
        packet_id = cur.int2()
        if packet_id == 0:
            raise Malformed("[MQTT-2.2.1-3] packet id 0")
    props = _read_props(cur, _PUBLISH)
    if Prop.SUBSCRIPTION_ID in props.values:
        raise Malformed("a client PUBLISH with a subscription identifier", Reason.PROTOCOL_ERROR)
    if props.values.get(Prop.PAYLOAD_FORMAT) == 1:  # [MQTT-3.3.2-4]: UTF-8 announced, UTF-8 sent
        try:
            body[cur.pos :].decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(
                "a payload announced as UTF-8 that is not", Reason.PAYLOAD_FORMAT_INVALID
            ) from None
    read = publish_props(props)
    return Publish5(
        topic,
        qos,
        bool(first & 0x01),
        packet_id,
        body[cur.pos :],
        props.values.get(Prop.TOPIC_ALIAS),
        None if read == _NO_PROPS else read,
    )


def encode_publish(
    topic: str,
    data: bytes | bytearray,
    packet_id: int | None,
    qos: int,
    retain: bool = False,
    props: PublishProps | None = None,
    alias: int | None = None,
) -> bytes:
    """A PUBLISH; ``topic`` empty with an ``alias`` already known to the client."""
    if props is None and alias is None:  # most deliveries: a property length of 0
        return encode_plain_publish(topic, data, packet_id, qos, retain, b"\x00")
    head = _str(topic)
    if qos:
        assert packet_id is not None
        head += packet_id.to_bytes(2, "big")
    first = 0x30 | (qos << 1) | (1 if retain else 0)
    values: dict[int, Any] = {}
    user: tuple[tuple[str, str], ...] = ()
    if props is not None:
        values[Prop.MESSAGE_EXPIRY] = props.message_expiry
        values[Prop.CONTENT_TYPE] = props.content_type
        values[Prop.RESPONSE_TOPIC] = props.response_topic
        values[Prop.CORRELATION_DATA] = props.correlation_data
        user = props.user_properties
    if alias is not None:
        values[Prop.TOPIC_ALIAS] = alias
    return _packet(first, head + encode_props(values, user) + bytes(data))


def encode_ack(kind: int, packet_id: int, reason: int = 0) -> bytes:
    """A PUBACK (``kind`` 4), PUBREC, PUBREL or PUBCOMP; success in the short form [MQTT-3.4.2.1]."""
    first = (kind << 4) | (0x02 if kind == _PUBREL else 0)
    if reason == 0:
        return bytes((first, 2)) + packet_id.to_bytes(2, "big")
    return bytes((first, 3)) + packet_id.to_bytes(2, "big") + bytes((reason,))


def decode_puback(body: bytes) -> tuple[int, int]:
    """A PUBACK's (packet id, reason code)."""
    cur = _Cursor(body)
    packet_id = cur.int2()
    reason = cur.byte() if cur.left() else 0
    if cur.left():
        _read_props(cur, _PUBACK)
    if cur.left():
        raise Malformed("bytes after the PUBACK properties")
    return packet_id, reason


# ---------------------------------------------------------------------------------------------- SUBSCRIBE
def decode_subscribe(first: int, body: bytes) -> tuple[int, list[tuple[str, int]], Props]:
    """(packet id, [(filter, options byte)], properties) of a SUBSCRIBE."""
    if first & 0x0F != 0x02:
        raise Malformed("[MQTT-3.8.1-1] SUBSCRIBE flags must be 0010")
    cur = _Cursor(body)
    packet_id = cur.int2()
    props = _read_props(cur, _SUBSCRIBE)
    filters: list[tuple[str, int]] = []
    while cur.left():
        topic_filter = cur.string()
        options = cur.byte()
        if options & 0xC0 or options & 0x03 == 3 or (options >> 4) & 0x03 == 3:
            raise Malformed("SUBSCRIBE options with reserved bits")
        filters.append((topic_filter, options))
    if not filters:
        raise Malformed("[MQTT-3.8.3-2] SUBSCRIBE without a filter", Reason.PROTOCOL_ERROR)
    return packet_id, filters, props


def encode_suback(packet_id: int, codes: list[int]) -> bytes:
    return _packet(0x90, packet_id.to_bytes(2, "big") + b"\x00" + bytes(codes))


def decode_unsubscribe(first: int, body: bytes) -> tuple[int, list[str]]:
    if first & 0x0F != 0x02:
        raise Malformed("[MQTT-3.10.1-1] UNSUBSCRIBE flags must be 0010")
    cur = _Cursor(body)
    packet_id = cur.int2()
    _read_props(cur, _UNSUBSCRIBE)
    filters: list[str] = []
    while cur.left():
        filters.append(cur.string())
    if not filters:
        raise Malformed("[MQTT-3.10.3-2] UNSUBSCRIBE without a filter", Reason.PROTOCOL_ERROR)
    return packet_id, filters


def encode_unsuback(packet_id: int, codes: list[int]) -> bytes:
    return _packet(0xB0, packet_id.to_bytes(2, "big") + b"\x00" + bytes(codes))


# ---------------------------------------------------------------------------------------------- DISCONNECT
def decode_disconnect(body: bytes) -> tuple[int, Props]:
    """A DISCONNECT's reason code (0 when absent) and properties."""
    if not body:
        return 0, Props()
    cur = _Cursor(body)
    reason = cur.byte()
    props = _read_props(cur, _DISCONNECT) if cur.left() else Props()
    if cur.left():
        raise Malformed("bytes after the DISCONNECT properties")
    return reason, props


def encode_disconnect(reason: int, reason_string: str | None = None) -> bytes:
    return _packet(0xE0, bytes((reason,)) + encode_props({Prop.REASON_STRING: reason_string}))
