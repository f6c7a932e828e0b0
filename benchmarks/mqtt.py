"""One MQTT 3.1.1 or 5 connection of the load generator: a lean asyncio ``Protocol`` over mqchat's codec.

The generator shares the machine with the broker it measures, so every microsecond it spends per
message is taken from the broker. It needs only a few packets: CONNECT, SUBSCRIBE, PUBLISH at QoS
0 and 1, PUBACK, PINGREQ and DISCONNECT, and neither stores nor resends anything (a lost
connection is counted, not repaired). So it frames bytes with the broker's own codec
(``broker/mqtt/codec.py``) instead of a general client library: with gmqtt, whose per-packet handlers,
message storage and logging were 45% of a generator process at 2,000 chat messages/s, the
generator took 290-310 µs of CPU per chat message; see ``RESULTS.md`` for this one's figure.

MQTT 5 differs in these packets only by a properties field, which the generator always leaves
empty and skips when it reads: an empty one (one zero byte) before the payload of a PUBLISH it
sends and in its CONNECT and SUBSCRIBE, and the one of each PUBLISH and SUBACK it receives.

Packets a connection writes in one pass of the event loop go out in one ``write`` (a delivery's
PUBACK and the receipt the chat workload publishes in answer to it, say): one system call instead
of two, on a machine where system calls are most of what the generator costs.
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Callable
from typing import cast

from amqtt.errors import MQTTError

from broker.mqtt.codec import (
    PUBACK,
    PUBLISH,
    encode_puback,
    encode_publish,
    read_frames,
    read_publish,
    remaining_length,
)

__all__ = ["WRITES", "Batched", "Connection", "ConnectionFailed", "Writes"]

OnMessage = Callable[[str, bytes], None]

_CONNACK, _SUBACK, _PINGRESP = 2, 9, 13
_PINGREQ = b"\xc0\x00"
_DISCONNECT = b"\xe0\x00"
_CONNACK_ERRORS = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


class ConnectionFailed(Exception):
    """CONNECT or SUBSCRIBE did not succeed (refused, timed out, connection reset)."""


def _ignore(topic: str, payload: bytes) -> None:
    return None


def _string(value: str) -> bytes:
    data = value.encode("utf-8")
    return len(data).to_bytes(2, "big") + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + remaining_length(len(body)) + body


def _skip_properties(data: bytes) -> int:
    """Where what follows an MQTT 5 properties field at the start of ``data`` begins."""
    length = 0
    for used, byte in enumerate(data[:4], 1):
        length |= (byte & 0x7F) << (7 * (used - 1))
        if not byte & 0x80:
            return used + length
    raise MQTTError("malformed properties length")


def connect_packet(
    client_id: str, username: str | None, password: str | None, keepalive: int, *, mqtt5: bool = False
) -> bytes:
    """CONNECT, MQTT 3.1.1 (clean session) or 5 (clean start, no properties: no session kept)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    header = bytes((5 if mqtt5 else 4, flags)) + keepalive.to_bytes(2, "big")
    if mqtt5:
        header += b"\x00"  # no properties
    body = _string("MQTT") + header + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return _packet(0x10, body)


class Writes:
    """The packets connections wrote in this pass of the event loop, sent once it ends (one system
    call per connection per pass; the XMPP peer's connections use it too)."""

    def __init__(self) -> None:
        self._pending: list[Batched] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, conn: Batched) -> None:
        loop = asyncio.get_running_loop()
        if not self._pending or loop is not self._loop:  # (a loop that ended left its list behind)
            self._pending, self._loop = [], loop
            loop.call_soon(self._flush)
        self._pending.append(conn)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for conn in pending:
            conn._flush()


WRITES = Writes()


class Batched:
    """A connection whose writes of one pass of the event loop leave in one system call, through
    ``WRITES`` (the MQTT connections here and the XMPP peer's)."""

    _transport: asyncio.Transport | None
    _out: list[bytes]
    """What this pass of the loop wrote, until ``WRITES`` flushes it."""
    _wrote = False
    """Something was written since the keep-alive last looked."""

    def _write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if not self._out:
            WRITES.add(self)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        transport = self._transport
        if out and transport is not None and not transport.is_closing():
            transport.write(out[0] if len(out) == 1 else b"".join(out))
            self._wrote = True


class _Protocol(asyncio.Protocol):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._conn._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        try:
            frames, used = read_frames(buffer)
            self._buffer = buffer[used:]
            conn = self._conn
            for frame in frames:
                kind = frame.first >> 4
                if kind == PUBLISH:
                    publish = read_publish(frame)
                    if publish.packet_id is not None:
                        conn._write(encode_puback(publish.packet_id))
                    data = publish.data
                    if conn.mqtt5:
                        data = data[_skip_properties(data) :]
                    conn.on_message(publish.topic, data)
                elif kind != PUBACK:
                    conn._control(kind, frame.body)
        except MQTTError:
            self._conn._abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._conn._lost()


