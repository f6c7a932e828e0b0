"""A TCP (or TLS) connection as one ``asyncio.Protocol``: no streams, adapters or task while idle.

asyncio's streams gave every connection a ``StreamReaderProtocol``, a ``StreamReader``, a
``StreamWriter`` and amqtt's two adapters around them, and the connection's task stayed parked on
its disconnect for as long as it lived: most of what an idle connection held beyond its socket.
Here one ``MqttProtocol`` is the socket's protocol and amqtt's reader and writer adapters at once:

- **Before the handler reads** (the CONNECT, the login, the CONNACK) it keeps what arrives, and
  ``first_frame`` gives the connect sequence the CONNECT whole; what came behind it stays here for
  the handler. Past ``_BUFFER_LIMIT`` bytes kept, reading pauses (as a ``StreamReader``'s) until
  the handler takes them; it goes on while the CONNECT itself is not whole.
- **Then the handler's** ``FrameFeed`` (broker/mqtt/feed.py) gets every byte as it arrives
  (``attach_feed``), from the transport itself; a handler that reads with a task instead (MQTT 5
  for now, amqtt's packet reader when a plugin wants every packet received) gets a
  ``StreamReader`` made on first use (``stream``), fed from here.
- **Writes** go straight to the transport. ``drain`` waits while the transport's buffer is over its
  high-water mark (``pause_writing``/``resume_writing``, as asyncio's ``FlowControlMixin``), and the
  feed pauses reading meanwhile; ``close`` drains, sends EOF and closes, as amqtt's stream adapter,
  but drops a client that reads nothing after ``_CLOSE_DRAIN_TIMEOUT`` instead of waiting for ever.
- **EOF** (the client half-closed), **a lost connection**, **an unreadable stream**: the feed, the
  stream or the connect sequence waiting for bytes is told, whichever is reading.

The connect sequence runs as a task (``client_connected``) only until the connection is up (the
broker's ``_client_connected``); the connection's end starts another (broker/mqtt/server.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast

from amqtt.adapters import ReaderAdapter, StreamWriterAdapter
from amqtt.errors import NoDataError

from broker.mqtt.codec import Frame, read_frames
from broker.mqtt.lean import share_names

if TYPE_CHECKING:
    from broker.mqtt.feed import FrameFeed

__all__ = ["MqttProtocol", "serve"]

log = logging.getLogger(__name__)

_BUFFER_LIMIT = 128 * 1024
"""Bytes kept before the handler reads, past which reading pauses (a ``StreamReader``'s default)."""

_CLOSE_DRAIN_TIMEOUT = 5.0
"""Seconds a closing connection waits for what it wrote to leave before it closes anyway."""

_starting: set[asyncio.Task[Any]] = set()
"""The connect sequences' tasks (the loop keeps only weak references to tasks)."""

ClientConnected = Callable[["MqttProtocol"], Coroutine[Any, Any, None]]


class MqttProtocol(asyncio.Protocol, ReaderAdapter, StreamWriterAdapter):
    """One MQTT connection's socket: its asyncio protocol, and amqtt's reader and writer adapter
    (see the module docstring). ``StreamWriterAdapter`` is its base so that everything written for
    amqtt's TCP writer (``publish_now``, the write scheduler) takes it; none of its state is used."""

    transport: asyncio.Transport | None = None
    feed: FrameFeed | None = None
    """Set once the handler reads by callbacks: from then on it gets every byte."""
    is_closed = False
    """``close`` has begun: nothing more is written (amqtt's adapter's flag)."""
    _stream: asyncio.StreamReader | None = None
    _unread: bytes | bytearray = b""
    """What arrived before the handler reads (the CONNECT, then what came behind it)."""
    _eof = False
    _lost = False
    _paused = False
    """The transport's write buffer is over its high-water mark (the feed reads this flag)."""
    _reading_paused = False
    """Reading paused here, for ``_unread`` being over the limit."""
    _waiters: list[asyncio.Future[None]] | None = None
    """The connect sequence waiting for bytes, or writers waiting for the buffer to drain."""
    _closed: asyncio.Future[None] | None = None
    _over_ssl = False

    def __init__(self, client_connected: ClientConnected) -> None:
        self._client_connected = client_connected

    # ------------------------------------------------------------------ from the transport
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if transport.get_extra_info("sslcontext") is not None:
            self._over_ssl = True
        task = asyncio.ensure_future(self._client_connected(self))
        _starting.add(task)
        task.add_done_callback(self._started)

    def _started(self, task: asyncio.Task[None]) -> None:
        _starting.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a connection's connect sequence failed", exc_info=task.exception())
            self.close_transport()

    def data_received(self, data: bytes) -> None:
        feed = self.feed
        if feed is not None:
            feed.data_received(data)
            return
        stream = self._stream
        if stream is not None:
            stream.feed_data(data)
            return
        self._unread += data
        if len(self._unread) > _BUFFER_LIMIT and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._ended()
        # half-closed: the client may still read what is written, until the handler closes (over
        # TLS the transport cannot stay half open, and asyncio warns when asked to)
        return not self._over_ssl

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._eof = True
        if self._stream is not None and exc is not None:
            self._stream.set_exception(exc)
        else:
            self._ended()
        self._wake(ConnectionResetError("Connection lost") if exc is None else exc)
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()
        if self.feed is not None:
            self.feed.writing_resumed()

    def _ended(self) -> None:
        """No more bytes will come: tell whoever reads."""
        if self.feed is not None:
            self.feed.end()
        elif self._stream is not None:
            self._stream.feed_eof()
        else:
            self._wake()

    def _wake(self, exc: BaseException | None = None) -> None:
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)

    async def _wait(self) -> None:
        """Until bytes arrive, EOF, the buffer drains or the connection is lost, whichever first
        (each waiter checks again what it waits for)."""
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        await waiter

    # ------------------------------------------------------------------ reading
    async def first_frame(self) -> Frame:
        """The first whole packet (the CONNECT); what arrived behind it stays for the handler.
        NoDataError at EOF before it is whole; MQTTError if the stream cannot be framed."""
        while True:
            unread = self._unread
            frames, _ = read_frames(unread)
            if frames:
                frame = frames[0]
                length_bytes = 1
                while unread[length_bytes] & 0x80:
                    length_bytes += 1
                self._take(1 + length_bytes + len(frame.body))
                return frame
            if self._eof:
                raise NoDataError("No more data")  # as amqtt's reader, at EOF before a whole CONNECT
            self._read_on()  # the CONNECT is not whole yet: read on, past the limit if need be
            try:
                await self._wait()
            except ConnectionError:
                raise NoDataError("No more data") from None

    def attach_feed(self, feed: FrameFeed) -> tuple[bytes, bool]:
        """From now on ``feed`` gets every byte; returns what arrived before, and whether EOF did."""
        unread = bytes(self._unread)
        self._take(len(unread))
        self.feed = feed
        # the transport calls the feed itself, not this protocol's ``data_received`` to pass each
        # read on: one Python call less per read (uvloop keeps the method the protocol had when it
        # was set, so it is set again; asyncio's transports look the method up on every read)
        self.data_received = feed.data_received  # type: ignore[method-assign]
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.set_protocol(self)
        return unread, self._eof

    def stream(self) -> asyncio.StreamReader:
        """A ``StreamReader`` fed from now on, with what arrived so far (made on first use, for a
        handler or a plugin that reads with a task)."""
        stream = self._stream
        if stream is None:
            stream = self._stream = asyncio.StreamReader(limit=_BUFFER_LIMIT // 2)
            if self.transport is not None:
                stream.set_transport(self.transport)
            unread = bytes(self._unread)
            self._take(len(unread))
            if unread:
                stream.feed_data(unread)
            if self._eof:
                stream.feed_eof()
        return stream

    def _take(self, used: int) -> None:
        """``used`` bytes of what was kept are read: read on if less than the limit is left."""
        self._unread = self._unread[used:]
        if len(self._unread) <= _BUFFER_LIMIT:
            self._read_on()

    def _read_on(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self.transport is not None and not self.transport.is_closing():
                self.transport.resume_reading()

    async def read(self, n: int = -1) -> bytes:
        """amqtt's reader adapter: ``n`` bytes (all until EOF when -1)."""
        stream = self.stream()
        return await (stream.read(n) if n == -1 else stream.readexactly(n))

    def feed_eof(self) -> None:
        self.stream().feed_eof()

    # ------------------------------------------------------------------ writing (amqtt's writer adapter)
    def write(self, data: bytes | bytearray | memoryview) -> None:
        transport = self.transport
        if not self.is_closed and transport is not None:
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark; ConnectionResetError once
        the connection is lost (as ``StreamWriter.drain``). Nothing once closed (as amqtt's)."""
        if not self.is_closed:
            await self._drain()

    async def _drain(self) -> None:
        while True:
            if self._lost:
                raise ConnectionResetError("Connection lost")
            if not self._paused:
                return
            await self._wait()

    def get_peer_info(self) -> tuple[str, int] | None:
        peer = self.transport.get_extra_info("peername") if self.transport is not None else None
        if not peer or len(peer) < 2:
            return None
        return peer[0], peer[1]

    def get_ssl_info(self) -> ssl.SSLObject | None:
        if self.transport is None:
            return None
        return cast("ssl.SSLObject | None", self.transport.get_extra_info("ssl_object"))

    async def close(self) -> None:
        """amqtt's adapter's: nothing more is written, what was leaves, then EOF and the close;
        returns once the socket is closed. A client that reads nothing gets ``_CLOSE_DRAIN_TIMEOUT``
        to, then its socket is dropped: it does not hold its connection open."""
        if self.is_closed:
            return
        self.is_closed = True
        transport = self.transport
        if self._paused and not self._lost:
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(self._drain(), _CLOSE_DRAIN_TIMEOUT)
        if transport is None:
            return
        if self._paused:  # still: a transport's close would wait for the client to read it all
            transport.abort()
        elif not transport.is_closing():
            if transport.can_write_eof():
                transport.write_eof()
            transport.close()
        if not self._lost:
            closed = self._closed
            if closed is None:
                closed = self._closed = asyncio.get_running_loop().create_future()
            await closed

    def close_transport(self) -> None:
        """Close the socket without waiting (the transport still sends what it holds first)."""
        self.is_closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


share_names(  # every name a connection sets (see broker/mqtt/lean.py)
    MqttProtocol,
    (
        "_client_connected",
        "transport",
        "feed",
        "data_received",
        "is_closed",
        "_stream",
        "_unread",
        "_eof",
        "_lost",
        "_paused",
        "_reading_paused",
        "_waiters",
        "_closed",
        "_over_ssl",
    ),
)


async def serve(
    client_connected: ClientConnected, host: str | None, port: int, **kwargs: Any
) -> asyncio.Server:
    """``loop.create_server`` whose connections are ``MqttProtocol``s, each starting
    ``client_connected(protocol)`` as a task."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: MqttProtocol(client_connected), host, port, **kwargs)
