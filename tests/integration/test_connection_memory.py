"""What an idle connected user costs the node's memory (broker/mqtt/lean.py, connection_state.py,
protocol.py), on MQTT 3.1.1 and on MQTT 5.

The node runs in this process, so ``tracemalloc`` sees every allocation its connections make; the
clients are bare sockets, which allocate next to nothing in Python. ``python -m benchmarks.memory``
shows where the bytes go.
"""

from __future__ import annotations

import gc
import socket
import time
import tracemalloc
from collections.abc import Callable

from tests.harness import RunningNode
from tests.raw_mqtt import CONNACK_OK, connect_packet, read_exactly, suback, subscribe_packet
from tests.raw_mqtt5 import packet, utf8

CONNECTIONS = 300
MAX_BYTES_EACH = 6 * 1024
"""The node's target per idle user; before the connections were made lean (2026-12) each held
16.3 KiB here (benchmarks/RESULTS.md has what they hold now)."""
MAX_MQTT5_MORE = 1024
"""What an MQTT 5 connection may hold past a 3.1.1 one (it held 4 KiB more with a reading task)."""


def _connect(port: int, user: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    sock.sendall(connect_packet(f"{user}/idle", user, token) + subscribe_packet(1, f"chat/{user}/in"))
    assert read_exactly(sock, 4) == CONNACK_OK
    assert read_exactly(sock, 5) == suback(1, 1)
    return sock


def _connect5(port: int, user: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    connect = utf8("MQTT") + bytes((5, 0xC2)) + (60).to_bytes(2, "big") + b"\x00" + utf8(f"{user}/idle5")
    subscribe = b"\x00\x01\x00" + utf8(f"chat/{user}/in") + b"\x01"
    sock.sendall(packet(0x10, connect + utf8(user) + utf8(token)) + packet(0x82, subscribe))
    first, length = read_exactly(sock, 2)  # a CONNACK with properties, under 128 bytes
    assert first == 0x20 and read_exactly(sock, length)[:2] == b"\x00\x00"
    assert read_exactly(sock, 6) == b"\x90\x04\x00\x01\x00\x01"
    return sock


def _held(node: RunningNode, connect: Callable[[int, str, str], socket.socket]) -> float:
    """Bytes each of ``CONNECTIONS`` idle users connected by ``connect`` holds on the node."""
    users = [node.add_user("idle") for _ in range(CONNECTIONS)]
    connect(node.port, *node.add_user("warm")).close()  # the node warm for this protocol
    socks: list[socket.socket] = []
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        socks = [connect(node.port, user, token) for user, token in users]
        time.sleep(0.5)
        gc.collect()
        return (tracemalloc.get_traced_memory()[0] - before) / CONNECTIONS
    finally:
        tracemalloc.stop()
        for sock in socks:
            sock.close()


def test_an_idle_connected_user_holds_less_than_6_kib(node: RunningNode) -> None:
    # Given a node and users with their tokens
    # When every user connects and subscribes to its inbox, then idles, on 3.1.1 then on MQTT 5
    held = _held(node, _connect)
    held5 = _held(node, _connect5)
    # Then each holds less than the bound, and an MQTT 5 one about what a 3.1.1 one does
    assert held < MAX_BYTES_EACH, f"{held / 1024:.1f} KiB per idle connection"
    assert held5 < held + MAX_MQTT5_MORE, f"MQTT 5: {held5 / 1024:.1f} KiB, 3.1.1: {held / 1024:.1f} KiB"