class Connection(Batched):
    def __init__(
        self,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        on_message: OnMessage = _ignore,
        on_lost: Callable[[], None] | None = None,
        mqtt5: bool = False,
    ) -> None:
        self.client_id = client_id
        self.mqtt5 = mqtt5
        self.on_message = on_message
        self._username = username
        self._password = password
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._next_id = 0
        self._connack: asyncio.Future[int] | None = None
        self._subacks: dict[int, asyncio.Future[bytes]] = {}
        self._pinger: asyncio.TimerHandle | None = None
        self._wrote = False
        self._closed = asyncio.Event()
        self.connected = False
        self._closing = False

    # ------------------------------------------------------------------ public
    async def connect(
        self,
        host: str,
        port: int,
        *,
        keepalive: int = 60,
        timeout: float = 30.0,
        local_host: str | None = None,
    ) -> None:
        """``local_host``: the source address to connect from (one address has ports for ~28,000
        connections to a broker: see benchmarks/limits.py)."""
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        try:
            await asyncio.wait_for(self._open(loop, host, port, keepalive, local_host), timeout)
        except ConnectionFailed:
            self._abort()
            raise
        except Exception as exc:
            self._abort()
            raise ConnectionFailed(f"{self.client_id}: CONNECT failed: {exc!r}") from exc
        self.connected = True
        if keepalive > 0:
            self._keep_alive(loop, keepalive * 0.5)

    async def subscribe(self, topic: str, qos: int = 1, *, timeout: float = 30.0) -> None:
        packet_id = self._packet_id()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._subacks[packet_id] = future
        properties = b"\x00" if self.mqtt5 else b""
        self._write(_packet(0x82, packet_id.to_bytes(2, "big") + properties + _string(topic) + bytes((qos,))))
        try:
            granted = await asyncio.wait_for(future, timeout)
        except (TimeoutError, ConnectionError) as exc:
            raise ConnectionFailed(f"{self.client_id}: no SUBACK for {topic}") from exc
        finally:
            self._subacks.pop(packet_id, None)
        if not granted or any(code >= 0x80 for code in granted):
            raise ConnectionFailed(f"{self.client_id}: SUBSCRIBE {topic} refused")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        if self.mqtt5:
            payload = b"\x00" + payload  # no properties
        self._write(encode_publish(topic, payload, self._packet_id() if qos else None, qos, False))

    async def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        if self._pinger is not None:
            self._pinger.cancel()
        transport = self._transport
        if not self.connected or transport is None:
            self._abort()
            return
        self.connected = False
        self._write(_DISCONNECT)
        self._flush()
        transport.close()
        try:
            await asyncio.wait_for(self._closed.wait(), timeout)
        except TimeoutError:
            transport.abort()

    # ------------------------------------------------------------------ protocol side
    async def _open(
        self, loop: asyncio.AbstractEventLoop, host: str, port: int, keepalive: int, local_host: str | None
    ) -> None:
        if local_host is None:
            await loop.create_connection(lambda: _Protocol(self), host, port)
        else:
            await loop.create_connection(
                lambda: _Protocol(self), sock=await _connected_from(loop, local_host, host, port)
            )
        self._write(
            connect_packet(self.client_id, self._username, self._password, keepalive, mqtt5=self.mqtt5)
        )
        assert self._connack is not None
        code = await self._connack
        if code:
            reason = f"reason code {code:#x}" if self.mqtt5 else _CONNACK_ERRORS.get(code, f"code {code}")
            raise ConnectionFailed(f"{self.client_id}: CONNECT refused: {reason}")

    def _control(self, kind: int, body: bytes) -> None:
        if kind == _CONNACK:
            if self._connack is not None and not self._connack.done() and len(body) >= 2:
                self._connack.set_result(body[1])
        elif kind == _SUBACK and len(body) >= 2:
            future = self._subacks.get(int.from_bytes(body[:2], "big"))
            if future is not None and not future.done():
                codes = body[2:]
                future.set_result(codes[_skip_properties(codes) :] if self.mqtt5 else codes)
        # PINGRESP and anything else: nothing to do

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 0xFFFF + 1
        return self._next_id

    def _keep_alive(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        """PINGREQ when nothing was written for ``every`` seconds (half the keepalive: the broker
        hears from this connection at least once per keepalive)."""

        def tick() -> None:
            if not self.connected:
                return
            if not self._wrote:
                self._write(_PINGREQ)
            self._wrote = False
            self._pinger = loop.call_later(every, tick)

        self._pinger = loop.call_later(every, tick)

    def _abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
        else:
            self._closed.set()

    def _lost(self) -> None:
        was = self.connected
        self.connected = False
        self._closed.set()
        if self._pinger is not None:
            self._pinger.cancel()
        lost = ConnectionError(f"{self.client_id}: connection lost")
        for future in [self._connack, *self._subacks.values()]:
            if future is not None and not future.done():
                future.set_exception(lost)
        if was and not self._closing and self._on_lost is not None:
            self._on_lost()


_IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux 4.2 on


async def _connected_from(
    loop: asyncio.AbstractEventLoop, local_host: str, host: str, port: int
) -> socket.socket:
    """A socket connected to ``host:port`` from the address ``local_host``. Bound with
    ``IP_BIND_ADDRESS_NO_PORT`` (Linux), so that its port is chosen at connect time, unique per
    destination, where a ``bind`` to port 0 takes a port no other socket on the address holds:
    the connections of the runs before, in TIME_WAIT for a minute, hold thousands of them, and
    with the range half taken each bind searched long (5,000 connections took 2 s in a first run,
    then 5, 8 and 17 s in the runs that followed within the minute)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform == "linux":
            sock.setsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT, 1)
        sock.setblocking(False)
        sock.bind((local_host, 0))
        await loop.sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock
