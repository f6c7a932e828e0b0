"""The connect path made lighter, shown against the real node over real sockets.

The CONNECT is read whole (broker/mqtt/connect.py), and what a client sends right behind it in the same
write is handled too; mqchat's plugins are called in place (broker/mqtt/server.py) while other plugins
still go through amqtt; logins waiting at the same time are checked in batches (broker/throttle.py),
each with its own verdict.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from amqtt.contexts import Action
from amqtt.plugins.base import BaseTopicPlugin

from broker.mqtt.codec import encode_publish, read_frames, read_publish
from tests.harness import RunningNode, unique, wait_until
from tests.integration.test_amqtt_fixes import _BareBroker, bare  # noqa: F401 - the fixture
from tests.plain import PlainClient
from tests.raw_mqtt import (
    CONNACK_OK,
    PINGREQ,
    PINGRESP,
    connect_packet,
    puback,
    read_exactly,
    suback,
    subscribe_packet,
)


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    return sock


def _closed(sock: socket.socket) -> bool:
    """Whether the broker closed ``sock`` (what it sent before is skipped)."""
    while True:
        try:
            if not sock.recv(4096):
                return True
        except ConnectionResetError:
            return True


def _publishes(sock: socket.socket) -> Iterator[tuple[str, Any]]:
    """The PUBLISHes the broker sends on ``sock`` (topic, JSON payload), as they arrive."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        assert chunk, f"closed after {data!r}"
        frames, used = read_frames(data + chunk)
        data = (data + chunk)[used:]
        for frame in frames:
            publish = read_publish(frame)
            yield publish.topic, json.loads(publish.data)


def test_connect_subscribe_and_publish_in_one_write_are_each_handled(node: RunningNode) -> None:
    # Given bob on his inbox, and alice with a bare socket
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    bob = PlainClient(node.port, bob_id, bob_token)
    assert bob.inbox() == [1]
    alice = _open(node.port)

    # When alice sends her CONNECT, a SUBSCRIBE to her inbox, a message to bob and a PINGREQ at once
    send = json.dumps({"v": 1, "type": "send", "id": "c-1", "to": bob_id, "text": "all at once"})
    alice.sendall(
        connect_packet(f"{alice_id}/raw", alice_id, alice_token)
        + subscribe_packet(1, f"chat/{alice_id}/in")
        + encode_publish(f"chat/{alice_id}/out", send.encode(), 2, 1, False)
        + PINGREQ
    )

    # Then the CONNECT is accepted first, and each of the others answered (the PUBLISH and PINGREQ
    # at once, the SUBSCRIBE when the ACL has judged it)
    assert read_exactly(alice, 4) == CONNACK_OK
    answers, _ = read_frames(read_exactly(alice, 5 + 4 + 2))
    assert sorted(answers) == sorted(read_frames(suback(1, 1) + puback(2) + PINGRESP)[0])
    # And bob gets the message; his reply reaches alice on the inbox she subscribed to in that write
    assert bob.expect_type("message")["message"]["text"] == "all at once"
    bob.send(alice_id, "got it")
    for topic, event in _publishes(alice):
        assert topic == f"chat/{alice_id}/in"
        if event["type"] == "message":
            assert event["message"]["text"] == "got it"
            break
        assert (event["type"], event["ref"]) == ("sent", "c-1")
    alice.close()
    bob.close()


