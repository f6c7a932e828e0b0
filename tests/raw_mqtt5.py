"""An MQTT 5 client written by hand, for tests that count packets in flight, read topic aliases on
the wire, or send what a well-behaved client (paho) never would.

The packets are built and read here with paho's property codec, independently of
broker/mqtt/mqtt5.py, so that what the tests check is the broker, not the codec against itself.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
from typing import Any, NamedTuple

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["Packet", "Raw5", "props", "read_props", "utf8"]

CONNACK, PUBLISH, PUBACK, SUBACK, UNSUBACK, PINGRESP, DISCONNECT = 2, 3, 4, 9, 11, 13, 14


def utf8(s: str) -> bytes:
    return struct.pack("!H", len(s.encode())) + s.encode()


def remaining(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining(len(body)) + body


def props(packet_type: int, **values: Any) -> bytes:
    """Properties as paho writes them (``values`` by paho's names: ``ReceiveMaximum=2``...)."""
    built = Properties(packet_type)  # type: ignore[no-untyped-call]
    for name, value in values.items():
        setattr(built, name, value)
    return bytes(built.pack())  # type: ignore[no-untyped-call]


def read_props(packet_type: int, data: bytes) -> dict[str, Any]:
    """Properties as paho reads them, by paho's names (``{"TopicAlias": 1}``)."""
    theirs = Properties(packet_type)  # type: ignore[no-untyped-call]
    theirs.unpack(data)  # type: ignore[no-untyped-call]
    return dict(theirs.json())  # type: ignore[no-untyped-call]


class Packet(NamedTuple):
    kind: int
    flags: int
    body: bytes

    @property
    def reason(self) -> int:
        """The reason code of a CONNACK (second byte), PUBACK, DISCONNECT."""
        if self.kind == CONNACK:
            return self.body[1]
        if self.kind == PUBACK:
            return int(self.body[2]) if len(self.body) > 2 else 0
        if self.kind == DISCONNECT:
            return self.body[0] if self.body else 0
        raise ValueError(self.kind)

    def properties(self) -> dict[str, Any]:
        """The properties of a CONNACK or PUBLISH, by paho's names."""
        if self.kind == CONNACK:
            return read_props(PacketTypes.CONNACK, self.body[2:])
        return read_props(PacketTypes.PUBLISH, self.body[self._props_at() :])

    def _props_at(self) -> int:
        size = int.from_bytes(self.body[:2], "big")
        return 2 + size + (2 if self.flags & 0x06 else 0)

    @property
    def topic(self) -> str:
        size = struct.unpack("!H", self.body[:2])[0]
        return self.body[2 : 2 + size].decode()

    @property
    def packet_id(self) -> int:
        if self.kind == PUBLISH:
            size = struct.unpack("!H", self.body[:2])[0]
            return int(struct.unpack("!H", self.body[2 + size : 4 + size])[0])
        return int(struct.unpack("!H", self.body[:2])[0])

    @property
    def payload(self) -> bytes:
        at = self._props_at()
        length, shift, i = 0, 0, at
        while True:
            byte = self.body[i]
            i += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        return self.body[i + length :]


class Raw5:
    """One MQTT 5 connection; ``connack`` is the server's answer to the CONNECT."""

    def __init__(
        self,
        port: int,
        client_id: str,
        user: str | None,
        secret: str | None,
        *,
        keepalive: int = 60,
        connect_props: bytes | None = None,
        tls: ssl.SSLContext | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        """``will``: (topic, message) of a QoS 0 will."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock: socket.socket = tls.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw
        self._buffer = b""
        self.kept: list[Packet] = []
        flags = 0x02 | (0xC0 if user is not None and secret is not None else 0) | (0x04 if will else 0)
        body = utf8("MQTT") + bytes((5, flags)) + struct.pack("!H", keepalive)
        body += connect_props if connect_props is not None else b"\x00"
        body += utf8(client_id)
        if will is not None:
            body += b"\x00" + utf8(will[0]) + struct.pack("!H", len(will[1])) + will[1]
        if user is not None and secret is not None:
            body += utf8(user) + utf8(secret)
        self.send(packet(0x10, body))
        connack = self.read()
        assert connack is not None and connack.kind == CONNACK, connack
        self.connack = connack

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float = 10.0) -> Packet | None:
        """The next packet, None once the server closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            if len(self._buffer) >= 2:
                length, shift, i = 0, 0, 1
                while i < len(self._buffer):
                    byte = self._buffer[i]
                    i += 1
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        if len(self._buffer) >= i + length:
                            first = self._buffer[0]
                            body = self._buffer[i : i + length]
                            self._buffer = self._buffer[i + length :]
                            return Packet(first >> 4, first & 0x0F, body)
                        break
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self._buffer += chunk

    def expect(self, kind: int, timeout: float = 10.0) -> Packet:
        """The next packet of ``kind`` (others are kept in ``kept``)."""
        for i, kept in enumerate(self.kept):
            if kept.kind == kind:
                return self.kept.pop(i)
        while True:
            got = self.read(timeout)
            assert got is not None, f"the connection closed while waiting for a packet of type {kind}"
            if got.kind == kind:
                return got
            self.kept.append(got)

    def closed_with(self, timeout: float = 10.0) -> int | None:
        """The reason code of the server's DISCONNECT, once the connection is closed (None: no DISCONNECT)."""
        reason = None
        while True:
            got = self.read(timeout)
            if got is None:
                self.sock.close()
                return reason
            if got.kind == DISCONNECT:
                reason = got.reason

    def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, packet_id: int = 1, properties: bytes = b"\x00"
    ) -> None:
        body = utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + properties + payload
        self.send(packet(0x30 | (qos << 1), body))

    def subscribe(self, topic: str, *, packet_id: int = 1, qos: int = 1) -> list[int]:
        self.send(packet(0x82, struct.pack("!H", packet_id) + b"\x00" + utf8(topic) + bytes((qos,))))
        suback = self.expect(SUBACK)
        return list(suback.body[3:])

    def unsubscribe(self, *topics: str, packet_id: int = 2) -> list[int]:
        """The UNSUBACK's reason codes."""
        body = struct.pack("!H", packet_id) + b"\x00" + b"".join(utf8(t) for t in topics)
        self.send(packet(0xA2, body))
        return list(self.expect(UNSUBACK).body[3:])

    def quiet(self, seconds: float) -> bool:
        """Whether nothing arrives for ``seconds`` (what does is kept in ``kept``)."""
        try:
            got = self.read(seconds)
        except TimeoutError:
            return True
        if got is not None:
            self.kept.append(got)
        return False

    def puback(self, packet_id: int) -> None:
        self.send(b"\x40\x02" + struct.pack("!H", packet_id))

    def close(self, reason: int = 0) -> None:
        with contextlib.suppress(OSError):
            self.send(b"\xe0\x01" + bytes((reason,)))
        self.sock.close()
