"""Persistent sessions kept in the store: a device that connects with clean session 0 gets what it
missed on its next connect (CONNACK session present, its inbox subscription restored, every event
after the last it acknowledged, once, in order), with Debian's mosquitto_sub and with paho."""

from __future__ import annotations

import json
import queue
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.harness import RunningNode, need, node_settings, wait_until
from tests.plain import PlainClient
from tests.raw_mqtt import read_exactly, utf8


def _sub(node: RunningNode, user: str, device: str, *extra: str) -> subprocess.Popen[str]:
    """``mosquitto_sub -c -q 1`` of ``user``'s inbox as ``<user>/<device>`` (one JSON event a line)."""
    login = ["-u", user, "-P", node.tokens[user], "-i", f"{user}/{device}"]
    persistent = ["-c", "-q", "1", "-t", f"chat/{user}/in"]
    return subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(node.port), *login, *persistent, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _online(node: RunningNode, client_id: str) -> bool:
    presence = node.node.presence
    return presence is not None and presence.connected_at(client_id) is not None


def _flush(node: RunningNode) -> None:
    """Write the node's session cursors now (else within ``sessions.ack_flush``)."""
    sessions = node.node.sessions
    assert sessions is not None
    node.call(sessions.flush())


def _send_all(alice: PlainClient, to: str, texts: list[str]) -> None:
    """Send each text and wait until the server stored it (its ``sent``)."""
    for text in texts:
        cid = alice.send(to, text)
        alice.expect_type("sent", ref=cid)


class Persistent:
    """A paho client with a persistent session that never subscribes: what it gets comes from the
    restored subscription. 3.1.1 with clean_session=False; with ``expiry``, MQTT 5 with that
    Session Expiry Interval (and Clean Start 0). ``acks`` False: it receives without acknowledging
    (paho's manual acknowledgement), as a device that lost power before its PUBACKs."""

    def __init__(
        self,
        port: int,
        user: str,
        token: str,
        device: str,
        *,
        acks: bool = True,
        expiry: int | None = None,
        websocket: bool = False,
    ) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.dups: list[bool] = []
        self._connack: queue.Queue[tuple[Any, Any]] = queue.Queue()
        client_id = f"{user}/{device}"
        transport = "websockets" if websocket else "tcp"
        if expiry is None:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=False,
                manual_ack=not acks,
                transport=transport,
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=not acks,
                transport=transport,
            )
        self.client.username_pw_set(user, token)
        self.client.on_connect = lambda c, u, flags, rc, p: self._connack.put((flags, rc))
        self.client.on_message = self._on_message
        if expiry is None:
            self.client.connect("127.0.0.1", port, keepalive=30)
        else:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = expiry
            self.client.connect("127.0.0.1", port, keepalive=30, clean_start=False, properties=props)
        self.client.loop_start()
        flags, rc = self._connack.get(timeout=10)
        assert not rc.is_failure, rc
        self.session_present = bool(flags.session_present)

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.dups.append(bool(msg.dup))
        self.events.put(json.loads(msg.payload))

    def take(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [self.events.get(timeout=timeout) for _ in range(n)]

    def quiet(self, settle: float = 0.5) -> list[dict[str, Any]]:
        time.sleep(settle)
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    def close(self, *, expiry: int | None = None) -> None:
        """DISCONNECT (MQTT 5: with ``expiry`` as its new Session Expiry Interval)."""
        if expiry is None:
            self.client.disconnect()
        else:
            props = Properties(PacketTypes.DISCONNECT)
            props.SessionExpiryInterval = expiry
            self.client.disconnect(properties=props)
        self.client.loop_stop()


def _texts(events: list[dict[str, Any]]) -> list[str]:
    return [e["message"]["text"] for e in events if e.get("type") == "message"]


@pytest.fixture
def chat(node: RunningNode) -> Iterator[tuple[RunningNode, str, str, PlainClient]]:
    """A node, alice (online, plain MQTT) and bob (offline)."""
    alice_id, alice_token = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token)
    alice.inbox()
    yield node, alice_id, bob_id, alice
    alice.close()


