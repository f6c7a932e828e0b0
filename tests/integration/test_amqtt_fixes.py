"""The amqtt defects that broker/mqtt/server.py works around, shown against the real node."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from broker.mqtt.properties import PublishProps
from tests.harness import RunningNode, wait_until
from tests.plain import PlainClient


def test_retained_presence_reaches_only_clients_that_subscribed(node: RunningNode) -> None:
    # Given someone watching bob's presence, and bob online (so a retained presence exists)
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    assert watcher.subscribe(f"presence/{bob_id}") == [1]
    bob = PlainClient(node.port, bob_id, bob_token)

    # When carol connects and subscribes only to her inbox
    carol_id, carol_token = node.add_user("carol")
    carol = PlainClient(node.port, carol_id, carol_token)
    carol.inbox()

    # Then she gets no presence (stock amqtt sent her every retained message matching anyone's filter)
    assert [t for t, _ in carol.drain(0.5) if t.startswith("presence/")] == []
    for client in (watcher, bob, carol):
        client.close()


def test_client_wills_are_not_published(node: RunningNode) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.harness import wait_until

    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    bob = PlainClient(node.port, bob_id, bob_token)
    bob.inbox()
    # a will aimed at bob's inbox, which alice may not publish to
    evil = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{alice_id}/evil")
    evil.username_pw_set(alice_id, alice_token)
    evil.will_set(f"chat/{bob_id}/in", b'{"v":1,"type":"message","cursor":1,"message":{"text":"forged"}}', 1)
    connected: list[object] = []
    evil.on_connect = lambda c, u, f, rc, p: connected.append(rc)
    evil.connect("127.0.0.1", node.port)
    evil.loop_start()
    assert wait_until(lambda: bool(connected))
    evil.loop_stop()
    evil.socket().close()  # dies without DISCONNECT: stock amqtt would publish the will

    assert [p for _, p in bob.drain(1.0)] == []
    bob.close()


# ---------------------------------------------------------------------------------------------
# The bare MqchatBroker (anonymous logins, no ACL), for what needs topics the node's ACL refuses.


class _Recorder:
    def __init__(self) -> None:
        self.published: list[tuple[str | None, str, bytes]] = []

    def accept(
        self,
        user: str | None,
        topic: str,
        data: bytes | bytearray,
        client_id: str | None = None,
        props: PublishProps | None = None,
    ) -> int:
        self.published.append((user, topic, bytes(data)))
        return 0


class _BareBroker:
    def __init__(self) -> None:
        import asyncio
        import threading

        self.gate = _Recorder()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.broker = self.call(self._start())
        port = self.broker.bound_port("default")
        assert port is not None
        self.port: int = port

    async def _start(self) -> Any:
        from broker.mqtt.server import MqchatBroker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        broker = MqchatBroker(config, gate=self.gate)
        await broker.start()
        return broker

    def call(self, coro: Any) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def retain(self, topic: str, data: bytes) -> None:
        self.call(self.broker.retain_message(None, topic, data, 1))

    def close(self) -> None:
        self.call(self.broker.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def bare() -> Iterator[_BareBroker]:
    running = _BareBroker()
    try:
        yield running
    finally:
        running.close()


def test_retained_messages_reach_exact_and_wildcard_subscribers(bare: _BareBroker) -> None:
    # Given a retained presence for bob and one for dave
    bare.retain("presence/bob", b'{"status":"online"}')
    bare.retain("presence/dave", b'{"status":"offline"}')
    exact = PlainClient(bare.port, "exact", "x")
    wildcard = PlainClient(bare.port, "wildcard", "x")
    other = PlainClient(bare.port, "other", "x")

    # When they subscribe to bob's topic, to every presence, and to a topic with nothing retained
    assert exact.subscribe("presence/bob") == [1]
    assert wildcard.subscribe("presence/+") == [1]
    assert other.subscribe("presence/carol") == [1]

    # Then the exact subscriber gets bob's alone, the wildcard one both, the other nothing
    assert exact.drain(0.5) == [("presence/bob", {"status": "online"})]
    assert sorted(wildcard.drain(0.5)) == [
        ("presence/bob", {"status": "online"}),
        ("presence/dave", {"status": "offline"}),
    ]
    assert other.drain(0.5) == []
    for client in (exact, wildcard, other):
        client.close()


def test_subscribe_and_unsubscribe_are_acknowledged_and_take_effect(bare: _BareBroker) -> None:
    # Given a client subscribed to two filters in one SUBSCRIBE
    client = PlainClient(bare.port, "sub", "x")
    result, mid = client.client.subscribe([("news/a", 1), ("news/b", 0)])
    assert result == 0
    with client._lock:
        waiter = client._subacks.setdefault(mid, queue.Queue())
    assert waiter.get(timeout=10) == [1, 0]

    # When the server publishes to it, then after an UNSUBSCRIBE
    bare.loop.call_soon_threadsafe(bare.broker.publish_nowait, "news/a", b'"first"')
    assert client.expect(lambda t, p: t == "news/a" and p == "first") == "first"
    unsubscribed = threading.Event()
    client.client.on_unsubscribe = lambda *args: unsubscribed.set()
    client.client.unsubscribe("news/a")
    assert unsubscribed.wait(10)
    bare.loop.call_soon_threadsafe(bare.broker.publish_nowait, "news/a", b'"second"')

    # Then only the first arrived
    assert client.drain(0.5) == []
    client.close()


def test_a_session_is_dropped_when_its_connection_ends(bare: _BareBroker) -> None:
    # Given two subscribed clients
    leaving = PlainClient(bare.port, "leaving", "x", device="a")
    dying = PlainClient(bare.port, "dying", "x", device="b")
    leaving.subscribe("chat/leaving/in")
    dying.subscribe("chat/dying/in")
    assert sorted(bare.broker.sessions) == ["dying/b", "leaving/a"]

    # When one disconnects cleanly and the other's socket just closes
    leaving.close()
    dying.client.loop_stop()
    sock = dying.client.socket()
    assert sock is not None
    sock.close()

    # Then both sessions and their subscriptions are gone (stock amqtt kept them until its
    # once-a-second scan of every session)
    assert wait_until(lambda: not bare.broker.sessions and not bare.broker.subscriptions)


def test_publishes_of_every_qos_reach_the_gate_and_are_acknowledged(bare: _BareBroker) -> None:
    client = PlainClient(bare.port, "pub", "x")
    infos = [client.client.publish(f"chat/pub/out/{qos}", f"q{qos}".encode(), qos) for qos in (0, 1, 2)]
    for info in infos:
        info.wait_for_publish(10)
    assert wait_until(lambda: len(bare.gate.published) == 3)
    assert sorted(bare.gate.published) == [("pub", f"chat/pub/out/{q}", f"q{q}".encode()) for q in (0, 1, 2)]
    # and the connection still works after a QoS 2 flow
    assert client.subscribe("chat/pub/in") == [1]
    client.close()


def test_a_reserved_packet_type_closes_the_connection(bare: _BareBroker) -> None:
    import socket
    import struct

    body = (
        struct.pack("!H", 4)
        + b"MQTT"
        + bytes([4, 0x02])
        + struct.pack("!H", 60)
        + struct.pack("!H", 1)
        + b"r"
    )
    sock = socket.create_connection(("127.0.0.1", bare.port))
    sock.sendall(bytes([0x10, len(body)]) + body)
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    sock.sendall(b"\xf0\x00")  # packet type 15 is reserved
    sock.settimeout(5)
    assert sock.recv(1) == b""  # closed by the broker
    sock.close()
    assert wait_until(lambda: not bare.broker.sessions)
