"""Messages between the node and its commands process, framed as ``multiprocessing`` frames them.

The child reads and writes its end of the socket with ``multiprocessing.Connection``; the node's
end is an asyncio transport on its event loop (no thread between them), which writes ``frame``
and reads whole messages back through ``Frames``.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from collections.abc import Callable
from typing import Any

__all__ = ["Frames", "frame"]

_SIZE = struct.Struct("!i")
_LONG_SIZE = struct.Struct("!Q")


def frame(message: Any) -> bytes:
    """``message`` as ``multiprocessing.Connection.send`` writes it: a length, then the pickle.
    A plain pickle: the messages are tuples of strings, numbers and bytes, which need none of
    ``ForkingPickler``'s reducers (file descriptors, sockets), and building one per message (it
    copies the reducer table) was a few per cent of either process at low rates."""
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
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
            # the child's own pickles, on the socket pair made for it (as multiprocessing trusts them)
            message = pickle.loads(buffer[start + head : start + head + size])  # noqa: S301
            start += head + size
            self._on_message(message)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)
