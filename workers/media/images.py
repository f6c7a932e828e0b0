"""Images: verified, turned upright, stripped of metadata, re-encoded and given a thumbnail (Pillow).

Every accepted image is decoded and encoded again, whatever it looked like: that applies the EXIF
orientation, and it is the only way to be sure nothing rides along — GPS position, camera serial
numbers, comments, XMP, or data hidden after the image (polyglot files). The format stays (JPEG,
PNG, GIF, WebP; CMYK JPEGs become RGB); the ICC colour profile, which is not personal, is kept.

Hostile files are refused before they cost much: the size an image declares is checked against
``max_pixels`` before its pixels are decoded (decompression bombs), only the decoder of the sniffed
format may open it, and a truncated or damaged file fails to decode instead of being padded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from PIL import Image, ImageOps, ImageSequence

from workers.media.errors import MediaRefused

__all__ = ["MAX_FRAMES", "ProcessedImage", "Rendition", "process_image", "thumbnail_of"]

log = logging.getLogger(__name__)

MAX_FRAMES: Final = 1000
"""Most frames an animated GIF or WebP may have."""
JPEG_QUALITY: Final = 88
THUMBNAIL_QUALITY: Final = 80

_FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}
_EXTENSIONS: Final = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}
# what of an image's ``info`` survives re-encoding, per format (everything else is metadata)
_KEPT_INFO: Final = {
    "JPEG": frozenset({"icc_profile"}),
    "PNG": frozenset({"icc_profile", "transparency"}),
    "GIF": frozenset({"transparency", "duration", "loop", "background"}),
    "WEBP": frozenset({"icc_profile", "duration", "loop", "background"}),
}


@dataclass(frozen=True, slots=True)
class Rendition:
    """A file made from an upload, ready to store."""

    path: Path
    mime: str
    ext: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    image: Rendition
    thumbnail: Rendition


def process_image(
    source: Path, out_dir: Path, *, mime: str, max_pixels: int, thumbnail_size: int
) -> ProcessedImage:
    """Verify the image in ``source`` (sniffed as ``mime``) and write its clean version and a JPEG
    thumbnail (at most ``thumbnail_size`` pixels a side) into ``out_dir``.

    Raises MediaRefused, saying why, for anything that is not a sound image within the limits.
    """
    fmt = _FORMATS.get(mime)
    if fmt is None:
        raise MediaRefused(f"{mime} is not an image type this server takes")
    try:
        # The size declared in the header is checked against max_pixels before any decoding; Pillow's
        # own guard (a warning past Image.MAX_IMAGE_PIXELS, an error past twice that) stays on too.
        # warnings.catch_warnings is not used: it is not thread-safe, and jobs run on threads.
        return _process(source, out_dir, fmt=fmt, max_pixels=max_pixels, thumbnail_size=thumbnail_size)
    except MediaRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise MediaRefused("the image decodes to more pixels than allowed (a decompression bomb?)") from None
    except MemoryError:
        raise MediaRefused("the image is too large to process") from None
    except Exception as exc:  # noqa: BLE001 - hostile input makes decoders raise almost anything
        log.info("refused a %s upload: %s: %s", mime, type(exc).__name__, exc)
        raise MediaRefused(f"the file is not a readable {fmt} image (damaged or truncated?)") from None


def thumbnail_of(image: Image.Image, path: Path, *, size: int) -> Rendition:
    """Write a JPEG thumbnail of ``image`` (transparency on white) that fits ``size`` x ``size``."""
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    if thumb.mode in ("RGBA", "LA", "PA") or (thumb.mode == "P" and "transparency" in thumb.info):
        rgba = thumb.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        thumb = flat
    elif thumb.mode != "RGB":
        thumb = thumb.convert("RGB")
    thumb.info = {}
    thumb.save(path, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return Rendition(path, "image/jpeg", "jpg", thumb.width, thumb.height)


def _process(
    source: Path, out_dir: Path, *, fmt: str, max_pixels: int, thumbnail_size: int
) -> ProcessedImage:
    with Image.open(source, formats=[fmt]) as probe:
        width, height = probe.size
        frames = int(getattr(probe, "n_frames", 1))
        if width < 1 or height < 1:
            raise MediaRefused("the image has no pixels")
        if width * height > max_pixels:
            raise MediaRefused(f"the image has {width}x{height} pixels, more than the {max_pixels} allowed")
        if frames > MAX_FRAMES or width * height * frames > max_pixels:
            raise MediaRefused(
                f"the animation has {frames} frames of {width}x{height} pixels, more than allowed"
            )
        probe.verify()  # the structure: PNG chunk checksums, GIF blocks...
    out = out_dir / f"image.{_EXTENSIONS[fmt]}"
    with Image.open(source, formats=[fmt]) as image:
        if frames > 1:
            first = _save_animation(image, out, fmt)
        else:
            image.load()  # decodes every pixel: a truncated file fails here
            first = _clean(ImageOps.exif_transpose(image), image.info, fmt)
            _save(first, out, fmt)
        thumbnail = thumbnail_of(first, out_dir / "thumbnail.jpg", size=thumbnail_size)
    mime = next(m for m, f in _FORMATS.items() if f == fmt)
    return ProcessedImage(Rendition(out, mime, _EXTENSIONS[fmt], first.width, first.height), thumbnail)


def _clean(image: Image.Image, original_info: Mapping[Any, Any], fmt: str) -> Image.Image:
    """A copy of ``image`` in a mode ``fmt`` can store, carrying no metadata but what _KEPT_INFO keeps."""
    kept: dict[Any, Any] = {k: v for k, v in original_info.items() if k in _KEPT_INFO[fmt]}
    clean = image.copy()
    if fmt == "JPEG" and clean.mode not in ("L", "RGB"):
        clean = clean.convert("RGB")
        kept.pop("icc_profile", None)  # a CMYK profile does not describe the RGB pixels
    elif fmt == "WEBP" and clean.mode not in ("RGB", "RGBA"):
        clean = clean.convert("RGBA" if "A" in clean.getbands() or "transparency" in clean.info else "RGB")
        kept.pop("transparency", None)
    clean.info = kept
    clean.getexif().clear()
    return clean


def _save(image: Image.Image, out: Path, fmt: str, **extra: Any) -> None:
    params: dict[str, Any] = {"exif": b""}
    if "icc_profile" in image.info:
        params["icc_profile"] = image.info["icc_profile"]
    if "transparency" in image.info:
        params["transparency"] = image.info["transparency"]
    if fmt == "JPEG":
        params.update(quality=JPEG_QUALITY, optimize=True)
    elif fmt == "WEBP":
        params.update(quality=JPEG_QUALITY)
    elif fmt == "GIF":
        params.pop("exif")
    image.save(out, fmt, **params, **extra)


def _save_animation(image: Image.Image, out: Path, fmt: str) -> Image.Image:
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        frame.load()
        durations.append(int(frame.info.get("duration", 100)))
        frames.append(_clean(frame, frame.info, fmt))
    first = frames[0]
    extra: dict[str, Any] = {"save_all": True, "append_images": frames[1:], "duration": durations}
    extra["loop"] = int(image.info.get("loop", 0))
    _save(first, out, fmt, **extra)
    return first
