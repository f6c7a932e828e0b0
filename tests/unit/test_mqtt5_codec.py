"""broker/mqtt/mqtt5.py: MQTT 5 packets as paho (an independent implementation) writes and reads
them, every refusal with its reason code, and a fuzzer: random bytes and mutated valid packets never
raise anything but ``Malformed`` and never hang."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from amqtt.errors import MQTTError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes

from broker.mqtt.codec import read_frames
from broker.mqtt.mqtt5 import (
    Malformed,
    Prop,
    Reason,
    decode_connect,
    decode_disconnect,
    decode_props,
    decode_puback,
    decode_publish,
    decode_publish_fully,
    decode_subscribe,
    decode_unsubscribe,
    encode_ack,
    encode_connack,
    encode_disconnect,
    encode_props,
    encode_publish,
    encode_suback,
    encode_unsuback,
    protocol_level,
)
from broker.mqtt.properties import PublishProps
from tests.raw_mqtt5 import props as paho_props
from tests.raw_mqtt5 import read_props

text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=40)
topics = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00#+"), min_size=1, max_size=60
)


def _str(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def _remaining(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def connect_body(
    client_id: str = "alice/phone",
    *,
    props: bytes = b"\x00",
    flags: int = 0xC2,
    user: str = "alice",
    password: bytes = b"secret",
    will: bytes = b"",
    level: int = 5,
) -> bytes:
    body = _str("MQTT") + bytes((level, flags)) + (30).to_bytes(2, "big") + props + _str(client_id) + will
    if flags & 0x80:
        body += _str(user)
    if flags & 0x40:
        body += len(password).to_bytes(2, "big") + password
    return body


# ---------------------------------------------------------------------------------------------- against paho
@given(
    response_topic=st.none() | topics,
    correlation=st.none() | st.binary(max_size=60),
    user=st.lists(st.tuples(text, text), max_size=4),
    expiry=st.none() | st.integers(0, 2**32 - 1),
    content_type=st.none() | text,
    alias=st.none() | st.integers(1, 65535),
)
def test_publish_properties_read_back_by_paho(
    response_topic: str | None,
    correlation: bytes | None,
    user: list[tuple[str, str]],
    expiry: int | None,
    content_type: str | None,
    alias: int | None,
) -> None:
    props = PublishProps(response_topic, correlation, tuple(user), expiry, content_type)
    packet = encode_publish("chat/bob/in", b"{}", 7, 1, False, props, alias)
    frames, used = read_frames(packet)
    assert used == len(packet) and len(frames) == 1
    body = frames[0].body
    theirs = read_props(PacketTypes.PUBLISH, body[2 + len("chat/bob/in") + 2 :])
    assert theirs.get("ResponseTopic") == response_topic
    assert (bytes.fromhex(theirs["CorrelationData"]) if "CorrelationData" in theirs else None) == correlation
    assert theirs.get("MessageExpiryInterval") == expiry
    assert theirs.get("ContentType") == content_type
    assert theirs.get("TopicAlias") == alias
    assert [tuple(p) for p in theirs.get("UserProperty", [])] == user
    # and ours reads it back the same (None: no property mqchat reads)
    decoded = decode_publish(packet[0], body)
    assert (decoded.props or PublishProps()) == props and decoded.alias == alias and decoded.data == b"{}"
    assert decoded.packet_id == 7 and decoded.topic == "chat/bob/in"


@given(
    receive=st.integers(1, 65535),
    aliases=st.integers(0, 65535),
    size=st.integers(1, 268_435_455),
    expiry=st.integers(0, 2**32 - 1),
    user=st.lists(st.tuples(text, text), max_size=3),
)
def test_connect_properties_written_by_paho(
    receive: int, aliases: int, size: int, expiry: int, user: list[tuple[str, str]]
) -> None:
    props = paho_props(
        PacketTypes.CONNECT,
        ReceiveMaximum=receive,
        TopicAliasMaximum=aliases,
        MaximumPacketSize=size,
        SessionExpiryInterval=expiry,
        **({"UserProperty": user} if user else {}),
    )
    connect = decode_connect(connect_body(props=props))
    assert connect.props.get(Prop.RECEIVE_MAXIMUM) == receive
    assert connect.props.get(Prop.TOPIC_ALIAS_MAXIMUM) == aliases
    assert connect.props.get(Prop.MAXIMUM_PACKET_SIZE) == size
    assert connect.props.get(Prop.SESSION_EXPIRY) == expiry
    assert connect.props.user == user
    assert (connect.client_id, connect.username, connect.password) == ("alice/phone", "alice", "secret")
    assert connect.clean_start and connect.keep_alive == 30


def test_connack_properties_read_by_paho() -> None:
    packet = encode_connack(
        True,
        0,
        {
            Prop.RECEIVE_MAXIMUM: 100,
            Prop.TOPIC_ALIAS_MAXIMUM: 16,
            Prop.MAXIMUM_QOS: 1,
            Prop.ASSIGNED_CLIENT_ID: "x",
        },
    )
    frames, _ = read_frames(packet)
    body = frames[0].body
    assert body[:2] == b"\x01\x00"
    theirs = read_props(PacketTypes.CONNACK, body[2:])
    assert (theirs["ReceiveMaximum"], theirs["TopicAliasMaximum"], theirs["MaximumQoS"]) == (100, 16, 1)
    assert theirs["AssignedClientIdentifier"] == "x"
    # a refusal never says "session present" [MQTT-3.2.2-6]
    assert encode_connack(True, Reason.NOT_AUTHORIZED)[2] == 0


def test_the_acks_and_disconnect() -> None:
    assert encode_ack(4, 9) == b"\x40\x02\x00\x09"
    assert encode_ack(4, 9, 0x87) == b"\x40\x03\x00\x09\x87"
    assert encode_suback(5, [1, 0x87]) == b"\x90\x05\x00\x05\x00\x01\x87"
    assert encode_unsuback(5, [0, 0x11]) == b"\xb0\x05\x00\x05\x00\x00\x11"
    assert encode_disconnect(0x8E) == b"\xe0\x02\x8e\x00"
    assert decode_disconnect(b"") == (0, decode_disconnect(b"")[1])
    assert decode_disconnect(b"\x04\x00")[0] == 4
    assert decode_puback(b"\x00\x09") == (9, 0)
    assert decode_puback(b"\x00\x09\x10\x00") == (9, 0x10)
    packet_id, filters, _ = decode_subscribe(0x82, b"\x00\x05\x00" + _str("a/+") + b"\x01")
    assert (packet_id, filters) == (5, [("a/+", 1)])
    assert decode_unsubscribe(0xA2, b"\x00\x05\x00" + _str("a/b")) == (5, ["a/b"])
    assert protocol_level(connect_body()) == 5
    assert protocol_level(connect_body(level=4)) == 4


# ---------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("props", "reason"),
    [
        (b"\x03\x21\x00\x00", Reason.PROTOCOL_ERROR),  # Receive Maximum 0
        (b"\x05\x27\x00\x00\x00\x00", Reason.PROTOCOL_ERROR),  # Maximum Packet Size 0
        (b"\x03\x23\x00\x01", Reason.PROTOCOL_ERROR),  # Topic Alias: not a CONNECT property
        (b"\x06\x21\x00\x01\x21\x00\x02", Reason.PROTOCOL_ERROR),  # twice
        (b"\x02\x17\x02", Reason.PROTOCOL_ERROR),  # Request Problem Information 2
        (b"\x02\x7f\x00", Reason.MALFORMED),  # no such property
        (b"\x40\x21\x00", Reason.MALFORMED),  # longer than the packet
        (b"\x02\x21\x00", Reason.MALFORMED),  # a property cut by the properties' length
    ],
)
def test_bad_connect_properties(props: bytes, reason: int) -> None:
    with pytest.raises(Malformed) as caught:
        decode_connect(connect_body(props=props))
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (connect_body(flags=0xC3), Reason.MALFORMED),  # reserved flag
        (connect_body(flags=0xDA), Reason.MALFORMED),  # will QoS 3
        (connect_body(flags=0xE2), Reason.MALFORMED),  # will retain without a will
        (connect_body(level=4), Reason.UNSUPPORTED_PROTOCOL),
        (connect_body() + b"x", Reason.MALFORMED),
        (connect_body()[:-3], Reason.MALFORMED),
    ],
)
def test_bad_connects(body: bytes, reason: int) -> None:
    with pytest.raises(Malformed) as caught:
        decode_connect(body)
    assert caught.value.reason == reason


def test_a_client_id_that_is_not_utf8_is_malformed() -> None:
    body = _str("MQTT") + b"\x05\x02\x00\x1e\x00" + b"\x00\x02\xff\xfe"
    with pytest.raises(Malformed):
        decode_connect(body)


def test_a_will_is_read_with_its_properties() -> None:
    will = paho_props(PacketTypes.WILLMESSAGE, ResponseTopic="chat/a/reply") + _str("chat/a/out")
    will += (2).to_bytes(2, "big") + b"{}"
    connect = decode_connect(connect_body(flags=0xC6, will=will))
    assert connect.will is not None
    assert (connect.will.topic, connect.will.message) == ("chat/a/out", b"{}")
    assert connect.will.props.response_topic == "chat/a/reply"


@pytest.mark.parametrize(
    ("first", "body", "reason"),
    [
        (0x30, _str("a") + b"\x05\x11\x00\x00\x00\x05", Reason.PROTOCOL_ERROR),  # a CONNECT property
        (0x30, _str("a") + b"\x02\x0b\x01", Reason.PROTOCOL_ERROR),  # a subscription id from a client
        (0x30, _str("a/#") + b"\x00", Reason.MALFORMED),
        (0x36, _str("a") + b"\x00\x01\x00", Reason.MALFORMED),  # QoS 3
        (0x32, _str("a") + b"\x00\x00\x00", Reason.MALFORMED),  # packet id 0
        (0x30, _str("a"), Reason.MALFORMED),  # no property length
        (0x30, _str("a") + b"\x02\x01\x01" + b"\xff", Reason.PAYLOAD_FORMAT_INVALID),  # "UTF-8" that is not
        (0x30, b"\x00\x02\xff\xfe\x00", Reason.MALFORMED),
    ],
)
def test_bad_publishes(first: int, body: bytes, reason: int) -> None:
    with pytest.raises(Malformed) as caught:
        decode_publish(first, body)
    assert caught.value.reason == reason


def test_encode_props_round_trip() -> None:
    values: dict[int, object] = {
        Prop.SERVER_KEEP_ALIVE: 60,
        Prop.MAXIMUM_PACKET_SIZE: 1 << 20,
        Prop.REASON_STRING: "why",
    }
    props = decode_props(encode_props(values, [("k", "v")]), 2)
    assert props.values == values and props.user == [("k", "v")]


# ---------------------------------------------------------------------------------------------- fuzz
def _decode_any(first: int, body: bytes) -> None:
    """Every decoder the broker runs on what a client sends: only ``Malformed``, with a reason code."""
    reasons: list[int] = []
    for decoder in (
        lambda: decode_connect(body),
        lambda: decode_publish(first, body),
        lambda: decode_puback(body),
        lambda: decode_subscribe(first, body),
        lambda: decode_unsubscribe(first, body),
        lambda: decode_disconnect(body),
        lambda: decode_props(body, first >> 4),
    ):
        try:
            decoder()
        except Malformed as exc:
            reasons.append(exc.reason)
    assert all(0x80 <= reason <= 0xA2 for reason in reasons)


@settings(max_examples=400, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(first=st.integers(0, 255), body=st.binary(max_size=300))
def test_random_bytes_raise_only_malformed(first: int, body: bytes) -> None:
    _decode_any(first, body)
    with contextlib.suppress(MQTTError):  # framing: MQTTError (PacketTooLarge is one) and nothing else
        read_frames(bytes((first,)) + body, limit=1 << 20)


_VALID = [
    (0x10, connect_body(props=paho_props(PacketTypes.CONNECT, ReceiveMaximum=5, TopicAliasMaximum=3))),
    (
        0x10,
        connect_body(
            flags=0xE6,
            will=paho_props(PacketTypes.WILLMESSAGE, MessageExpiryInterval=5) + _str("t") + b"\x00\x01x",
        ),
    ),
    (
        0x32,
        encode_publish(
            "chat/a/out", b'{"v":1}', 3, 1, False, PublishProps("chat/a/reply", b"c", (("k", "v"),)), 2
        )[2:],
    ),
    (
        0x82,
        b"\x00\x05"
        + paho_props(PacketTypes.SUBSCRIBE, UserProperty=[("a", "b")])
        + _str("chat/a/in")
        + b"\x01",
    ),
    (0xA2, b"\x00\x05\x00" + _str("chat/a/in")),
    (0x40, b"\x00\x05\x87" + paho_props(PacketTypes.PUBACK, ReasonString="no")),
    (0xE0, b"\x04" + paho_props(PacketTypes.DISCONNECT, SessionExpiryInterval=9)),
]


@settings(max_examples=600, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    which=st.integers(0, len(_VALID) - 1),
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.integers(0, 255), st.sampled_from("rid")), min_size=1, max_size=4
    ),
    cut=st.none() | st.integers(0, 400),
)
def test_mutated_valid_packets_raise_only_malformed(
    which: int, edits: list[tuple[int, int, str]], cut: int | None
) -> None:
    first, body = _VALID[which]
    _decode_any(first, body)  # valid as it is
    mutated = bytearray(body)
    for where, value, how in edits:
        at = where % (len(mutated) + 1)
        if how == "r" and at < len(mutated):
            mutated[at] = value
        elif how == "i":
            mutated.insert(at, value)
        elif at < len(mutated):
            del mutated[at]
    if cut is not None:
        del mutated[cut:]
    _decode_any(first, bytes(mutated))


def _publish_either(decoder: Callable[[int, bytes], object], first: int, body: bytes) -> object:
    try:
        return decoder(first, body)
    except Malformed as exc:
        return exc.reason


@settings(max_examples=500, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.sampled_from([0x30, 0x31, 0x32, 0x33, 0x34, 0x36, 0x3B]),
    topic=st.binary(max_size=12) | topics.map(str.encode),
    packet_id=st.integers(0, 65535),
    props=st.sampled_from([b"\x00", b"\x00", b"\x03\x23\x00\x01", b"\x02\x01\x01", b"\x80", b""]),
    data=st.binary(max_size=20),
    cut=st.none() | st.integers(0, 40),
)
def test_a_publish_read_on_bytes_is_read_as_through_its_properties(
    first: int, topic: bytes, packet_id: int, props: bytes, data: bytes, cut: int | None
) -> None:
    # decode_publish reads a PUBLISH without properties on bytes: the same fields, or the same
    # refusal, as the full reader, whatever the bytes (no topic, no packet id, bad UTF-8, cut short)
    body = len(topic).to_bytes(2, "big") + topic
    if first & 0x06:
        body += packet_id.to_bytes(2, "big")
    body = (body + props + data)[:cut]
    assert _publish_either(decode_publish, first, body) == _publish_either(decode_publish_fully, first, body)
