"""Object storage behind one interface: a local folder or an S3-compatible bucket.

Keys are paths of safe segments (``m/3f2c….jpg``). A backend stores a stream without holding it
in memory, and hands out signed URLs that stop working after a while, so a CDN can sit in front.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Final, Protocol
from urllib.parse import quote

__all__ = ["CHUNK_BYTES", "Attachment", "Storage", "check_key"]

CHUNK_BYTES: Final = 256 * 1024
"""Size of the pieces a backend reads and writes at a time."""

_KEY_RE: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){0,7}")


def check_key(key: str) -> str:
    """``key`` when it is a safe object key (no empty, dot-leading or ``..`` segments), else ValueError."""
    if not isinstance(key, str) or len(key) > 512 or _KEY_RE.fullmatch(key) is None:
        raise ValueError(f"{key!r} is not an object key")
    return key


@dataclass(frozen=True, slots=True)
class Attachment:
    """How a document is served: as a download named ``name``, of type ``content_type`` (the
    sniffed one), never shown inline."""

    name: str
    content_type: str

    def disposition(self) -> str:
        """``attachment`` with the name as RFC 6266/8187 say: an ASCII fallback and the UTF-8 name."""
        fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"\\' else "_" for ch in self.name)
        return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(self.name, safe='')}"


class Storage(Protocol):
    """Where media objects live. Implementations are thread-safe and blocking (not for the event loop)."""

    def put_stream(self, key: str, stream: IO[bytes], *, content_type: str) -> int:
        """Store everything ``stream`` yields under ``key`` (replacing an object of that key) and
        return its size. If reading the stream raises, nothing is left under ``key``."""
        ...

    def open(self, key: str) -> IO[bytes]:
        """The object's bytes as a stream to read and close; ObjectMissing when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; nothing happens when there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def signed_url(self, key: str, *, expires_in: int, attachment: Attachment | None = None) -> str:
        """A URL that serves the object to anyone holding it, for ``expires_in`` seconds; with
        ``attachment``, as a download of that name and type (``Content-Disposition: attachment``)."""
        ...

    def close(self) -> None: ...