def test_mosquitto_sub_c_gets_what_was_sent_while_it_was_away_once_in_order(chat: Any) -> None:
    need(shutil.which("mosquitto_sub") is not None, "mosquitto-clients is not installed")
    node, _alice_id, bob, alice = chat
    # Given bob's sensor connected once with clean session 0, then stopped
    first = _sub(node, bob, "sensor")
    assert wait_until(lambda: _online(node, f"{bob}/sensor"))
    first.terminate()
    first.communicate(timeout=10)
    assert wait_until(lambda: not _online(node, f"{bob}/sensor"))

    # When alice sends him three messages while he is away
    _send_all(alice, bob, ["one", "two", "three"])

    # Then the same mosquitto_sub -c gets each of them, once, in order, with nothing else to do
    again = _sub(node, bob, "sensor", "-W", "4")
    out, err = again.communicate(timeout=20)
    events = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert _texts(events) == ["one", "two", "three"], (out, err)
    assert [e["cursor"] for e in events] == sorted({e["cursor"] for e in events})

    # And what it acknowledged is not sent again on the next connect
    third = _sub(node, bob, "sensor", "-W", "2")
    out, _ = third.communicate(timeout=20)
    assert out.strip() == ""


def test_paho_resumes_without_subscribing_and_goes_on_live(chat: Any) -> None:
    node, _alice_id, bob, alice = chat
    token = node.tokens[bob]
    # Given bob's device made its persistent session (nothing to resume the first time)
    device = Persistent(node.port, bob, token, "meter")
    assert not device.session_present
    device.close()
    assert wait_until(lambda: not _online(node, f"{bob}/meter"))
    _send_all(alice, bob, [f"away {i}" for i in range(5)])

    # When it connects again, without a SUBSCRIBE
    device = Persistent(node.port, bob, token, "meter")

    # Then the session is present and what it missed arrives, then live messages, no gap, no repeat
    assert device.session_present
    assert _texts(device.take(5)) == [f"away {i}" for i in range(5)]
    assert device.dups == [False] * 5  # never sent before
    _send_all(alice, bob, ["live 1", "live 2"])
    assert _texts(device.take(2)) == ["live 1", "live 2"]
    assert device.quiet() == []
    device.close()


def test_events_sent_but_not_acknowledged_come_again_with_dup(chat: Any) -> None:
    node, _alice_id, bob, alice = chat
    token = node.tokens[bob]
    device = Persistent(node.port, bob, token, "meter")
    device.close()
    _send_all(alice, bob, ["a", "b"])

    # Given the device received both without acknowledging them (it lost power)
    silent = Persistent(node.port, bob, token, "meter", acks=False)
    assert _texts(silent.take(2)) == ["a", "b"]
    silent.client.loop_stop()
    silent.client.socket().close()  # type: ignore[union-attr]
    assert wait_until(lambda: not _online(node, f"{bob}/meter"))
    _flush(node)

    # When it comes back
    device = Persistent(node.port, bob, token, "meter")

    # Then both come again, marked as redeliveries
    assert _texts(device.take(2)) == ["a", "b"]
    assert device.dups == [True, True]
    device.close()


def test_a_clean_session_connect_ends_the_stored_session(chat: Any) -> None:
    node, _alice_id, bob, alice = chat
    token = node.tokens[bob]
    Persistent(node.port, bob, token, "meter").close()
    _send_all(alice, bob, ["before"])

    # When the device connects once with clean session 1
    clean = PlainClient(node.port, bob, token, device="meter")
    clean.close()
    _send_all(alice, bob, ["after"])

    # Then its next persistent connect starts a new session: nothing is replayed
    device = Persistent(node.port, bob, token, "meter")
    assert not device.session_present
    assert device.quiet() == []
    device.close()


def test_a_client_id_of_another_user_or_not_user_slash_device_is_refused(chat: Any) -> None:
    node, alice_id, bob, alice = chat
    token = node.tokens[bob]
    Persistent(node.port, bob, token, "meter").close()
    _send_all(alice, bob, ["for bob"])

    # alice cannot open (or read) bob's session, nor can bob use a client id outside the rule
    for user, client_token, device_of in ((alice_id, node.tokens[alice_id], bob), (bob, token, None)):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{device_of}/meter" if device_of else "meter",
            clean_session=False,
        )
        client.username_pw_set(user, client_token)
        answers: queue.Queue[Any] = queue.Queue()
        client.on_connect = lambda c, u, f, rc, p, answers=answers: answers.put(rc)
        client.connect("127.0.0.1", node.port)
        client.loop_start()
        assert answers.get(timeout=10).is_failure
        client.loop_stop()

    # and bob's session still has his message
    device = Persistent(node.port, bob, token, "meter")
    assert device.session_present
    assert _texts(device.take(1)) == ["for bob"]
    device.close()


