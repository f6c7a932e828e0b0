"""A TCP connection is one asyncio protocol (broker/mqtt/protocol.py): what it does at its edges.

A client that half-closes in the middle of a packet or of its CONNECT, one that vanishes while its
login is being checked, and one that stops reading while the broker writes to it: each ends or
waits alone, and leaves nothing of itself in the broker.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from broker.mqtt import protocol
from broker.mqtt.codec import encode_publish
from broker.mqtt.plugins.base import Authenticator
from tests.harness import wait_until
from tests.integration.test_amqtt_fixes import _BareBroker
from tests.raw_mqtt import CONNACK_OK, connect_packet, login, puback, read_exactly, suback, subscribe_packet


class _HeldLogins(Authenticator):
    """Lets every client in; while ``hold`` is set, only once the test says so (``release``)."""

    def __init__(self) -> None:
        self.hold = False
        self.entered = threading.Event()
        self.release: asyncio.Event | None = None

    async def authenticate(self, session: Any) -> bool | None:
        if self.hold:
            if self.release is None:
                self.release = asyncio.Event()
            self.entered.set()
            await self.release.wait()
        return True


class _Broker(_BareBroker):
    """The bare broker, its logins checked by ``_HeldLogins``."""

    def __init__(self) -> None:
        self.logins = _HeldLogins()
        super().__init__()

    async def _start(self) -> Any:
        from broker.mqtt.server import MqchatBroker

        config = {
            "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0", "max_connections": 50}},
            "plugins": {},
        }
        broker = MqchatBroker(config, gate=self.gate, plugins=[self.logins])
        await broker.start()
        return broker

    def connections(self) -> int:
        return int(self.broker._servers["default"].conn_count)


@pytest.fixture
def held() -> Iterator[_Broker]:
    running = _Broker()
    try:
        yield running
    finally:
        if running.logins.release is not None:
            running.loop.call_soon_threadsafe(running.logins.release.set)
        running.close()


def test_eof_in_the_middle_of_a_packet_ends_the_connection_and_drops_the_half(held: _Broker) -> None:
    # Given a client logged in, which sends one whole PUBLISH and then half of another
    sock = login(held.port, "halfway")
    first = encode_publish("out/a", b"whole", 1, 1, False)
    second = encode_publish("out/a", b"never finished", 2, 1, False)
    sock.sendall(first + second[:7])
    assert read_exactly(sock, 4) == puback(1)
    # When it half-closes its side
    sock.shutdown(socket.SHUT_WR)
    # Then the broker ends the connection: the whole PUBLISH went in, the half did not
    assert sock.recv(16) == b""
    sock.close()
    assert wait_until(lambda: "halfway" not in held.broker._sessions and held.connections() == 0)
    assert [data for _user, _topic, data in held.gate.published] == [b"whole"]


def test_eof_in_the_middle_of_the_connect_frees_its_place(held: _Broker) -> None:
    # Given a client that sends half its CONNECT, then half-closes
    sock = socket.create_connection(("127.0.0.1", held.port))
    sock.settimeout(10)
    sock.sendall(connect_packet("unfinished")[:9])
    sock.shutdown(socket.SHUT_WR)
    # Then the broker closes it without a session, and its place on the listener is free again
    assert sock.recv(16) == b""
    sock.close()
    assert wait_until(lambda: held.connections() == 0)
    assert "unfinished" not in held.broker._sessions
    login(held.port, "unfinished").close()


def test_a_connect_longer_than_what_is_kept_before_login_is_still_read_whole(held: _Broker) -> None:
    # Given a CONNECT of the longest user name and password MQTT allows (over 128 KiB in all)
    body = b"\x00\x04MQTT\x04\xc2\x00\x3c" + b"\x00\x04long"
    body += b"\xff\xff" + b"u" * 0xFFFF + b"\xff\xff" + b"p" * 0xFFFF
    length, size = b"", len(body)
    while True:
        size, byte = divmod(size, 128)
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    sock = socket.create_connection(("127.0.0.1", held.port))
    sock.settimeout(10)
    # When the client sends more than is kept before login, then the rest
    packet = b"\x10" + length + body
    sock.sendall(packet[: 128 * 1024 + 16])
    time.sleep(0.2)  # the broker has it all, and stops reading
    sock.sendall(packet[128 * 1024 + 16 :])
    # Then it is accepted
    assert read_exactly(sock, 4) == CONNACK_OK
    sock.close()


def test_a_connection_lost_before_its_connack_leaves_nothing_behind(held: _Broker) -> None:
    # Given a client whose login is being checked
    held.logins.hold = True
    sock = socket.create_connection(("127.0.0.1", held.port))
    sock.sendall(connect_packet("vanishing"))
    assert held.logins.entered.wait(10)
    # When it resets its connection before the CONNACK, and then the login is let through
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    release = held.logins.release
    assert release is not None
    held.loop.call_soon_threadsafe(release.set)
    # Then the connection ends: no session, no subscriber, no place taken on the listener
    assert wait_until(lambda: held.connections() == 0)
    assert "vanishing" not in held.broker._sessions
    assert held.broker.connected_sessions() == []
    # And the same client id logs in again as usual
    held.logins.hold = False
    again = login(held.port, "vanishing")
    again.sendall(subscribe_packet(1, "in/vanishing"))
    assert read_exactly(again, 5) == suback(1, 1)
    again.close()


def _overfilled(held: _Broker, client_id: str) -> tuple[socket.socket, Any]:
    """A subscriber with a small receive buffer that reads nothing, sent more than its socket and
    its transport's buffer hold; and its connection."""
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", held.port))
    slow.settimeout(10)
    slow.sendall(connect_packet(client_id) + subscribe_packet(1, f"in/{client_id}"))
    assert read_exactly(slow, 4 + 5) == CONNACK_OK + suback(1, 1)
    connection = held.broker._sessions[client_id][1].writer

    def overfill() -> None:
        while not connection._paused:
            held.broker.publish_nowait(f"in/{client_id}", b"x" * 60_000, qos=0)

    held.loop.call_soon_threadsafe(overfill)
    assert wait_until(lambda: connection._paused)
    return slow, connection


