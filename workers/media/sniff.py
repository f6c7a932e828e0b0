"""What an upload is, from its first bytes: the name and the Content-Type a client sends are never trusted.

Accepted: JPEG, PNG, GIF and WebP images; MP4 (and its QuickTime and 3GPP relatives), WebM and
Matroska videos. Everything else is refused, and :func:`describe` says what it looked like.
Voice notes (an upload with ``kind=voice``) are sniffed by :func:`sniff_audio`: Opus or Vorbis in
Ogg, WebM/Matroska (audio only: checked with PyAV where it is installed), AAC/M4A in ISO-BMFF with
an audio brand, MP3 and ADTS AAC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["AUDIO_TYPES", "CONTENT_TYPES", "SNIFF_BYTES", "Sniffed", "describe", "sniff", "sniff_audio"]

SNIFF_BYTES: Final = 64
"""Bytes :func:`sniff` needs to decide (fewer only when the whole file is shorter)."""


@dataclass(frozen=True, slots=True)
class Sniffed:
    mime: str
    kind: Literal["image", "video", "audio"]
    ext: str
    """File name extension of stored objects of this type (without the dot)."""


JPEG: Final = Sniffed("image/jpeg", "image", "jpg")
PNG: Final = Sniffed("image/png", "image", "png")
GIF: Final = Sniffed("image/gif", "image", "gif")
WEBP: Final = Sniffed("image/webp", "image", "webp")
MP4: Final = Sniffed("video/mp4", "video", "mp4")
QUICKTIME: Final = Sniffed("video/quicktime", "video", "mov")
THREE_GPP: Final = Sniffed("video/3gpp", "video", "3gp")
WEBM: Final = Sniffed("video/webm", "video", "webm")
MATROSKA: Final = Sniffed("video/x-matroska", "video", "mkv")

OGG_AUDIO: Final = Sniffed("audio/ogg", "audio", "ogg")
WEBM_AUDIO: Final = Sniffed("audio/webm", "audio", "weba")
MATROSKA_AUDIO: Final = Sniffed("audio/x-matroska", "audio", "mka")
M4A: Final = Sniffed("audio/mp4", "audio", "m4a")
MP3: Final = Sniffed("audio/mpeg", "audio", "mp3")
AAC: Final = Sniffed("audio/aac", "audio", "aac")
AUDIO_TYPES: Final = (OGG_AUDIO, WEBM_AUDIO, MATROSKA_AUDIO, M4A, MP3, AAC)

CONTENT_TYPES: Final = {
    t.ext: t.mime for t in (JPEG, PNG, GIF, WEBP, MP4, QUICKTIME, THREE_GPP, WEBM, MATROSKA, *AUDIO_TYPES)
}
"""The Content-Type to serve a stored object with, by its extension."""

# ISO base media file format brands that are still images (HEIF, AVIF) or sound, not video
_IMAGE_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
_AUDIO_BRANDS: Final = frozenset({b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "})
_EBML: Final = b"\x1a\x45\xdf\xa3"


def sniff(head: bytes) -> Sniffed | None:
    """The accepted type whose signature ``head`` (the first :data:`SNIFF_BYTES` bytes) starts with."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and len(head) >= 12:
        brand = head[8:12]
        if brand in _IMAGE_BRANDS or brand in _AUDIO_BRANDS:
            return None
        if brand == b"qt  ":
            return QUICKTIME
        if brand.startswith(b"3g"):
            return THREE_GPP
        return MP4
    if head.startswith(_EBML):
        return _ebml_type(head, webm=WEBM, matroska=MATROSKA)
    return None


def _ebml_type(head: bytes, *, webm: Sniffed, matroska: Sniffed) -> Sniffed | None:
    """An EBML file by the doc type its header names (within the first bytes)."""
    if b"webm" in head:
        return webm
    if b"matroska" in head:
        return matroska
    return None


def sniff_audio(head: bytes) -> Sniffed | None:
    """The voice-note type ``head`` starts with, or None. Ogg must carry Opus or Vorbis (its first
    page holds the codec's identification header); an ISO-BMFF file must have an audio brand."""
    if head.startswith(b"OggS"):
        return OGG_AUDIO if b"OpusHead" in head or b"\x01vorbis" in head else None
    if head[4:8] == b"ftyp":
        return M4A if head[8:12] in _AUDIO_BRANDS else None
    if head.startswith(_EBML):
        return _ebml_type(head, webm=WEBM_AUDIO, matroska=MATROSKA_AUDIO)
    if head.startswith(b"ID3"):
        return MP3
    if len(head) >= 4 and head[0] == 0xFF:
        second, third = head[1], head[2]
        if second & 0xF6 == 0xF0:  # ADTS: sync word 0xFFF, layer 00
            return AAC if (third >> 2) & 0x0F < 13 else None  # a sampling frequency index that exists
        layer, bitrate, rate = (second >> 1) & 3, third >> 4, (third >> 2) & 3
        if second & 0xE0 == 0xE0 and layer == 1 and bitrate not in (0, 15) and rate != 3:
            return MP3  # an MPEG audio layer III frame header
    return None


_DESCRIPTIONS: Final = (
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"MZ", "a Windows program"),
    (b"\x7fELF", "a Linux program"),
    (b"#!", "a script"),
    (b"BM", "a BMP image (send JPEG, PNG, GIF or WebP)"),
    (b"II*\x00", "a TIFF image (send JPEG, PNG, GIF or WebP)"),
    (b"MM\x00*", "a TIFF image (send JPEG, PNG, GIF or WebP)"),
    (b"ID3", "audio"),
    (b"fLaC", "audio"),
    (b"OggS", "an Ogg file"),
    (b"\x1f\x8b", "a gzip archive"),
)


def describe(head: bytes) -> str:
    """What a refused upload seems to be, for the error message."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _IMAGE_BRANDS:
            return "a HEIF/AVIF image (send JPEG, PNG, GIF or WebP)"
        if brand in _AUDIO_BRANDS:
            return "audio"
    for signature, description in _DESCRIPTIONS:
        if head.startswith(signature):
            return description
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<?xml", b"<svg", b"<script")):
        return "HTML, XML or SVG text"
    if not head:
        return "empty"
    return "data of an unknown type"
