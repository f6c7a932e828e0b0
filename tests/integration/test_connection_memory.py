"""What an idle connected user costs the node's memory (broker/mqtt/lean.py, connection_state.py,
protocol.py).

The node runs in this process, so ``tracemalloc`` sees every allocation its connections make; the
clients are bare sockets, which allocate next to nothing in Python. ``python -m benchmarks.memory``
shows where the bytes go.
"""

from __future__ import annotations

import gc
import socket
import time
import tracemalloc

from tests.harness import RunningNode
from tests.raw_mqtt import CONNACK_OK, connect_packet, read_exactly, suback, subscribe_packet

CONNECTIONS = 300
MAX_BYTES_EACH = 6 * 1024
"""The node's target per idle user; before the connections were made lean (2026-12) each held
16.3 KiB here (benchmarks/RESULTS.md has what they hold now)."""


def _connect(port: int, user: str, token: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    sock.sendall(connect_packet(f"{user}/idle", user, token) + subscribe_packet(1, f"chat/{user}/in"))
    assert read_exactly(sock, 4) == CONNACK_OK
    assert read_exactly(sock, 5) == suback(1, 1)
    return sock


def test_an_idle_connected_user_holds_less_than_6_kib(node: RunningNode) -> None:
    # Given a warm node (one connection made and closed) and users with their tokens
    users = [node.add_user("idle") for _ in range(CONNECTIONS)]
    _connect(node.port, *node.add_user("warm")).close()
    socks: list[socket.socket] = []
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        # When every user connects and subscribes to its inbox, then idles
        socks = [_connect(node.port, user, token) for user, token in users]
        time.sleep(0.5)
        gc.collect()
        held = (tracemalloc.get_traced_memory()[0] - before) / CONNECTIONS
    finally:
        tracemalloc.stop()
        for sock in socks:
            sock.close()
    # Then each holds less than the bound
    assert held < MAX_BYTES_EACH, f"{held / 1024:.1f} KiB per idle connection"
