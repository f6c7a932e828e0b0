"""MQTT 5 on every listener: WebSocket (the browser's), TLS on TCP and TLS on WebSocket."""

from __future__ import annotations

import json
import ssl
import struct
import uuid
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from websockets.sync.client import connect as ws_connect

from tests.harness import RunningNode
from tests.integration import test_chat_sdk
from tests.plain import PlainClient
from tests.raw_mqtt5 import packet, props, utf8

tls_node = test_chat_sdk.tls_node  # the fixture: a node with TLS on its three listeners


def _send(to: str, text: str) -> dict[str, object]:
    return {"v": 1, "type": "send", "id": uuid.uuid4().hex, "to": to, "text": text}


def _alias(alias: int) -> Properties:
    built = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    built.TopicAlias = alias
    return built


def _chat(port: int, node: RunningNode, *, transport: str, tls: ssl.SSLContext | None = None) -> None:
    """A v5 user on ``port`` chats with a 3.1.1 user on TCP, and gets MQTT 5's answers."""
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(port, alice_id, alice_token, mqtt5=True, transport=transport, tls=tls)
    bob = PlainClient(node.port, bob_id, bob_token, tls=tls)
    try:
        assert alice.connack.MaximumQoS == 1
        assert alice.inbox() == [1]
        assert alice.subscribe(f"chat/{bob_id}/in") == [0x87]
        bob.inbox()
        assert alice.publish(_send(bob_id, f"over {transport}")) == 0
        assert bob.expect_type("message")["message"]["text"] == f"over {transport}"
        # a topic alias set, then used alone
        outbox = f"chat/{alice_id}/out"
        assert alice.publish(_send(bob_id, "alias set"), topic=outbox, properties=_alias(1)) == 0
        assert alice.publish(_send(bob_id, "alias used"), topic="", properties=_alias(1)) == 0
        assert bob.expect_type("message")["message"]["text"] == "alias set"
        assert bob.expect_type("message")["message"]["text"] == "alias used"
        assert alice.publish(b"not json") == 0x99
        bob.send(alice_id, "back to you")
        got = alice.expect(lambda t, p: isinstance(p, dict) and p.get("type") == "message")
        assert got["message"]["text"] == "back to you"
        # a second connection of her device takes over: DISCONNECT 0x8E
        again = PlainClient(port, alice_id, alice_token, mqtt5=True, transport=transport, tls=tls)
        try:
            assert alice.disconnects.get(timeout=10) == 0x8E
        finally:
            again.close()
    finally:
        alice.close()
        bob.close()


def test_mqtt5_over_websocket(node: RunningNode) -> None:
    _chat(node.ws_port, node, transport="websockets")


def test_mqtt5_over_tls_and_secure_websocket(tls_node: tuple[RunningNode, Path]) -> None:
    node, cert = tls_node
    context = ssl.create_default_context(cafile=str(cert))
    _chat(node.port, node, transport="tcp", tls=context)
    _chat(node.ws_port, node, transport="websockets", tls=context)


def _ws_connect(node: RunningNode, user: str, connect_props: bytes = b"\x00") -> tuple[object, bytes]:
    ws = ws_connect(f"ws://127.0.0.1:{node.ws_port}/", subprotocols=["mqtt"])  # type: ignore[list-item]
    body = utf8("MQTT") + bytes((5, 0xC2)) + struct.pack("!H", 60) + connect_props + utf8(f"{user}/ws")
    body += utf8(user) + utf8(node.tokens[user])
    ws.send(packet(0x10, body))
    return ws, bytes(ws.recv(timeout=10))  # type: ignore[arg-type]


def test_bad_input_over_websocket_is_closed_with_its_reason(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    ws, connack = _ws_connect(node, alice_id)
    assert connack[:4] == b"\x20" + bytes((connack[1],)) + b"\x00\x00"  # accepted
    body = utf8(f"chat/{alice_id}/out") + b"\x00\x01" + b"\x03\x23\x00\x00" + b"{}"  # topic alias 0
    ws.send(packet(0x32, body))  # type: ignore[attr-defined]
    assert bytes(ws.recv(timeout=10))[:3] == b"\xe0\x02\x94"  # type: ignore[attr-defined]
    ws.close()  # type: ignore[attr-defined]

    # Receive Maximum 0 at CONNECT: CONNACK 0x82
    ws, connack = _ws_connect(node, alice_id, b"\x03\x21\x00\x00")
    assert connack[3] == 0x82
    ws.close()  # type: ignore[attr-defined]

    # a packet over the server's maximum: DISCONNECT 0x95
    ws, connack = _ws_connect(node, alice_id, props(PacketTypes.CONNECT, ReceiveMaximum=5))
    assert connack[3] == 0
    ws.send(b"\x30" + bytes([0xFF, 0xFF, 0xFF, 0x7F]))  # type: ignore[attr-defined]
    assert bytes(ws.recv(timeout=10))[:3] == b"\xe0\x02\x95"  # type: ignore[attr-defined]
    ws.close()  # type: ignore[attr-defined]


def test_receive_maximum_over_websocket(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    ws, connack = _ws_connect(node, alice_id, props(PacketTypes.CONNECT, ReceiveMaximum=1))
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        assert connack[3] == 0
        ws.send(packet(0x82, b"\x00\x01\x00" + utf8(f"chat/{alice_id}/in") + b"\x01"))  # type: ignore[attr-defined]
        assert bytes(ws.recv(timeout=10))[0] == 0x90  # type: ignore[attr-defined]
        bob.send(alice_id, "one")
        bob.send(alice_id, "two")
        first = bytes(ws.recv(timeout=10))  # type: ignore[attr-defined]
        assert first[0] >> 4 == 3
        try:
            ws.recv(timeout=1.0)  # type: ignore[attr-defined]
            raise AssertionError("a second delivery while the first is unacknowledged")
        except TimeoutError:
            pass
        size = struct.unpack("!H", first[2:4])[0]
        packet_id = first[4 + size : 6 + size]
        ws.send(b"\x40\x02" + packet_id)  # type: ignore[attr-defined]
        second = bytes(ws.recv(timeout=10))  # type: ignore[attr-defined]
        assert b"two" in second and json.loads(second[second.index(b"{") :])["message"]["text"] == "two"
    finally:
        ws.close()  # type: ignore[attr-defined]
        bob.close()


def test_a_burst_over_websocket_arrives_whole_and_in_order(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.ws_port, alice_id, alice_token, mqtt5=True, transport="websockets")
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        alice.inbox()
        for i in range(40):
            bob.send(alice_id, f"n{i}")
        texts = [
            alice.expect(lambda t, p: isinstance(p, dict) and p.get("type") == "message")["message"]["text"]
            for _ in range(40)
        ]
        assert texts == [f"n{i}" for i in range(40)]
        # and her own commands, sent while deliveries arrive, are all acknowledged
        codes = [alice.publish(_send(bob_id, f"r{i}")) for i in range(20)]
        assert codes == [0] * 20
    finally:
        alice.close()
        bob.close()
