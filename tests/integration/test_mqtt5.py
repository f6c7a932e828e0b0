"""MQTT 5 against the real node: paho in MQTTv5 mode, a hand-written client (tests/raw_mqtt5.py)
and Debian's mosquitto clients, next to 3.1.1 clients that see no change."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.packettypes import PacketTypes

from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.feed import FrameFeed
from broker.mqtt.handler import MqchatHandler
from broker.mqtt.handler5 import Mqtt5Handler
from broker.mqtt.lean import spilled
from broker.mqtt.properties import PublishProps
from tests.harness import RunningNode, need, node_settings, wait_until
from tests.plain import PlainClient
from tests.raw_mqtt5 import PINGRESP, PUBACK, PUBLISH, SUBACK, Packet, Raw5, packet, props, utf8

RECEIVE_MAXIMUM, TOPIC_ALIAS_MAXIMUM = 0x21, 0x22


def _send(to: str, text: str) -> dict[str, object]:
    return {"v": 1, "type": "send", "id": uuid.uuid4().hex, "to": to, "text": text}


def _raw(node: RunningNode, user: str, device: str = "raw", **kwargs: object) -> Raw5:
    return Raw5(node.port, f"{user}/{device}", user, node.tokens[user], **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def limited_node(tmp_path: Path) -> Iterator[RunningNode]:
    """A node with one connection per user, a rate of one command at once, and addresses locked
    after one failed login."""
    settings = node_settings(
        tmp_path,
        **{
            "limits.max_connections_per_user": 1,
            "limits.commands_burst": 1,
            "limits.commands_per_second": 0.01,
            "limits.address_failures_max": 1,
        },
    )
    node = RunningNode(settings).start()
    yield node
    node.close()


def test_a_v5_user_and_a_311_user_chat(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token, mqtt5=True, keepalive=1)
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        # Given alice on MQTT 5, whose CONNACK says what the server takes
        assert alice.connack.ReceiveMaximum > 0
        assert alice.connack.TopicAliasMaximum > 0
        assert alice.connack.MaximumQoS == 1
        assert alice.connack.ServerKeepAlive == 1
        assert alice.connack.MaximumPacketSize >= 1024 * 1024
        assert alice.inbox() == [1]
        assert bob.inbox() == [1]

        # When alice sends bob a message, PUBACK 0 says it was taken
        assert alice.publish(_send(bob_id, "hi from v5")) == 0
        # Then bob (3.1.1) reads it, and answers
        assert bob.expect_type("message")["message"]["text"] == "hi from v5"
        bob.send(alice_id, "hi from 3.1.1")
        got = alice.expect(lambda t, p: isinstance(p, dict) and p.get("type") == "message")
        assert got["message"]["text"] == "hi from 3.1.1"
        time.sleep(3)  # keep-alive 1 s: paho's PINGREQs keep the connection up
        assert alice.disconnects.empty()
        assert alice.publish(_send(bob_id, "still here")) == 0
        assert bob.expect_type("message")["message"]["text"] == "still here"
    finally:
        alice.close()
        bob.close()


def test_unsuback_reason_codes(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    alice = _raw(node, alice_id)
    try:
        # her inbox granted, someone else's refused, in one SUBSCRIBE
        body = b"\x00\x03\x00" + utf8(f"chat/{alice_id}/in") + b"\x01" + utf8("chat/someone/in") + b"\x01"
        alice.send(packet(0x82, body))
        assert alice.expect(SUBACK).body == b"\x00\x03\x00\x01\x87"
        # removed; there was none
        assert alice.unsubscribe(f"chat/{alice_id}/in", "never/subscribed") == [0x00, 0x11]
    finally:
        alice.close()


def test_puback_and_suback_reason_codes(limited_node: RunningNode) -> None:
    node = limited_node
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token, mqtt5=True)
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        bob.inbox()
        alice.inbox()
        # not her outbox: 0x87; not JSON: 0x99; both also answered by an error event on her inbox
        assert alice.publish(_send(bob_id, "x"), topic=f"chat/{bob_id}/out") == 0x87
        assert alice.expect_type("error", code="forbidden")
        assert alice.publish(b"not json") == 0x99
        assert alice.expect_type("error", code="bad_json")
        # the first command is taken, the next is over the rate: 0x97
        assert alice.publish(_send(bob_id, "one")) == 0
        assert alice.publish(_send(bob_id, "two")) == 0x97
        assert alice.expect_type("error", code="rate_limited")
        assert bob.expect_type("message")["message"]["text"] == "one"
        # someone else's inbox: 0x87 in the SUBACK
        assert alice.subscribe(f"chat/{bob_id}/in") == [0x87]
    finally:
        alice.close()
        bob.close()


def test_connect_refusals_say_why(limited_node: RunningNode) -> None:
    node = limited_node
    alice_id, alice_token = node.add_user("alice")

    def connack(client_id: str, user: str, secret: str, connect_props: bytes | None = None) -> int:
        raw = Raw5(node.port, client_id, user, secret, connect_props=connect_props)
        try:
            return raw.connack.reason
        finally:
            raw.sock.close()

    # the client id must be <user>/<device>: 0x85
    assert connack("someone/else", alice_id, alice_token) == 0x85
    # Receive Maximum 0: 0x82; an authentication method mqchat has not: 0x8C
    assert connack(f"{alice_id}/a", alice_id, alice_token, b"\x03\x21\x00\x00") == 0x82
    assert (
        connack(
            f"{alice_id}/a", alice_id, alice_token, props(PacketTypes.CONNECT, AuthenticationMethod="SCRAM")
        )
        == 0x8C
    )
    # one connection per user on this node: the second device gets 0x97
    first = _raw(node, alice_id, "one")
    try:
        assert first.connack.reason == 0
        assert connack(f"{alice_id}/two", alice_id, alice_token) == 0x97
    finally:
        first.close()
    # a wrong token: 0x86; once the address is locked out: 0x89 (try later), even with a good one
    assert connack(f"{alice_id}/a", alice_id, "wrong") == 0x86
    codes = [connack(f"{alice_id}/a", alice_id, "wrong") for _ in range(3)]
    assert 0x89 in codes
    assert connack(f"{alice_id}/a", alice_id, alice_token) == 0x89


def test_a_second_connection_takes_over_with_0x8e(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    first = _raw(node, alice_id, "phone")
    second = PlainClient(node.port, alice_id, alice_token, mqtt5=True, device="phone")
    try:
        assert first.closed_with() == 0x8E
        assert second.inbox() == [1]
    finally:
        second.close()


def test_a_silent_client_is_closed_with_0x8d(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    alice = _raw(node, alice_id, keepalive=1)
    started = time.monotonic()
    assert alice.closed_with(timeout=10) == 0x8D
    assert time.monotonic() - started < 6


def test_the_will_is_sent_on_disconnect_0x04_or_a_lost_connection(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        bob.inbox()
        outbox = f"chat/{alice_id}/out"
        # a normal DISCONNECT: no will
        quiet = _raw(node, alice_id, will=(outbox, json.dumps(_send(bob_id, "never")).encode()))
        quiet.close(0)
        # DISCONNECT 0x04: the will, as her own command
        leaving = _raw(node, alice_id, will=(outbox, json.dumps(_send(bob_id, "my will")).encode()))
        leaving.close(0x04)
        assert bob.expect_type("message")["message"]["text"] == "my will"
        assert not [p for _t, p in bob.drain(0.5) if isinstance(p, dict) and p.get("type") == "message"]
        # silent past her keep-alive: closed with 0x8D, and the will goes out
        silent = _raw(
            node, alice_id, keepalive=1, will=(outbox, json.dumps(_send(bob_id, "timed out")).encode())
        )
        assert silent.closed_with() == 0x8D
        assert bob.expect_type("message")["message"]["text"] == "timed out"
        # taken over: no will (she is back on another connection)
        taken = _raw(node, alice_id, "phone", will=(outbox, json.dumps(_send(bob_id, "never 2")).encode()))
        again = _raw(node, alice_id, "phone")
        assert taken.closed_with() == 0x8E
        again.close()
        assert not [p for _t, p in bob.drain(0.5) if isinstance(p, dict) and p.get("type") == "message"]
        # a will to a topic she may not publish to is refused as her PUBLISH would be
        sneaky = _raw(node, alice_id, will=(f"chat/{bob_id}/out", json.dumps(_send(alice_id, "x")).encode()))
        sneaky.close(0x04)
        assert not [p for _t, p in bob.drain(0.5) if isinstance(p, dict) and p.get("type") == "message"]
    finally:
        bob.close()


def test_receive_maximum_is_the_window_of_deliveries(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = _raw(node, alice_id, connect_props=props(PacketTypes.CONNECT, ReceiveMaximum=2))
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        assert alice.subscribe(f"chat/{alice_id}/in") == [1]
        for i in range(5):
            bob.send(alice_id, f"m{i}")
        # only two unacknowledged at a time: the rest wait for a PUBACK
        first, second = alice.expect(PUBLISH), alice.expect(PUBLISH)
        assert alice.quiet(1.0)
        alice.puback(first.packet_id)
        third = alice.expect(PUBLISH)
        assert alice.quiet(0.5)
        alice.puback(second.packet_id)
        alice.puback(third.packet_id)
        fourth = alice.expect(PUBLISH)
        alice.puback(fourth.packet_id)
        fifth = alice.expect(PUBLISH)
        alice.puback(fifth.packet_id)
        texts = [json.loads(p.payload)["message"]["text"] for p in (first, second, third, fourth, fifth)]
        assert texts == ["m0", "m1", "m2", "m3", "m4"]  # in order
    finally:
        alice.close()
        bob.close()


def test_topic_aliases_both_ways(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = _raw(node, alice_id, connect_props=props(PacketTypes.CONNECT, TopicAliasMaximum=4))
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        bob.inbox()
        assert alice.subscribe(f"chat/{alice_id}/in") == [1]
        # inbound: alias 1 set with the topic, then used alone
        outbox = f"chat/{alice_id}/out"
        alice.publish(
            outbox,
            json.dumps(_send(bob_id, "a1")).encode(),
            packet_id=1,
            properties=props(PacketTypes.PUBLISH, TopicAlias=1),
        )
        assert alice.expect(PUBACK).reason == 0
        alice.publish(
            "",
            json.dumps(_send(bob_id, "a2")).encode(),
            packet_id=2,
            properties=props(PacketTypes.PUBLISH, TopicAlias=1),
        )
        assert alice.expect(PUBACK).reason == 0
        assert bob.expect_type("message")["message"]["text"] == "a1"
        assert bob.expect_type("message")["message"]["text"] == "a2"
        # outbound: her inbox named once (in the first delivery to it), then alias 1 and no topic
        bob.send(alice_id, "b1")
        bob.send(alice_id, "b2")
        deliveries: list[Packet] = []
        while len([d for d in deliveries if json.loads(d.payload).get("type") == "message"]) < 2:
            got = alice.expect(PUBLISH)
            alice.puback(got.packet_id)
            deliveries.append(got)
        assert deliveries[0].topic == f"chat/{alice_id}/in"
        assert [d.topic for d in deliveries[1:]] == [""] * (len(deliveries) - 1)
        assert {d.properties()["TopicAlias"] for d in deliveries} == {1}
    finally:
        alice.close()
        bob.close()


def test_a_delivery_over_the_clients_maximum_packet_size_is_dropped(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = _raw(node, alice_id, connect_props=props(PacketTypes.CONNECT, MaximumPacketSize=400))
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        assert alice.subscribe(f"chat/{alice_id}/in") == [1]
        bob.send(alice_id, "x" * 1000)
        bob.send(alice_id, "short")
        got = alice.expect(PUBLISH)
        assert json.loads(got.payload)["message"]["text"] == "short"
        assert 5 + len(got.body) <= 400
    finally:
        alice.close()
        bob.close()


BAD = [
    (
        "alias 0",
        lambda out: (out, props(PacketTypes.PUBLISH, TopicAlias=0) if False else b"\x03\x23\x00\x00", 1),
        0x94,
    ),
    ("alias over the maximum", lambda out: (out, b"\x03\x23\x00\x11", 1), 0x94),
    ("an alias never set", lambda out: ("", b"\x03\x23\x00\x02", 1), 0x82),
    ("properties past the packet", lambda out: (out, b"\x7f\x23", 1), 0x81),
    ("a property not for PUBLISH", lambda out: (out, b"\x05\x11\x00\x00\x00\x05", 1), 0x82),
    ("QoS 2", lambda out: (out, b"\x00", 2), 0x9B),
]


@pytest.mark.parametrize(("case", "build", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_closed_with_its_reason_and_others_go_on(
    node: RunningNode, case: str, build: object, reason: int
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    carol_id, carol_token = node.add_user("carol")
    bob = PlainClient(node.port, bob_id, bob_token, mqtt5=True)
    carol = PlainClient(node.port, carol_id, carol_token)
    alice = _raw(node, alice_id)
    try:
        carol.inbox()
        topic, properties, qos = build(f"chat/{alice_id}/out")  # type: ignore[operator]
        alice.publish(topic, json.dumps(_send(carol_id, "bad")).encode(), qos=qos, properties=properties)
        assert alice.closed_with() == reason
        # nothing of it reached anyone, and the others go on
        assert bob.publish(_send(carol_id, "fine")) == 0
        assert carol.expect_type("message")["message"]["text"] == "fine"
    finally:
        bob.close()
        carol.close()


def test_more_bad_input(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    # a packet that says it is larger than the CONNACK's maximum: 0x95, before it is read
    alice = _raw(node, alice_id, "big")
    limit = alice.connack.properties()["MaximumPacketSize"]
    alice.send(b"\x30" + bytes([0xFF, 0xFF, 0xFF, 0x7F]))
    assert limit < 0xFFFFFFF and alice.closed_with() == 0x95
    # a second CONNECT: 0x82
    again = _raw(node, alice_id, "again")
    again.send(b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x1e\x00\x00\x00")
    assert again.closed_with() == 0x82
    # a SUBSCRIBE with a subscription identifier (the CONNACK said: not available): 0x82
    subid = _raw(node, alice_id, "subid")
    assert subid.connack.properties()["SubscriptionIdentifierAvailable"] == 0
    body = b"\x00\x01\x02\x0b\x01" + b"\x00\x03a/b\x01"
    subid.send(bytes((0x82, len(body))) + body)
    assert subid.closed_with() == 0x82


def test_mosquitto_clients_speak_mqtt5_to_a_311_user(node: RunningNode) -> None:
    need(shutil.which("mosquitto_sub") is not None, "mosquitto-clients is not installed")
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token)
    try:
        alice.inbox()
        common = ["-V", "mqttv5", "-h", "127.0.0.1", "-p", str(node.port), "-q", "1"]
        reader = subprocess.Popen(
            [
                "mosquitto_sub",
                *common,
                "-u",
                bob_id,
                "-P",
                bob_token,
                "-i",
                f"{bob_id}/sub",
                "-t",
                f"chat/{bob_id}/in",
                "-C",
                "1",
                "-W",
                "15",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_until(lambda: node.node.locator is not None and bool(node.node.locator.nodes_of(bob_id)))
        alice.send(bob_id, "hello mqtt5 shell")
        out, err = reader.communicate(timeout=20)
        assert reader.returncode == 0, err
        assert json.loads(out)["message"]["text"] == "hello mqtt5 shell"
        sent = subprocess.run(
            [
                "mosquitto_pub",
                *common,
                "-u",
                bob_id,
                "-P",
                bob_token,
                "-i",
                f"{bob_id}/pub",
                "-t",
                f"chat/{bob_id}/out",
                "-m",
                json.dumps(_send(alice_id, "hi from mosquitto v5")),
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert sent.returncode == 0, sent.stderr
        assert alice.expect_type("message")["message"]["text"] == "hi from mosquitto v5"
        # a PUBLISH to someone else's outbox: mosquitto_pub shows the PUBACK's refusal
        refused = subprocess.run(
            [
                "mosquitto_pub",
                *common,
                "-u",
                bob_id,
                "-P",
                bob_token,
                "-i",
                f"{bob_id}/pub",
                "-t",
                f"chat/{alice_id}/out",
                "-m",
                "{}",
            ],
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert "not authorized" in (refused.stderr + refused.stdout).lower()
    finally:
        alice.close()


def _server_publish(node: RunningNode, topic: str, data: bytes, props: PublishProps | None) -> None:
    broker = node.node.broker
    assert broker is not None
    node.loop.call_soon_threadsafe(broker.publish_nowait, topic, data, 1, props)


def test_server_publishes_carry_properties_to_mqtt5_clients_only(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    v5 = _raw(node, alice_id, "v5")
    v311 = PlainClient(node.port, alice_id, alice_token, device="v311")
    try:
        inbox = f"chat/{alice_id}/in"
        assert v5.subscribe(inbox) == [1]
        assert v311.inbox() == [1]
        props5 = PublishProps(
            response_topic=f"chat/{alice_id}/reply",
            correlation_data=b"\x01\x02",
            user_properties=(("k", "v"),),
            message_expiry=30,
            content_type="application/json",
        )
        _server_publish(node, inbox, b'{"type":"answer"}', props5)
        got = v5.expect(PUBLISH)
        v5.puback(got.packet_id)
        seen = got.properties()
        assert seen["ResponseTopic"] == f"chat/{alice_id}/reply"
        assert seen["CorrelationData"] == "0102"
        assert [tuple(p) for p in seen["UserProperty"]] == [("k", "v")]
        assert seen["MessageExpiryInterval"] <= 30
        assert seen["ContentType"] == "application/json"
        assert got.payload == b'{"type":"answer"}'
        # the 3.1.1 device gets the same payload, without properties (3.1.1 has no room for them)
        assert v311.expect(lambda t, p: p == {"type": "answer"}) == {"type": "answer"}
    finally:
        v5.close()
        v311.close()


def test_a_delivery_that_expires_while_waiting_for_the_window_is_not_sent(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    alice = _raw(node, alice_id, connect_props=props(PacketTypes.CONNECT, ReceiveMaximum=1))
    try:
        inbox = f"chat/{alice_id}/in"
        assert alice.subscribe(inbox) == [1]
        _server_publish(node, inbox, b'{"n":1}', None)
        first = alice.expect(PUBLISH)
        _server_publish(node, inbox, b'{"n":2}', PublishProps(message_expiry=1))  # typing: short-lived
        _server_publish(node, inbox, b'{"n":3}', PublishProps(message_expiry=60))
        time.sleep(2.2)
        alice.puback(first.packet_id)
        third = alice.expect(PUBLISH)
        assert third.payload == b'{"n":3}'  # the second expired while it waited
        assert 55 <= third.properties()["MessageExpiryInterval"] <= 58
    finally:
        alice.close()


def test_random_bytes_after_an_mqtt5_connect_never_hurt_the_node(node: RunningNode) -> None:
    import random

    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    carol_id, carol_token = node.add_user("carol")
    carol = PlainClient(node.port, carol_id, carol_token)
    rng = random.Random(26)
    try:
        carol.inbox()
        for i in range(40):
            noisy = _raw(node, alice_id, f"noise{i}")
            first = rng.choice([0x30, 0x32, 0x40, 0x82, 0xA2, 0xC0, 0xE0, 0xF0, 0x10, rng.randrange(256)])
            body = rng.randbytes(rng.randrange(0, 60))
            noisy.send(bytes((first, len(body))) + body + rng.randbytes(rng.randrange(0, 8)))
            noisy.quiet(0.05)
            noisy.sock.close()
        bob = PlainClient(node.port, bob_id, bob_token, mqtt5=True)
        try:
            assert bob.publish(_send(carol_id, "after the noise")) == 0
            assert carol.expect_type("message")["message"]["text"] == "after the noise"
        finally:
            bob.close()
    finally:
        carol.close()


def test_the_connection_facts_the_broker_keeps(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    broker = node.node.broker
    assert broker is not None

    def state(client_id: str) -> ConnectionState:
        assert wait_until(lambda: any(s.client_id == client_id for s in broker.connected_sessions()))
        found = next(s for s in broker.connected_sessions() if s.client_id == client_id)
        assert isinstance(found, ConnectionState)
        return found

    v5 = _raw(
        node,
        alice_id,
        "v5",
        connect_props=props(
            PacketTypes.CONNECT,
            SessionExpiryInterval=3600,
            ReceiveMaximum=7,
            MaximumPacketSize=5000,
            TopicAliasMaximum=3,
        ),
    )
    v311 = PlainClient(node.port, alice_id, alice_token, device="v311")
    try:
        five = state(f"{alice_id}/v5")
        assert (five.protocol_level, five.session_expiry, five.clean_start) == (5, 3600, True)
        assert (five.receive_maximum, five.max_packet_size, five.topic_alias_maximum) == (7, 5000, 3)
        old = state(f"{alice_id}/v311")
        assert (old.protocol_level, old.session_expiry, old.clean_start) == (4, 0, True)
        assert (old.receive_maximum, old.max_packet_size, old.topic_alias_maximum) == (65535, None, 0)
        # both are read by callbacks as their bytes arrive (broker/mqtt/feed.py), with no reading
        # task of their own, and MQTT 5 answers there as ever
        for session, kind in ((five, Mqtt5Handler), (old, MqchatHandler)):
            handler = broker._get_handler(session)
            # a session is listed from its CONNACK; its feed comes a step later (``handler.start``)
            protocol = handler.writer.transport.get_protocol()
            assert wait_until(lambda protocol=protocol: isinstance(protocol.feed, FrameFeed))
            assert type(handler) is kind and handler._reader_task is None
            # every name each sets is in its class's table (broker/mqtt/lean.py): none keeps a dict
            # of its own, which would make every attribute read on the relay path a dict lookup
            assert spilled(session) == set() and spilled(handler) == set()
            # the socket's reads go to the feed without the protocol's own ``data_received`` between
            assert protocol.data_received == protocol.feed.data_received and spilled(protocol) == set()
        v5.send(packet(0xC0, b""))
        assert v5.expect(PINGRESP).body == b""
    finally:
        v5.close()
        v311.close()
