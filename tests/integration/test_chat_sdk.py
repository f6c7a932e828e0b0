"""Two people chat through the real SDK against the real node."""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client_sdk import Client, Message, Receipt, Status, Typing
from client_sdk._settings import MqttVersion
from tests.harness import RunningNode, connect, node_settings, wait_until


def next_message(client: Client, timeout: float = 10) -> Message:
    for message in client.messages(timeout=timeout):
        return message
    raise AssertionError("no message arrived")


def test_alice_and_bob_chat_both_ways_with_sent_delivered_read(
    node: RunningNode, mqtt_version: MqttVersion
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with (
        connect(node, alice_id, mqtt_version=mqtt_version) as alice,
        connect(node, bob_id, mqtt_version=mqtt_version) as bob,
    ):
        # alice -> bob: sent, then delivered (bob's SDK acknowledges by itself), then read
        out = alice.send(bob_id, "hello bob")
        out.wait("sent", timeout=10)
        received = next_message(bob)
        assert (received.sender, received.recipient, received.text) == (alice_id, bob_id, "hello bob")
        assert received.id == out.message_id and received.seq == out.seq == 1
        out.wait("delivered", timeout=10)
        bob.mark_read(received)
        out.wait("read", timeout=10)
        assert out.status is Status.READ

        # bob -> alice, the same way back
        reply = bob.send(alice_id, "hi alice")
        got = next_message(alice)
        assert got.text == "hi alice" and got.seq == 2 and got.conversation == received.conversation
        reply.wait("delivered", timeout=10)
        alice.mark_read(got.id)
        reply.wait(Status.READ, timeout=10)


def test_offline_bob_gets_missed_messages_in_order_once_and_alice_gets_receipts_later(
    node: RunningNode,
    mqtt_version: MqttVersion,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    # Given bob is offline while alice sends three messages, then goes offline herself
    with connect(node, alice_id, mqtt_version=mqtt_version) as alice:
        outs = [alice.send(bob_id, f"message {i}") for i in range(3)]
        for out in outs:
            out.wait("sent", timeout=10)
        alice_cursor = alice.cursor

    # When bob comes back, he gets the three in order, once
    with connect(node, bob_id, mqtt_version=mqtt_version) as bob:
        texts = [m.text for m in bob.messages(timeout=2)]
        assert texts == ["message 0", "message 1", "message 2"]
        # his SDK said delivered for them
    # and a second login of the same device state does not replay them
    with connect(node, bob_id, mqtt_version=mqtt_version, cursor=bob.cursor) as bob_again:
        assert list(bob_again.messages(timeout=1)) == []

    # Then alice, back online later, gets the delivered receipts she missed
    with connect(node, alice_id, mqtt_version=mqtt_version, cursor=alice_cursor) as alice:
        receipts = [e for e in alice.events(timeout=2) if isinstance(e, Receipt)]
        assert sorted((r.seq, r.status) for r in receipts) == [(i, Status.DELIVERED) for i in (1, 2, 3)]
        assert all(r.by == bob_id for r in receipts)


def test_messages_sent_while_disconnected_are_resent_and_stored_once(
    tmp_path: Path, mqtt_version: MqttVersion
) -> None:
    # a node on a fixed port, so the client can reconnect to it after a restart
    first = RunningNode(node_settings(tmp_path)).start()
    port = first.port
    alice_id, _ = first.add_user("alice")
    bob_id, _ = first.add_user("bob")
    tokens = dict(first.tokens)
    first.close()
    node = RunningNode(node_settings(tmp_path, **{"broker.mqtt_port": port})).start()
    node.tokens = tokens
    try:
        with (
            connect(node, alice_id, mqtt_version=mqtt_version) as alice,
            connect(node, bob_id, mqtt_version=mqtt_version) as bob,
        ):
            # When the node goes away, alice keeps sending
            node.stop()
            assert wait_until(lambda: not alice.connected, 10)
            pending = [alice.send(bob_id, f"while down {i}") for i in range(3)]
            assert all(p.status is None for p in pending)

            # Then when it is back, her SDK resends them and each is stored once
            node.start()
            for p in pending:
                p.wait("sent", timeout=20)
            texts = [m.text for m in bob.messages(timeout=3)]
            assert texts == [f"while down {i}" for i in range(3)]
    finally:
        node.close()


def test_over_mqtt_5_a_refused_command_is_refused_in_its_puback_too(
    tmp_path: Path, mqtt_version: MqttVersion, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a node that lets a user send a burst of 3 commands, then 2 a second
    settings = node_settings(tmp_path, **{"limits.commands_burst": 3, "limits.commands_per_second": 2.0})
    node = RunningNode(settings).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        caplog.set_level(logging.WARNING, logger="client_sdk")
        with connect(node, alice_id, mqtt_version=mqtt_version) as alice, connect(node, bob_id) as bob:
            # When alice sends more at once than that
            outs = [alice.send(bob_id, f"flood {i}") for i in range(6)]

            # Then on both versions her SDK waits out the inbox's `rate_limited` errors and resends,
            # so every message goes, once, in order
            for out in outs:
                out.wait("sent", timeout=30)
            assert [m.text for m in bob.messages(timeout=2)] == [f"flood {i}" for i in range(6)]

        # and over MQTT 5 the server's PUBACKs said so as well (quota exceeded): the SDK logged them
        pubacks = [r.getMessage() for r in caplog.records if "(PUBACK)" in r.getMessage()]
        if mqtt_version == "5":
            assert pubacks and all(line.endswith("Quota exceeded") for line in pubacks)
        else:
            assert pubacks == []
    finally:
        node.close()


def test_typing_indicator_reaches_the_other_side(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.typing(bob_id)
        typing = next(e for e in bob.events(timeout=5) if isinstance(e, Typing))
        assert (typing.sender, typing.state) == (alice_id, "composing")


def test_presence_through_the_sdk(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice:
        alice.send(bob_id, "hi").wait("sent", timeout=10)  # contacts see each other's presence
        alice.watch_presence(bob_id)
        with connect(node, bob_id):
            online = alice.wait_presence(bob_id, "online", timeout=10)
            assert online.online
        offline = alice.wait_presence(bob_id, "offline", timeout=10)
        assert not offline.online and offline.last_seen >= online.last_seen
        presence = alice.presence(bob_id)
        assert presence is not None and presence.status == "offline"


def test_both_devices_of_a_user_get_the_message(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with (
        connect(node, alice_id) as alice,
        connect(node, bob_id, device="phone") as phone,
        connect(node, bob_id, device="laptop") as laptop,
    ):
        alice.send(bob_id, "to every device").wait("delivered", timeout=10)
        assert next_message(phone).text == "to every device"
        assert next_message(laptop).text == "to every device"


def test_the_state_file_resumes_without_duplicates(node: RunningNode, tmp_path: Path) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    state = tmp_path / "bob-state.json"
    with connect(node, alice_id) as alice:
        alice.send(bob_id, "one").wait("sent", timeout=10)
        with connect(node, bob_id, state_file=state) as bob:
            assert [m.text for m in bob.messages(timeout=1)] == ["one"]
        alice.send(bob_id, "two").wait("sent", timeout=10)

    with connect(node, bob_id, state_file=state) as bob:
        assert [m.text for m in bob.messages(timeout=1)] == ["two"]


def test_chat_over_websocket(node: RunningNode, mqtt_version: MqttVersion) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    ws: dict[str, Any] = {"transport": "websockets", "mqtt_version": mqtt_version}
    alice = Client("127.0.0.1", node.ws_port, user=alice_id, token=node.tokens[alice_id], **ws)
    bob = Client("127.0.0.1", node.ws_port, user=bob_id, token=node.tokens[bob_id], **ws)
    with alice, bob:
        out = alice.send(bob_id, "over websocket")
        assert next_message(bob).text == "over websocket"
        out.wait("delivered", timeout=10)


@pytest.fixture
def tls_node(tmp_path: Path) -> Iterator[tuple[RunningNode, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    node = RunningNode(node_settings(tmp_path, **{"broker.certfile": cert, "broker.keyfile": key})).start()
    yield node, cert
    node.close()


def test_chat_over_tls_on_tcp_and_websocket(tls_node: tuple[RunningNode, Path]) -> None:
    node, cert = tls_node
    context = ssl.create_default_context(cafile=str(cert))
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice = Client("127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id], tls=context)
    bob = Client(
        "127.0.0.1", node.ws_port, user=bob_id, token=node.tokens[bob_id], tls=context, transport="websockets"
    )
    with alice, bob:
        out = alice.send(bob_id, "encrypted")
        assert next_message(bob).text == "encrypted"
        out.wait("delivered", timeout=10)