def test_a_session_is_resumed_after_a_node_restart(tmp_path: Path) -> None:
    running = RunningNode(node_settings(tmp_path)).start()
    try:
        alice_id, alice_token = running.add_user("alice")
        bob, token = running.add_user("bob")
        Persistent(running.port, bob, token, "meter").close()
        alice = PlainClient(running.port, alice_id, alice_token)
        alice.inbox()
        _send_all(alice, bob, ["before restart 1", "before restart 2"])
        alice.close()
        device = Persistent(running.port, bob, token, "meter")
        assert _texts(device.take(2)) == ["before restart 1", "before restart 2"]
        device.close()

        # When the node restarts (what the device acknowledged is in the store) and alice writes
        running.stop()
        running.call(running.node.start())
        alice = PlainClient(running.port, alice_id, alice_token)
        alice.inbox()
        _send_all(alice, bob, ["after restart"])
        alice.close()

        # Then the device gets only what it has not acknowledged
        device = Persistent(running.port, bob, token, "meter")
        assert device.session_present
        assert _texts(device.take(1)) == ["after restart"]
        assert device.quiet() == []
        device.close()
    finally:
        running.close()


def test_an_expired_session_is_not_resumed(tmp_path: Path) -> None:
    running = RunningNode(node_settings(tmp_path, **{"sessions.persistent_ttl": 0.5})).start()
    try:
        bob, token = running.add_user("bob")
        Persistent(running.port, bob, token, "meter").close()
        assert wait_until(lambda: not _online(running, f"{bob}/meter"))
        _flush(running)
        time.sleep(1.0)

        device = Persistent(running.port, bob, token, "meter")
        assert not device.session_present
        device.close()
    finally:
        running.close()


def _group(alice: PlainClient, members: list[str]) -> str:
    """A group of alice's with ``members`` (contacts of hers: she wrote to each first)."""
    for member in members:
        _send_all(alice, member, [f"hello {member}"])
    alice.publish({"v": 1, "type": "group_create", "id": "g1", "name": "crew", "members": members})
    return str(alice.expect_type("group", ref="g1")["group"]["id"])


def test_the_offline_period_spans_several_messages_of_a_group(chat: Any) -> None:
    node, _alice_id, bob, alice = chat
    carol, carol_token = node.add_user("carol")
    token = node.tokens[bob]
    Persistent(node.port, bob, token, "meter").close()
    group = _group(alice, [bob, carol])
    with_carol = PlainClient(node.port, carol, carol_token)
    with_carol.inbox()

    # While bob is away, alice and carol write to the group, and alice to bob alone
    for i, (sender, to) in enumerate([(alice, group), (with_carol, group), (alice, bob), (alice, group)]):
        _send_all(sender, to, [f"text {i}"])
    with_carol.close()

    # Then bob's device gets his hello, the group's creation and the four texts, in cursor order
    device = Persistent(node.port, bob, token, "meter")
    events = device.take(6)
    assert [e["type"] for e in events] == ["message", "group", "message", "message", "message", "message"]
    assert _texts(events) == [f"hello {bob}", "text 0", "text 1", "text 2", "text 3"]
    assert [e["cursor"] for e in events] == list(range(events[0]["cursor"], events[0]["cursor"] + 6))
    assert device.quiet() == []
    device.close()