def test_a_client_that_stops_reading_is_not_read_until_it_reads_again(held: _Broker) -> None:
    # Given a subscriber that stops reading while the broker sends it more than its buffers hold
    slow, connection = _overfilled(held, "slow")
    # Then what it sends meanwhile is read once, and reading stops there
    slow.sendall(encode_publish("out/slow", b"first", 1, 1, False))
    assert wait_until(lambda: not connection.transport.is_reading())
    # And once it has read everything, the broker reads it again: its next PUBLISH is acknowledged
    slow.setblocking(False)
    received = bytearray()

    def read_all() -> bool:
        try:
            while chunk := slow.recv(1 << 20):
                received.extend(chunk)
        except BlockingIOError:
            pass
        return not connection._paused and bool(connection.transport.is_reading())

    assert wait_until(read_all)
    slow.sendall(encode_publish("out/slow", b"second", 2, 1, False))
    assert wait_until(lambda: read_all() and puback(2) in received)
    assert [d for _u, t, d in held.gate.published if t == "out/slow"] == [b"first", b"second"]
    slow.close()


def test_a_client_that_reads_nothing_is_dropped_when_the_broker_closes_it(
    held: _Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a subscriber whose buffers are full because it reads nothing
    monkeypatch.setattr(protocol, "_CLOSE_DRAIN_TIMEOUT", 0.2)
    slow, _connection = _overfilled(held, "deaf")
    # When the broker closes it (a sign-out), which cannot flush what the client does not read
    assert held.call(held.broker.disconnect("deaf"))
    # Then the connection ends all the same: no session, its place on the listener free
    assert wait_until(lambda: "deaf" not in held.broker._sessions and held.connections() == 0)
    slow.close()
