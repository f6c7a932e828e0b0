"""Videos: the container is checked by its structure and size; a poster frame comes from PyAV when installed.

Without decoding anything, an MP4/QuickTime/3GPP file must be a sequence of ISO-BMFF boxes that
starts with ``ftyp``, fills the file exactly (a truncated upload leaves its last box short) and
holds a ``moov`` and media data; a WebM/Matroska file must start with an EBML header followed by a
Segment that fits in the file. That catches truncated, mislabelled and garbage files cheaply.

The poster (a JPEG thumbnail of the first frame), the dimensions and the duration come from PyAV
(``av``, FFmpeg's libraries, binary wheels on PyPI, maintained by the PyAV project). It is optional:
without it a video is stored without a poster. With it, a file FFmpeg cannot open is refused, its
declared frame size is held to ``max_pixels`` before anything is decoded, and only the first frame
is decoded (within :data:`MAX_PACKETS` packets).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from workers.media.errors import MediaRefused
from workers.media.images import Rendition, thumbnail_of

__all__ = ["MAX_PACKETS", "VideoInfo", "av_module", "check_container", "poster_support", "process_video"]

log = logging.getLogger(__name__)

MAX_PACKETS: Final = 500
"""Packets PyAV reads at most while looking for the first frame."""
MAX_BOXES: Final = 10_000

_ISO_TYPES: Final = frozenset({"video/mp4", "video/quicktime", "video/3gpp"})
_EBML_TYPES: Final = frozenset({"video/webm", "video/x-matroska"})
_EBML_ID: Final = 0x1A45DFA3
_SEGMENT_ID: Final = 0x18538067


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int | None
    height: int | None
    duration: float | None
    """Seconds."""
    poster: Rendition | None


def poster_support() -> str | None:
    """The PyAV version that makes posters, or None when it is not installed."""
    av = _av()
    return None if av is None else str(av.__version__)


def process_video(
    source: Path, out_dir: Path, *, mime: str, max_pixels: int, thumbnail_size: int
) -> VideoInfo:
    """Check the video in ``source`` (sniffed as ``mime``) and make its poster in ``out_dir`` if PyAV can.

    Raises MediaRefused, saying why, for a file that is not a sound video container.
    """
    check_container(source, mime=mime)
    av = _av()
    if av is None:
        return VideoInfo(None, None, None, None)
    return _probe(av, source, out_dir, max_pixels=max_pixels, thumbnail_size=thumbnail_size)


def check_container(source: Path, *, mime: str) -> None:
    size = source.stat().st_size
    with source.open("rb") as file:
        if mime in _ISO_TYPES:
            _check_iso_bmff(file, size)
        elif mime in _EBML_TYPES:
            _check_ebml(file, size)
        else:
            raise MediaRefused(f"{mime} is not a video type this server takes")


# ---------------------------------------------------------------------- ISO base media (MP4, MOV, 3GP)
def _iso_boxes(file: IO[bytes], size: int) -> Iterator[str]:
    offset = 0
    while offset < size:
        file.seek(offset)
        header = file.read(8)
        if len(header) < 8:
            raise MediaRefused("the video is truncated (a box header is cut off)")
        length, raw_type = struct.unpack(">I4s", header)
        header_length = 8
        if length == 1:
            large = file.read(8)
            if len(large) < 8:
                raise MediaRefused("the video is truncated (a box header is cut off)")
            (length,) = struct.unpack(">Q", large)
            header_length = 16
        elif length == 0:  # the last box runs to the end of the file
            length = size - offset
        try:
            box = raw_type.decode("ascii")
        except UnicodeDecodeError:
            raise MediaRefused("the video is damaged (not a sequence of MP4 boxes)") from None
        if length < header_length or not box.isprintable():
            raise MediaRefused("the video is damaged (not a sequence of MP4 boxes)")
        if offset + length > size:
            raise MediaRefused(
                f"the video is truncated: its {box!r} box needs {offset + length - size} more bytes"
            )
        yield box
        offset += length


def _check_iso_bmff(file: IO[bytes], size: int) -> None:
    boxes: set[str] = set()
    for count, box in enumerate(_iso_boxes(file, size)):
        if count == 0 and box != "ftyp":
            raise MediaRefused("the video does not start with an 'ftyp' box")
        if count >= MAX_BOXES:
            raise MediaRefused("the video has too many top-level boxes")
        boxes.add(box)
    if "moov" not in boxes:
        raise MediaRefused("the video has no 'moov' box (its index): it cannot be played")
    if not boxes & {"mdat", "moof"}:
        raise MediaRefused("the video has no media data")


# ---------------------------------------------------------------------- EBML (WebM, Matroska)
def _vint(file: IO[bytes], *, keep_marker: bool) -> tuple[int, int, bool]:
    """An EBML variable-length integer: (value, bytes read, all value bits set = unknown size)."""
    first = file.read(1)
    if not first:
        raise MediaRefused("the video is truncated (an element header is cut off)")
    byte = first[0]
    length = 1
    mask = 0x80
    while length <= 8 and not byte & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise MediaRefused("the video is damaged (not an EBML file)")
    rest = file.read(length - 1)
    if len(rest) < length - 1:
        raise MediaRefused("the video is truncated (an element header is cut off)")
    value = byte if keep_marker else byte & (mask - 1)
    for extra in rest:
        value = (value << 8) | extra
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _check_ebml(file: IO[bytes], size: int) -> None:
    element, id_length, _ = _vint(file, keep_marker=True)
    length, size_length, unknown = _vint(file, keep_marker=False)
    if element != _EBML_ID or unknown:
        raise MediaRefused("the video does not start with an EBML header")
    offset = id_length + size_length + length
    if offset > size:
        raise MediaRefused("the video is truncated (in its EBML header)")
    file.seek(offset)
    element, id_length, _ = _vint(file, keep_marker=True)
    length, size_length, unknown = _vint(file, keep_marker=False)
    if element != _SEGMENT_ID:
        raise MediaRefused("the video has no Matroska segment after its header")
    start = offset + id_length + size_length
    if unknown:  # a live recording (e.g. a browser's MediaRecorder): its size was never written
        if start >= size:
            raise MediaRefused("the video has no media data")
        return
    if start + length > size:
        raise MediaRefused(f"the video is truncated: its segment needs {start + length - size} more bytes")


# ---------------------------------------------------------------------- PyAV
def av_module() -> Any:
    """PyAV, or None where it is not installed (it is optional: the ``video`` extra)."""
    return _av()


def _av() -> Any:
    try:
        import av  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return av


def _probe(av: Any, source: Path, out_dir: Path, *, max_pixels: int, thumbnail_size: int) -> VideoInfo:
    try:
        container = av.open(str(source), mode="r")
    except av.FFmpegError as exc:
        raise MediaRefused(f"the video cannot be read: {exc}") from None
    with container:
        stream = next(iter(container.streams.video), None)
        if stream is None:
            raise MediaRefused("the file has no video track")
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if width * height > max_pixels:
            raise MediaRefused(
                f"the video has {width}x{height} pixels a frame, more than the {max_pixels} allowed"
            )
        duration = None
        if container.duration:
            duration = round(container.duration / av.time_base, 3)
        elif stream.duration and stream.time_base:
            duration = round(float(stream.duration * stream.time_base), 3)
        poster, rotation = None, 0
        try:
            poster, rotation = _first_frame(container, stream, out_dir, max_pixels, thumbnail_size)
        except av.FFmpegError as exc:
            log.info("no poster for a video: %s", exc)
        if abs(rotation) == 90:
            width, height = height, width  # shown upright, as players do
        return VideoInfo(width or None, height or None, duration, poster)


def _first_frame(
    container: Any, stream: Any, out_dir: Path, max_pixels: int, size: int
) -> tuple[Rendition | None, int]:
    """A thumbnail of the first frame, upright, and the rotation the video asks players for."""
    for count, packet in enumerate(container.demux(stream)):
        if count >= MAX_PACKETS:
            break
        for frame in packet.decode():
            if frame.width * frame.height > max_pixels:
                raise MediaRefused("the video's frames are larger than allowed")
            image = frame.to_image()
            rotation = round(getattr(frame, "rotation", 0) or 0)
            if rotation:
                image = image.rotate(rotation, expand=True)  # counter-clockwise, as the display matrix says
            return thumbnail_of(image, out_dir / "poster.jpg", size=size), rotation
    return None, 0
