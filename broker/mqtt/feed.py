"""A TCP connection's packets handled as the bytes arrive: no reading task per connection.

``MqchatHandler`` read a TCP connection with a task that awaited ``StreamReader.read`` for ever:
per idle connection a task, three coroutine frames and a future (~1.7 KiB), and per read a wake-up
of that task through a future (a loop iteration more for every PUBLISH). Here the connection's
protocol (``broker/mqtt/protocol.py``) hands each chunk the socket gives to a ``FrameFeed``,
which frames it (``broker/mqtt/codec.py``) and handles every whole packet in it at once, as the
reading task did, in the same order:

- PUBLISH at QoS 0 or 1, PUBACK of a quick delivery and PINGREQ are handled in the callback
  (the PUBACKs of one chunk go to the write scheduler together, as before);
- a packet that must wait for something (SUBSCRIBE, UNSUBSCRIBE, QoS 2, a PUBACK of amqtt's own
  flow, DISCONNECT) pauses reading, and a task handles it and the packets after it in order,
  then resumes reading;
- back-pressure as before: while the socket's write buffer is over its high-water mark (a client
  that does not read), reading pauses, and it resumes when the buffer drains;
- at EOF, a connection error or a stream that cannot be framed, the connection ends as the
  reading task ended it (``MqchatHandler._finish``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from amqtt.errors import MQTTError
from amqtt.mqtt.packet import PINGREQ

from broker.mqtt.codec import PUBACK, PUBLISH, Frame, read_frames

if TYPE_CHECKING:
    from amqtt.session import Session

    from broker.mqtt.handler import MqchatHandler

__all__ = ["FrameFeed", "take_unread"]

log = logging.getLogger(__name__)

_PINGRESP = b"\xd0\x00"

_running: set[asyncio.Task[Any]] = set()
"""The feeds' tasks (the loop keeps only weak references to tasks)."""


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coro)
    _running.add(task)
    task.add_done_callback(_running.discard)


def take_unread(stream: Any, transport: asyncio.BaseTransport) -> tuple[bytes, bool]:
    """What asyncio's ``StreamReader`` holds unread (taken out of it), and whether EOF came; the
    feed takes over from the stream (``tests/unit/test_amqtt_pin.py`` pins what this uses)."""
    unread = bytes(stream._buffer)
    stream._buffer.clear()
    if stream._paused:  # the stream had paused reading for its full buffer
        stream._paused = False
        transport.resume_reading()  # type: ignore[attr-defined]
    return unread, bool(stream._eof)


class FrameFeed:
    """The bytes of one TCP connection, handled as they come (see the module docstring)."""

    __slots__ = ("_busy", "_ended", "_handler", "_partial", "_session", "_transport")

    def __init__(self, handler: MqchatHandler, session: Session, transport: asyncio.Transport) -> None:
        self._handler = handler
        self._session = session
        self._transport = transport
        self._partial = b""
        """The start of a packet not all here yet."""
        self._busy = False
        """A task is handling packets (reading is paused meanwhile)."""
        self._ended = False

    # ------------------------------------------------------------------ from the connection's protocol
    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        handler = self._handler
        buffer = self._partial + data if self._partial else data
        try:
            frames, used = read_frames(buffer, limit=handler.max_packet)
        except MQTTError as exc:  # the byte stream itself is broken: no later packet can be found
            log.info("%s: closing a stream that cannot be read: %s", self._session.client_id, exc)
            self.end()
            return
        self._partial = buffer[used:]
        if frames or handler._reading_since is None:
            # the keep-alive deadline runs from the last whole packet (or the start of this one)
            handler._reading_since = asyncio.get_running_loop().time()
        self._handle(frames, 0)

    def end(self) -> None:
        """EOF, a lost connection or an unreadable stream: the connection ends (once)."""
        if self._ended:
            return
        self._ended = True
        if not self._busy:
            _spawn(self._handler._finish())

    def writing_resumed(self) -> None:
        """The socket's write buffer drained: read again (unless a task holds reading paused)."""
        if not self._busy and not self._ended:
            self._resume()

    # ------------------------------------------------------------------ packets
    def _handle(self, frames: list[Frame], start: int) -> None:
        """Handle ``frames[start:]`` here while none needs to wait; hand the rest to a task."""
        handler, session = self._handler, self._session
        writes = handler.writes
        acks = b""  # the PUBACKs of this chunk, written together
        for index in range(start, len(frames)):
            frame = frames[index]
            first = frame.first
            kind = first >> 4
            if kind == PUBLISH and not first & 0x04:  # QoS 0 or 1: most of what clients send
                acks += handler._on_publish(frame, session)
                continue
            if (
                kind == PUBACK
                and len(frame.body) == 2
                and handler._quick_acknowledged((frame.body[0] << 8) | frame.body[1])
            ):
                continue
            if acks:  # answers keep the order of the packets they answer
                handler._hold(acks)
                acks = b""
            if writes is not None:  # what is held goes before this packet's answer
                writes.flush(handler)
            if kind == PINGREQ:
                handler._write(_PINGRESP)
                continue
            self._busy = True
            self._transport.pause_reading()
            _spawn(self._wait_for(frames, index))
            return
        if acks:
            handler._hold(acks)
        if self._writing_paused():
            self._transport.pause_reading()  # resumed by ``writing_resumed``

    async def _wait_for(self, frames: list[Frame], index: int) -> None:
        """Handle ``frames[index]``, which waits for something, then the rest in order."""
        handler, session = self._handler, self._session
        handler._reading_since = None  # time spent handling a packet counts for nothing
        try:
            frame = frames[index]
            if frame.first >> 4 == PUBACK:  # of amqtt's own flow (a retained message's, say)
                await handler._acknowledge((frame.body[0] << 8) | frame.body[1])
                keep = True
            else:
                keep = await handler._on_frame(frame, session)
        except Exception as exc:  # noqa: BLE001 - as the reading task: any failure ends the connection
            log.warning("%s: reader stopped on %r", session.client_id, exc)
            keep = False
        handler._reading_since = asyncio.get_running_loop().time()
        self._busy = False
        if not keep:
            self._ended = True
        if self._ended:  # here or meanwhile (EOF): the connection ends now
            _spawn(handler._finish())
            return
        self._handle(frames, index + 1)
        if not self._busy and not self._writing_paused():
            self._resume()

    def _writing_paused(self) -> bool:
        protocol = self._transport.get_protocol()
        return bool(getattr(protocol, "_paused", False))  # asyncio's FlowControlMixin flag

    def _resume(self) -> None:
        transport = self._transport
        if not transport.is_closing():
            transport.resume_reading()
