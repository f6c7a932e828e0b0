"""Presence: retained online/offline with last seen, also when a connection dies silently (the
watchers here are contacts of the watched: see test_presence_visibility.py for who may watch)."""

from __future__ import annotations

import socket
import struct
import time

from tests.harness import RunningNode
from tests.plain import PlainClient
from tests.raw_mqtt import login


def _presence(watcher: PlainClient, user: str, status: str) -> dict:  # type: ignore[type-arg]
    return watcher.expect(  # type: ignore[no-any-return]
        lambda t, p: t == f"presence/{user}" and isinstance(p, dict) and p.get("status") == status
    )


def test_online_then_offline_with_last_seen(node: RunningNode) -> None:
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    assert watcher.subscribe(f"presence/{bob_id}") == [1]

    before = time.time()
    bob = PlainClient(node.port, bob_id, bob_token)
    online = _presence(watcher, bob_id, "online")
    bob.close()
    offline = _presence(watcher, bob_id, "offline")

    assert online["user"] == bob_id and online["last_seen"] >= before - 1
    assert offline["last_seen"] >= online["last_seen"]
    watcher.close()


def test_presence_is_retained_for_late_watchers(node: RunningNode) -> None:
    bob_id, bob_token = node.add_user("bob")
    bob = PlainClient(node.port, bob_id, bob_token)
    watcher_id, watcher_token = node.add_user("watcher")
    node.make_contacts(bob_id, watcher_id)

    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe(f"presence/{bob_id}")

    assert _presence(watcher, bob_id, "online")["user"] == bob_id
    bob.close()
    watcher.close()


def test_last_seen_moves_with_each_action(node: RunningNode) -> None:
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe(f"presence/{bob_id}")
    bob = PlainClient(node.port, bob_id, bob_token)
    first = _presence(watcher, bob_id, "online")

    time.sleep(0.05)
    bob.publish({"v": 1, "type": "sync", "id": "act", "after": 0})

    later = _presence(watcher, bob_id, "online")
    assert later["last_seen"] > first["last_seen"]
    bob.close()
    watcher.close()


def test_a_connection_that_dies_without_disconnect_goes_offline(node: RunningNode) -> None:
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe(f"presence/{bob_id}")

    sock = login(node.port, f"{bob_id}/raw", bob_id, bob_token, keepalive=60)
    _presence(watcher, bob_id, "online")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, no DISCONNECT

    _presence(watcher, bob_id, "offline")
    watcher.close()


def test_a_silent_connection_is_closed_after_its_keepalive(node: RunningNode) -> None:
    # Given bob connected with a 1 s keep-alive, then silent: no PINGREQ, and the socket stays open
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe(f"presence/{bob_id}")
    sock = login(node.port, f"{bob_id}/raw", bob_id, bob_token, keepalive=1)
    _presence(watcher, bob_id, "online")

    # Then within 1.5 x keep-alive (plus slack) the broker closes it and bob is offline
    offline = _presence(watcher, bob_id, "offline")
    sock.settimeout(5)
    assert sock.recv(1) == b""  # closed by the server
    assert offline["user"] == bob_id
    sock.close()
    watcher.close()


def test_two_devices_keep_the_user_online_until_the_last_leaves(node: RunningNode) -> None:
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe(f"presence/{bob_id}")
    phone = PlainClient(node.port, bob_id, bob_token, device="phone")
    laptop = PlainClient(node.port, bob_id, bob_token, device="laptop")
    _presence(watcher, bob_id, "online")

    phone.close()
    time.sleep(0.5)
    assert [p for t, p in watcher.drain() if isinstance(p, dict) and p.get("status") == "offline"] == []
    laptop.close()
    _presence(watcher, bob_id, "offline")
    watcher.close()