def test_a_connect_arriving_a_byte_at_a_time_is_read_whole(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    alice = _open(node.port)
    packets = connect_packet(f"{alice_id}/slow", alice_id, alice_token) + subscribe_packet(3, "x/#")
    for i in range(len(packets)):
        alice.sendall(packets[i : i + 1])
    # the SUBSCRIBE is the ACL's to judge, as ever: refused
    assert read_exactly(alice, 9) == CONNACK_OK + suback(3, 0x80)
    alice.sendall(subscribe_packet(4, f"chat/{alice_id}/in"))
    assert read_exactly(alice, 5) == suback(4, 1)
    alice.close()


def test_a_refused_login_ignores_what_was_sent_behind_it(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    # When someone sends alice's CONNECT with a wrong token and a SUBSCRIBE to her inbox at once
    sock = _open(node.port)
    sock.sendall(
        connect_packet(f"{alice_id}/evil", alice_id, "mqc_wrong") + subscribe_packet(1, f"chat/{alice_id}/in")
    )
    # Then the login is refused (bad user name or password) and the connection closed, no SUBACK
    assert read_exactly(sock, 4) == b"\x20\x02\x00\x04"
    assert _closed(sock)
    sock.close()


def test_logins_checked_together_each_get_their_own_verdict(node: RunningNode) -> None:
    # Given many users logging in at the same time, a few of them with a wrong token
    users = [node.add_user("crowd") for _ in range(24)]
    wrong = set(range(0, 24, 5))  # 5 failures: under the address lockout's limit
    sockets = [_open(node.port) for _ in users]

    # When every CONNECT is sent before any answer is read
    for i, (sock, (user, token)) in enumerate(zip(sockets, users, strict=True)):
        sock.sendall(connect_packet(f"{user}/d", user, "mqc_wrong" if i in wrong else token))

    # Then exactly the right ones are accepted
    answers = [read_exactly(sock, 4) for sock in sockets]
    assert [a == CONNACK_OK for a in answers] == [i not in wrong for i in range(len(users))]
    assert all(answers[i] == b"\x20\x02\x00\x04" for i in wrong)
    for sock in sockets:
        sock.close()


def test_two_hundred_logins_at_once_are_all_accepted(node: RunningNode) -> None:
    users = [node.add_user("storm") for _ in range(200)]

    def login(user: tuple[str, str]) -> bytes:
        with _open(node.port) as sock:
            name, token = user
            sock.sendall(connect_packet(f"{name}/d", name, token) + subscribe_packet(1, f"chat/{name}/in"))
            return read_exactly(sock, 9)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(login, users))
    assert answers == [CONNACK_OK + suback(1, 1)] * len(users)


# ---------------------------------------------------------------- plugins that are not mqchat's


class _OnlyOpenTopics(BaseTopicPlugin):
    """Not mqchat's: allows filters under ``open/`` only, and notes who connected."""

    @dataclass
    class Config:
        pass

    connected: list[str] = []

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        return bool(topic and topic.startswith("open/"))

    async def on_broker_client_connected(self, *, client_id: str, client_session: Any) -> None:
        _OnlyOpenTopics.connected.append(client_id)


class _BrokerWithAPlugin(_BareBroker):
    async def _start(self) -> Any:
        from broker.mqtt.server import MqchatBroker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
                f"{__name__}._OnlyOpenTopics": {},
            },
        }
        broker = MqchatBroker(config, gate=self.gate)
        await broker.start()
        return broker


@pytest.fixture
def plugged() -> Iterator[_BareBroker]:
    running = _BrokerWithAPlugin()
    try:
        yield running
    finally:
        running.close()


def test_plugins_that_are_not_mqchats_are_still_applied(plugged: _BareBroker) -> None:
    client_id = unique("other")
    sock = _open(plugged.port)
    sock.sendall(connect_packet(client_id) + subscribe_packet(1, "open/a") + subscribe_packet(2, "closed/a"))
    assert read_exactly(sock, 14) == CONNACK_OK + suback(1, 1) + suback(2, 0x80)
    assert client_id in _OnlyOpenTopics.connected
    sock.close()


def test_users_arriving_and_leaving_together_each_go_online_then_offline(node: RunningNode) -> None:
    # Given a watcher of ten users' presence
    watcher_id, watcher_token = node.add_user("watcher")
    users = [node.add_user("crowd") for _ in range(10)]
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    for user, _ in users:
        node.make_contacts(watcher_id, user)
        assert watcher.subscribe(f"presence/{user}") == [1]

    # When they all connect at once, then all leave at once
    sockets = [_open(node.port) for _ in users]
    for sock, (user, token) in zip(sockets, users, strict=True):
        sock.sendall(connect_packet(f"{user}/d", user, token))
    assert [read_exactly(sock, 4) for sock in sockets] == [CONNACK_OK] * len(users)
    seen = {user: watcher.expect(_status(user, "online")) for user, _ in users}
    for sock in sockets:
        sock.sendall(b"\xe0\x00")  # DISCONNECT
        sock.close()

    # Then each goes offline after its online, and its last seen is saved
    gone = {user: watcher.expect(_status(user, "offline")) for user, _ in users}
    assert all(gone[user]["last_seen"] >= seen[user]["last_seen"] for user, _ in users)
    store = node.node.store
    assert store is not None
    assert wait_until(lambda: all(store.last_seen_all().get(u) == gone[u]["last_seen"] for u, _ in users))
    watcher.close()


def _status(user: str, status: str) -> Any:
    return lambda t, p: t == f"presence/{user}" and isinstance(p, dict) and p.get("status") == status


def test_a_connect_storm_is_queued_by_the_kernel_not_dropped(bare: _BareBroker) -> None:  # noqa: F811
    # Given a broker whose event loop is busy, so that it accepts nothing for a while
    storm = 300  # three times asyncio's default listen backlog, which made the kernel drop SYNs
    with open("/proc/sys/net/core/somaxconn") as limit:
        if int(limit.read()) < storm:
            pytest.skip("the kernel's somaxconn is below the storm")
    busy = threading.Event()
    bare.loop.call_soon_threadsafe(busy.wait, 30)
    sockets = [socket.socket() for _ in range(storm)]
    try:
        # When that many clients connect at once
        for sock in sockets:
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", bare.port))

        # Then every connection is established (queued for the broker), none waits for a SYN retry
        def established() -> bool:
            _, writable, _ = select.select([], sockets, [], 0.1)
            return len(writable) == storm and all(
                s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for s in sockets
            )

        assert wait_until(established, timeout=20)
    finally:
        busy.set()
        for sock in sockets:
            sock.close()