def test_mqtt5_session_expiry_resumes_with_dup_and_after_a_node_restart(tmp_path: Path) -> None:
    running = RunningNode(node_settings(tmp_path)).start()
    try:
        alice_id, alice_token = running.add_user("alice")
        bob, token = running.add_user("bob")
        # Given bob's MQTT 5 device connected with a Session Expiry Interval of an hour
        device = Persistent(running.port, bob, token, "v5", expiry=3600)
        assert not device.session_present
        device.close()
        alice = PlainClient(running.port, alice_id, alice_token)
        alice.inbox()
        _send_all(alice, bob, ["v5 one", "v5 two"])

        # When it comes back, it gets both, and acknowledges only the first (then loses power)
        silent = Persistent(running.port, bob, token, "v5", expiry=3600, acks=False)
        assert silent.session_present
        assert _texts(silent.take(2)) == ["v5 one", "v5 two"]
        silent.client.ack(1, 1)  # paho's first message id from the server is 1
        time.sleep(0.2)
        silent.client.loop_stop()
        silent.client.socket().close()  # type: ignore[union-attr]
        assert wait_until(lambda: not _online(running, f"{bob}/v5"))

        # And the node restarts, and alice writes once more
        alice.close()
        running.stop()
        running.call(running.node.start())
        alice = PlainClient(running.port, alice_id, alice_token)
        alice.inbox()
        _send_all(alice, bob, ["v5 three"])
        alice.close()

        # Then the device resumes: the unacknowledged one again with DUP, then the new one
        device = Persistent(running.port, bob, token, "v5", expiry=3600)
        assert device.session_present
        assert _texts(device.take(2)) == ["v5 two", "v5 three"]
        assert device.dups == [True, False]
        assert device.quiet() == []

        # And a DISCONNECT with a Session Expiry Interval of 0 ends the session
        device.close(expiry=0)
        assert wait_until(lambda: not _online(running, f"{bob}/v5"))
        again = Persistent(running.port, bob, token, "v5", expiry=3600)
        assert not again.session_present
        again.close()
    finally:
        running.close()


def test_mqtt5_without_a_session_expiry_keeps_no_session(chat: Any) -> None:
    node, _alice_id, bob, alice = chat
    token = node.tokens[bob]
    Persistent(node.port, bob, token, "v5", expiry=0).close()
    _send_all(alice, bob, ["not kept"])

    device = Persistent(node.port, bob, token, "v5", expiry=0)
    assert not device.session_present
    assert device.quiet() == []  # no subscription was restored
    device.close()


@pytest.mark.parametrize("expiry", [None, 3600], ids=["mqtt311", "mqtt5"])
def test_a_session_resumes_over_websocket(chat: Any, expiry: int | None) -> None:
    node, _alice_id, bob, alice = chat
    token = node.tokens[bob]
    Persistent(node.ws_port, bob, token, "browserless", expiry=expiry, websocket=True).close()
    assert wait_until(lambda: not _online(node, f"{bob}/browserless"))
    _send_all(alice, bob, ["over ws 1", "over ws 2"])

    device = Persistent(node.ws_port, bob, token, "browserless", expiry=expiry, websocket=True)
    assert device.session_present
    assert _texts(device.take(2)) == ["over ws 1", "over ws 2"]
    _send_all(alice, bob, ["live over ws"])
    assert _texts(device.take(1)) == ["live over ws"]
    device.close()
    assert wait_until(lambda: not _online(node, f"{bob}/browserless"))
    _flush(node)

    # what it acknowledged over WebSocket is not sent again
    again = Persistent(node.ws_port, bob, token, "browserless", expiry=expiry, websocket=True)
    assert again.quiet() == []
    again.close()


def test_clean_session_0_with_an_empty_client_id_is_refused(chat: Any) -> None:
    node, _alice_id, bob, _alice = chat
    # A raw 3.1.1 CONNECT: clean session 0, an empty client id, bob's credentials
    body = utf8("MQTT") + bytes([4, 0b11000000]) + struct.pack("!H", 30) + utf8("")
    body += utf8(bob) + utf8(node.tokens[bob])
    with socket.create_connection(("127.0.0.1", node.port)) as sock:
        sock.settimeout(10)
        sock.sendall(bytes([0x10, len(body)]) + body)
        # CONNACK 2: identifier rejected [MQTT-3.1.3-8], and no session was made for anyone
        assert read_exactly(sock, 4) == b"\x20\x02\x00\x02"
    device = Persistent(node.port, bob, node.tokens[bob], "meter")
    assert not device.session_present
    device.close()
