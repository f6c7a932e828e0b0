"""Images, videos, voice notes and documents attached to messages: the wire `media` object, typed.

See docs/protocol.md, "Media". :class:`Media` describes what the server stored (after it checked
and processed the file) and is what :meth:`client_sdk.Client.download` takes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Media", "parse_media"]


@dataclass(frozen=True, slots=True)
class Media:
    """An image, video, voice note or document the server stored, or its thumbnail.

    ``type`` is the MIME type the server sniffed from the content (``image/jpeg``, ``video/mp4``…),
    ``size`` is in bytes, ``width`` and ``height`` in pixels (None for a video the server could
    not measure), ``duration`` in seconds (videos, when known). ``thumbnail`` is a small JPEG —
    of the image, or the poster frame of a video — or None; a thumbnail has no thumbnail.
    """

    key: str
    type: str
    size: int | None
    width: int | None
    height: int | None
    duration: float | None = None
    thumbnail: Media | None = None
    kind: str | None = None
    """``image``, ``video``, ``voice``, ``audio`` or ``document`` (None for a thumbnail, and from
    servers older than the field)."""
    waveform: tuple[int, ...] | None = None
    """A voice note's levels 0-100 for a player to draw (64 of them), when the server measured it."""
    name: str | None = None
    """A document's file name, as the server made it safe (a base name, at most 255 bytes)."""

    @property
    def is_voice(self) -> bool:
        return self.kind == "voice"

    @property
    def is_document(self) -> bool:
        return self.kind == "document"

    @property
    def is_image(self) -> bool:
        return self.type.startswith("image/")

    @property
    def is_video(self) -> bool:
        return self.type.startswith("video/")


def parse_media(payload: Any, *, thumbnail: bool = False) -> Media:
    """Parse the ``media`` object of a message (or, with ``thumbnail``, its ``thumbnail``)."""
    if not isinstance(payload, Mapping):
        raise ValueError(f"media must be a JSON object, got {type(payload).__name__}")
    key, kind = payload.get("key"), payload.get("type")
    if not isinstance(key, str) or not key:
        raise ValueError(f"media field 'key' must be a non-empty string, got {key!r}")
    if not isinstance(kind, str) or "/" not in kind:
        raise ValueError(f"media field 'type' must be a MIME type, got {kind!r}")
    thumb = None
    if not thumbnail:
        raw = payload.get("thumbnail")
        thumb = None if raw is None else parse_media(raw, thumbnail=True)
    return Media(
        key=key,
        type=kind,
        size=_count(payload, "size", minimum=0),
        width=_count(payload, "width", minimum=1),
        height=_count(payload, "height", minimum=1),
        duration=_seconds(payload),
        thumbnail=thumb,
        kind=_text(payload, "kind"),
        waveform=_waveform(payload),
        name=_text(payload, "name"),
    )


def _text(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"media field {name!r} must be a non-empty string or null, got {value!r}")
    return value


def _waveform(payload: Mapping[str, Any]) -> tuple[int, ...] | None:
    value = payload.get("waveform")
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 100 for level in value
    ):
        raise ValueError(f"media field 'waveform' must be a list of integers 0-100, got {value!r}")
    return tuple(value)


def _count(payload: Mapping[str, Any], name: str, *, minimum: int) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"media field {name!r} must be an integer >= {minimum} or null, got {value!r}")
    return value


def _seconds(payload: Mapping[str, Any]) -> float | None:
    value = payload.get("duration")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"media field 'duration' must be a non-negative number, got {value!r}")
    return float(value)
