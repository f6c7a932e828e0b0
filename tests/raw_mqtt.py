"""MQTT 3.1.1 packets written by hand, for tests that need a client to misbehave or go silent.

Built here independently of broker/mqtt/codec.py, so that what they check is the broker, not the codec
against itself. Short packets only (a remaining length below 128).
"""

from __future__ import annotations

import socket
import struct

__all__ = [
    "CONNACK_OK",
    "PINGREQ",
    "PINGRESP",
    "connect_packet",
    "login",
    "puback",
    "read_exactly",
    "suback",
    "subscribe_packet",
    "utf8",
]

CONNACK_OK = b"\x20\x02\x00\x00"
PINGREQ, PINGRESP = b"\xc0\x00", b"\xd0\x00"


def utf8(s: str) -> bytes:
    return struct.pack("!H", len(s.encode())) + s.encode()


def _packet(first: int, body: bytes) -> bytes:
    assert len(body) < 128, "a one-byte remaining length only"
    return bytes([first, len(body)]) + body


def connect_packet(
    client_id: str, user: str | None = None, secret: str | None = None, *, keepalive: int = 60
) -> bytes:
    """A clean-session CONNECT, with a username and password when ``user`` is given."""
    flags = 0b00000010 | (0b11000000 if user is not None else 0)
    body = utf8("MQTT") + bytes([4, flags]) + struct.pack("!H", keepalive) + utf8(client_id)
    if user is not None and secret is not None:
        body += utf8(user) + utf8(secret)
    return _packet(0x10, body)


def subscribe_packet(packet_id: int, topic: str, qos: int = 1) -> bytes:
    return _packet(0x82, struct.pack("!H", packet_id) + utf8(topic) + bytes([qos]))


def suback(packet_id: int, code: int) -> bytes:
    return b"\x90\x03" + struct.pack("!H", packet_id) + bytes([code])


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + struct.pack("!H", packet_id)


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def login(
    port: int, client_id: str, user: str | None = None, secret: str | None = None, *, keepalive: int = 60
) -> socket.socket:
    """A socket connected and accepted (CONNACK 0), with a 10 s timeout on reads."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    sock.sendall(connect_packet(client_id, user, secret, keepalive=keepalive))
    assert read_exactly(sock, 4) == CONNACK_OK
    return sock
