"""Connections that never log in are closed: a socket that sends no CONNECT (TCP or WebSocket), and
an HTTP request whose headers never finish (slowloris), while real users keep chatting.

Without ``limits.connect_timeout`` every such socket stayed open for good (HTTP: for aiohttp's
75 s keep-alive), each holding a listener slot and its buffers.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from tests.harness import RunningNode, connect, node_settings, wait_until

TIMEOUT = 2.0
IDLE_TCP = 1000
IDLE_WS = 50
SLOW_HTTP = 200


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningNode]:
    running = RunningNode(node_settings(tmp_path, **{"limits.connect_timeout": TIMEOUT})).start()
    yield running
    running.close()


def _closed(sock: socket.socket) -> bool:
    """The peer closed it (EOF or reset); False while it is open and silent."""
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _open(port: int, count: int) -> list[socket.socket]:
    return [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(count)]


def test_sockets_that_never_log_in_are_closed_while_users_chat(node: RunningNode) -> None:
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    # the users connect first: paho waits on its socket with select(), which takes no descriptor
    # past 1024, and this process holds both ends of every hostile socket
    with connect(node, alice) as a, connect(node, bob) as b:
        idle = _open(node.port, IDLE_TCP)
        slow = _open(node.node.http_port, SLOW_HTTP)
        for sock in slow:  # a request line and a first header, then one byte at a time
            sock.sendall(b"POST /media?to=x&id=y HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        websockets = [
            ws_connect(f"ws://127.0.0.1:{node.ws_port}/", subprotocols=["mqtt"], open_timeout=10)  # type: ignore[list-item]
            for _ in range(IDLE_WS)
        ]
        stop = threading.Event()

        def trickle() -> None:
            while not stop.wait(0.3):
                for sock in slow:
                    with contextlib.suppress(OSError):
                        sock.sendall(b"X")

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()
        started = time.monotonic()
        try:
            for i in range(20):  # chat goes on while the idle sockets wait out their timeout
                a.send(bob, f"still here {i}")
            got = [m.text for m in islice(b.messages(timeout=15), 20)]
            assert got == [f"still here {i}" for i in range(20)]

            assert wait_until(lambda: all(_closed(s) for s in idle), TIMEOUT + 20), (
                f"{sum(not _closed(s) for s in idle)} of {IDLE_TCP} silent MQTT sockets are still open"
            )
            assert wait_until(lambda: all(_closed(s) for s in slow), TIMEOUT + 20), (
                f"{sum(not _closed(s) for s in slow)} of {SLOW_HTTP} slowloris HTTP sockets are still open"
            )
            assert wait_until(lambda: all(_ws_closed(w) for w in websockets), TIMEOUT + 20)
            # they waited for the timeout, not less: a slow client that does log in has that long
            assert time.monotonic() - started >= TIMEOUT * 0.9

            a.send(bob, "after")
            assert [m.text for m in islice(b.messages(timeout=10), 1)] == ["after"]
        finally:
            stop.set()
            trickler.join(5)
            for sock in idle + slow:
                sock.close()
            for ws in websockets:
                ws.close()


def _ws_closed(ws: object) -> bool:
    try:
        ws.recv(timeout=0)  # type: ignore[attr-defined]
    except TimeoutError:
        return False
    except Exception:  # ConnectionClosed: the node closed it
        return True
    return False


def test_a_client_that_logs_in_within_the_timeout_is_not_cut_off(node: RunningNode) -> None:
    """The timeout is for the CONNECT only: a connection that sent it stays, however long it then
    stays quiet."""
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    with connect(node, alice) as a, connect(node, bob) as b:
        time.sleep(TIMEOUT * 1.5)
        a.send(bob, "hello")
        assert [m.text for m in islice(b.messages(timeout=10), 1)] == ["hello"]
