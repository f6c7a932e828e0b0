"""Voice notes: the container is checked by its structure; duration and a waveform come from PyAV.

Without decoding anything, an Ogg file must be whole pages that fill the file exactly (a cut-off
upload leaves its last page short), and WebM/Matroska and M4A files get the checks videos get
(:func:`workers.media.videos.check_container`). MP3 and ADTS AAC are streams of frames with no
outer structure to check: FFmpeg judges them where it is there.

With PyAV (the optional ``video`` extra) a file FFmpeg cannot open, or that has no audio stream or
a video stream (a video sent as a voice note), is refused; the duration is read, and the
waveform is :data:`WAVEFORM_LEVELS` levels 0-100: the peak of each stretch of the recording,
relative to the loudest. Decoding is resampled to a low mono rate and stops after
:data:`MAX_DECODED_SECONDS`, so memory and time stay bounded whatever the file declares; a longer
note's waveform shows its first part. Without PyAV a voice note is stored as sent, with no
duration and no waveform.
"""

from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from workers.media.errors import MediaRefused
from workers.media.videos import av_module, check_container

__all__ = ["MAX_DECODED_SECONDS", "WAVEFORM_LEVELS", "VoiceInfo", "check_ogg", "levels", "process_voice"]

log = logging.getLogger(__name__)

WAVEFORM_LEVELS: Final = 64
MAX_DECODED_SECONDS: Final = 15 * 60
"""Audio decoded at most for the waveform (and the duration, when the container does not say)."""
ENVELOPE_RATE: Final = 4000
"""Samples a second the audio is resampled to before its peaks are taken: plenty for a picture."""
BLOCK_SECONDS: Final = 0.1
MAX_OGG_PAGES: Final = 1_000_000

_EBML_OR_ISO: Final = {
    "audio/webm": "video/webm",
    "audio/x-matroska": "video/x-matroska",
    "audio/mp4": "video/mp4",
}


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    duration: float | None
    """Seconds."""
    waveform: list[int] | None


def process_voice(source: Path, *, mime: str) -> VoiceInfo:
    """Check the voice note in ``source`` (sniffed as ``mime``), and measure it if PyAV is there.

    Raises MediaRefused, saying why, for a file that is not a sound audio file.
    """
    if mime == "audio/ogg":
        check_ogg(source)
    elif mime in _EBML_OR_ISO:
        check_container(source, mime=_EBML_OR_ISO[mime])
    av = av_module()
    if av is None:
        return VoiceInfo(None, None)
    return _probe(av, source)


def check_ogg(source: Path) -> None:
    """An Ogg file is a sequence of pages (``OggS``, a 27-byte header, a segment table, the body)
    that ends exactly where the file does."""
    size = source.stat().st_size
    offset = 0
    with source.open("rb") as file:
        for _ in range(MAX_OGG_PAGES):
            if offset == size:
                return
            file.seek(offset)
            header = file.read(27)
            if len(header) < 27:
                raise MediaRefused("the audio is truncated (an Ogg page header is cut off)")
            if header[:4] != b"OggS":
                raise MediaRefused("the audio is damaged (not a sequence of Ogg pages)")
            table = file.read(header[26])
            if len(table) < header[26]:
                raise MediaRefused("the audio is truncated (an Ogg page header is cut off)")
            offset += 27 + len(table) + sum(table)
            if offset > size:
                raise MediaRefused(
                    f"the audio is truncated: its last Ogg page needs {offset - size} more bytes"
                )
    raise MediaRefused("the audio has too many Ogg pages")


def _probe(av: Any, source: Path) -> VoiceInfo:
    try:
        container = av.open(str(source), mode="r")
    except (av.FFmpegError, ValueError) as exc:
        raise MediaRefused(f"the audio cannot be read: {exc}") from None
    with container:
        for stream in container.streams.video:
            # cover art (an MP3's ID3 picture) is a still image, not a video
            if not stream.disposition & av.stream.Disposition.attached_pic:
                raise MediaRefused(
                    "the file has a video stream: send a video as a video, not as a voice note"
                )
        stream = next(iter(container.streams.audio), None)
        if stream is None:
            raise MediaRefused("the file has no audio stream")
        duration = None
        if container.duration:
            duration = round(container.duration / av.time_base, 3)
        elif stream.duration and stream.time_base:
            duration = round(float(stream.duration * stream.time_base), 3)
        try:
            peaks, decoded = _envelope(av, container, stream)
        except (av.FFmpegError, ValueError) as exc:  # PyAV says ValueError for a layout it cannot resample
            raise MediaRefused(f"the audio cannot be decoded: {exc}") from None
        if not peaks:
            raise MediaRefused("the audio has no sound that can be decoded")
        if duration is None and decoded < MAX_DECODED_SECONDS:
            duration = round(decoded, 3)
        return VoiceInfo(duration, levels(peaks))


def _envelope(av: Any, container: Any, stream: Any) -> tuple[list[int], float]:
    """The peak of every :data:`BLOCK_SECONDS` of the first :data:`MAX_DECODED_SECONDS`, and the
    seconds decoded. Only one block of samples is held at a time."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=ENVELOPE_RATE)
    block = int(ENVELOPE_RATE * BLOCK_SECONDS)
    limit = ENVELOPE_RATE * MAX_DECODED_SECONDS
    peaks: list[int] = []
    pending = array("h")
    total = 0
    for frame in container.decode(stream):
        for mono in resampler.resample(frame):
            samples = array("h")
            samples.frombytes(bytes(mono.planes[0])[: mono.samples * 2])
            pending.extend(samples)
            total += mono.samples
            while len(pending) >= block:
                peaks.append(_peak(pending[:block]))
                del pending[:block]
        if total >= limit:
            break
    if pending:
        peaks.append(_peak(pending))
    return peaks, total / ENVELOPE_RATE


def _peak(samples: array[int]) -> int:
    return max(max(samples), -min(samples)) if samples else 0  # noqa: PLW3301 (C speed on the array)


def levels(peaks: list[int], count: int = WAVEFORM_LEVELS) -> list[int]:
    """``count`` levels 0-100 from the block peaks: each the loudest block of its stretch, scaled so
    that the loudest is 100 (all 0 for silence). Fewer blocks than levels are stretched."""
    if not peaks:
        return [0] * count
    n = len(peaks)
    buckets = [
        max(peaks[i * n // count : max((i + 1) * n // count, i * n // count + 1)]) for i in range(count)
    ]
    loudest = max(buckets)
    if loudest <= 0:
        return [0] * count
    return [min(100, round(100 * value / loudest)) for value in buckets]
