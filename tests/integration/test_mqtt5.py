"""MQTT 5 against the real node: paho in MQTTv5 mode (and Debian's mosquitto clients), next to 3.1.1."""

from __future__ import annotations

import time
import uuid

from tests.harness import RunningNode
from tests.plain import PlainClient


def _send(to: str, text: str) -> dict[str, object]:
    return {"v": 1, "type": "send", "id": uuid.uuid4().hex, "to": to, "text": text}


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


def test_puback_reason_codes(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    alice = PlainClient(node.port, alice_id, alice_token, mqtt5=True)
    try:
        assert alice.publish(_send("nobody", "x"), topic=f"chat/{alice_id}x/out") == 0x87
        assert alice.publish(b"not json") == 0x99
        assert alice.subscribe("chat/someone-else/in") == [0x87]
    finally:
        alice.close()
