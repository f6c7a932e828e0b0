"""A TCP connection's packets handled as the bytes arrive: no reading task per connection.

``MqchatHandler`` read a TCP connection with a task that awaited ``StreamReader.read`` for ever:
per idle connection a task, three coroutine frames and a future (~1.7 KiB), and per read a wake-up
of that task through a future (a loop iteration more for every PUBLISH). Here the connection's
protocol (``broker/mqtt/protocol.py``) hands each chunk the socket gives to a ``FrameFeed``,
which frames it (``broker/mqtt/codec.py``) and handles every whole packet in it at once, as the
reading task did, in the same order:

- PUBLISH at QoS 0 or 1, PUBACK of a quick delivery and PINGREQ are handled in the callback
  (the PUBACKs of one chunk go to the write scheduler together, as before), by the handler's
  ``_on_publish`` and ``_on_puback``: MQTT 3.1.1's or MQTT 5's (``Mqtt5Handler``);
- a SUBSCRIBE is decoded in the callback and handled by a task of its own (the handler's
  ``_subscribe_now``), as the handler's ``_on_frame`` did it from the task below: the packets after
  it never waited for its SUBACK, and a connect storm's every connection subscribes once;
- a packet that must wait for something (UNSUBSCRIBE, QoS 2, a PUBACK of amqtt's own flow,
  DISCONNECT) pauses reading, and a task handles it (the handler's ``_on_frame``) and the packets
  after it in order, then resumes reading;
- a stream that cannot be framed, or (MQTT 5) a packet that breaks the protocol, ends the
  connection after the handler's ``_unreadable`` (MQTT 5: a DISCONNECT with the reason code);
- back-pressure as before: while the socket's write buffer is over its high-water mark (a client
  that does not read), reading pauses, and it resumes when the buffer drains;
- at EOF or a connection error, the connection ends as the reading task ended it
  (``MqchatHandler._finish``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from amqtt.errors import MQTTError

from broker.mqtt.codec import PUBACK, PUBLISH, Frame, read_frames

if TYPE_CHECKING:
    from amqtt.session import Session

    from broker.mqtt.handler import MqchatHandler

__all__ = ["FrameFeed"]

log = logging.getLogger(__name__)

_PINGREQ, _PINGRESP = 0xC0, b"\xd0\x00"
_SUBSCRIBE = 8

_new_tuple = tuple.__new__  # a ``Frame`` without its Python constructor (as ``read_frames``)

_running: set[asyncio.Task[Any]] = set()
"""The feeds' tasks (the loop keeps only weak references to tasks)."""


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    task = asyncio.ensure_future(coro)
    _running.add(task)
    task.add_done_callback(_running.discard)


class FrameFeed:
    """The bytes of one TCP connection, handled as they come (see the module docstring)."""

    __slots__ = ("_busy", "_ended", "_handler", "_partial", "_protocol", "_session", "_transport")

    def __init__(self, handler: MqchatHandler, session: Session, transport: asyncio.Transport) -> None:
        self._handler = handler
        self._session = session
        self._transport = transport
        self._protocol = transport.get_protocol()
        """Whose ``_paused`` says the socket's write buffer is full (asyncio's FlowControlMixin
        flag), read after every read: kept rather than asked of the transport each time."""
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
        size = len(data)
        limit = handler.max_packet
        # one whole packet under 16 KiB alone in the read (most reads: a PUBLISH, a PUBACK):
        # ``read_frames``' result without its call and loop
        frames: list[Frame] | None = None
        if not self._partial and size >= 2 and type(data) is bytes:
            length, at = data[1], 2
            if length & 0x80:  # a second byte of remaining length: it must be the last
                length = (length & 0x7F) | (data[2] << 7) if size > 2 and data[2] < 0x80 else -1
                at = 3
            if length >= 0 and length == size - at and (limit is None or length <= limit):
                frames = [_new_tuple(Frame, (data[0], data[at:]))]
        if frames is None:
            buffer = self._partial + data if self._partial else data
            try:
                frames, used = read_frames(buffer, limit=limit)
            except MQTTError as exc:  # the byte stream itself is broken: no later packet can be found
                self._break(exc)
                return
            self._partial = buffer[used:]
        if frames or handler._reading_since is None:
            # the keep-alive deadline runs from the last whole packet (or the start of this one);
            # the handler's loop, not ``get_running_loop()``, which makes a getpid system call
            handler._reading_since = handler._loop.time()
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
        try:
            for index in range(start, len(frames)):
                frame = frames[index]
                first = frame.first
                kind = first >> 4
                if kind == PUBLISH and not first & 0x04:  # QoS 0 or 1: most of what clients send
                    acks += handler._on_publish(frame, session)
                    continue
                if kind == PUBACK and handler._on_puback(frame.body):
                    continue
                if acks:  # answers keep the order of the packets they answer
                    handler._hold(acks)
                    acks = b""
                if writes is not None:  # what is held goes before this packet's answer
                    writes.flush(handler)
                if first == _PINGREQ and not frame.body:
                    handler._write(_PINGRESP)
                    continue
                if kind == _SUBSCRIBE and handler._subscribe_now(frame, session):
                    continue
                self._busy = True
                self._transport.pause_reading()
                _spawn(self._wait_for(frames, index))
                return
        except MQTTError as exc:  # MQTT 5: a packet that breaks the protocol ends the connection
            if acks:  # the packets before it were handled: their answers go first
                handler._hold(acks)
            self._break(exc)
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
            keep = await handler._on_frame(frames[index], session)
        except MQTTError as exc:  # MQTT 5: a packet that breaks the protocol
            await handler._unreadable(exc)
            keep = False
        except Exception as exc:  # noqa: BLE001 - as the reading task: any failure ends the connection
            log.warning("%s: reader stopped on %r", session.client_id, exc)
            keep = False
        handler._reading_since = handler._loop.time()
        self._busy = False
        if not keep:
            self._ended = True
        if self._ended:  # here or meanwhile (EOF): the connection ends now
            _spawn(handler._finish())
            return
        self._handle(frames, index + 1)
        if not self._busy and not self._ended and not self._writing_paused():
            self._resume()

    def _break(self, exc: MQTTError) -> None:
        """The stream cannot be read on: the handler says why (MQTT 5), then the connection ends."""
        self._ended = True
        _spawn(self._broken(exc))

    async def _broken(self, exc: MQTTError) -> None:
        handler = self._handler
        try:
            await handler._unreadable(exc)
        finally:
            await handler._finish()

    def _writing_paused(self) -> bool:
        return bool(getattr(self._protocol, "_paused", False))  # asyncio's FlowControlMixin flag

    def _resume(self) -> None:
        transport = self._transport
        if not transport.is_closing():
            transport.resume_reading()
