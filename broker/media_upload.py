"""An upload's body as a file object: a storage thread reads it while the event loop receives it.

The first bytes are read on the event loop to sniff the type (:func:`read_head`); the rest goes
to object storage through :class:`UploadBody`, whose every read waits for the next piece from
the socket, so a large video never sits whole in memory. Past ``limit`` bytes it raises
TooLarge, and the storage backend keeps nothing.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any, Final

from aiohttp import StreamReader

from workers.media.errors import TooLarge
from workers.media.sniff import SNIFF_BYTES

__all__ = ["READ_TIMEOUT", "UploadBody", "read_head"]

READ_TIMEOUT: Final = 60.0
"""Seconds an upload may stall before it is given up."""


async def read_head(content: StreamReader) -> bytes:
    """The first SNIFF_BYTES bytes of the body (fewer when the body is shorter)."""
    head = b""
    while len(head) < SNIFF_BYTES:
        chunk = await asyncio.wait_for(content.read(SNIFF_BYTES - len(head)), READ_TIMEOUT)
        if not chunk:
            break
        head += chunk
    return head


class UploadBody(io.RawIOBase):
    """``head`` followed by the rest of ``content``; read it from a thread, never on ``loop``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, content: StreamReader, head: bytes, *, limit: int
    ) -> None:
        super().__init__()
        self._loop = loop
        self._content = content
        self._head = head
        self._limit = limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        wanted = len(buffer)
        if self._head:
            data, self._head = self._head[:wanted], self._head[wanted:]
        else:
            read = asyncio.wait_for(self._content.read(wanted), READ_TIMEOUT)
            data = asyncio.run_coroutine_threadsafe(read, self._loop).result(READ_TIMEOUT + 5)
        size = len(data)
        self.count += size
        if self.count > self._limit:
            raise TooLarge(self._limit)
        buffer[:size] = data
        return size
