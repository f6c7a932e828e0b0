"""Messages between the node and its commands process, framed as ``multiprocessing`` frames them.

The child reads and writes its end of the socket with ``multiprocessing.Connection``'s
``send_bytes`` and ``recv_bytes``, each message in ``dumps``'s form; the node's end is an asyncio
transport on its event loop (no thread between them), which writes ``frame`` and reads whole
messages back through ``Frames``.
"""

from __future__ import annotations

import asyncio
import marshal
import pickle
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["Frames", "dumps", "frame", "loads"]

_SIZE = struct.Struct("!i")
_LONG_SIZE = struct.Struct("!Q")


_PICKLE = 0x80
"""The first byte of a pickle (its PROTO opcode); marshal's first byte, a tuple's type code, is
never that."""


def dumps(message: Any) -> bytes:
    """``message`` as bytes for the other process: by ``marshal`` when it is made of what marshal
    writes (the batches and answers are tuples, lists and dicts of strings, numbers and None: about
    half the instructions of a pickle to write, and fewer to read), else a plain pickle. Plain: the
    messages need none of ``ForkingPickler``'s reducers (file descriptors, sockets), and building
    one per message (it copies the reducer table) was a few per cent of either process at low
    rates. Both processes run the same Python, whose marshal format they share."""
    try:
        return marshal.dumps(message)
    except ValueError:  # a type marshal does not write (a subclass of str, say)
        return pickle.dumps(message, pickle.HIGHEST_PROTOCOL)


def loads(payload: bytes | bytearray | memoryview) -> Any:
    """What ``dumps`` wrote, from the other process on the socket pair made for it: as trusted as
    ``multiprocessing``'s own pickles."""
    if payload[0] == _PICKLE:
        return pickle.loads(payload)  # noqa: S301
    return marshal.loads(payload)  # noqa: S302


def frame(message: Any) -> bytes:
    """``message`` as ``multiprocessing.Connection.send_bytes`` writes ``dumps(message)``: a
    length, then the bytes."""
    payload = dumps(message)
    if len(payload) > 0x7FFFFFFF:
        return _SIZE.pack(-1) + _LONG_SIZE.pack(len(payload)) + payload
    return _SIZE.pack(len(payload)) + payload


class Frames(asyncio.Protocol):
    """The node's end of the child's socket: whole messages out of the bytes read."""

    def __init__(
        self, on_message: Callable[[Any], None], on_lost: Callable[[Exception | None], None]
    ) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _SIZE.size:
            size = _SIZE.unpack_from(buffer, start)[0]
            head = _SIZE.size
            if size == -1:
                if len(buffer) - start < head + _LONG_SIZE.size:
                    break
                size = _LONG_SIZE.unpack_from(buffer, start + head)[0]
                head += _LONG_SIZE.size
            if len(buffer) - start < head + size:
                break
            message = loads(buffer[start + head : start + head + size])
            start += head + size
            self._on_message(message)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)
