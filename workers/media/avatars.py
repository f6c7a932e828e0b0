"""Avatars: an uploaded image, verified and cleaned as every image is (:mod:`.images`: sniffed
format only, decompression bombs refused, metadata dropped), then cropped to a centred square and
written as a JPEG of at most ``size`` pixels a side (the first frame of an animation)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PIL import Image, ImageOps

from workers.media.images import Rendition, process_image, thumbnail_of

__all__ = ["AVATAR_SIZE", "make_avatar"]

AVATAR_SIZE: Final = 512
"""Pixels a side of an avatar (smaller images keep their own size)."""


def make_avatar(
    source: Path, out_dir: Path, *, mime: str, max_pixels: int, size: int = AVATAR_SIZE
) -> Rendition:
    """The avatar of the image in ``source`` (sniffed as ``mime``), written into ``out_dir``.

    Raises MediaRefused, saying why, for anything that is not a sound image within the limits.
    """
    clean = process_image(source, out_dir, mime=mime, max_pixels=max_pixels, thumbnail_size=size)
    with Image.open(clean.image.path) as image:
        image.load()
        side = min(size, image.width, image.height)
        square = ImageOps.fit(image, (side, side), Image.Resampling.LANCZOS)
    return thumbnail_of(square, out_dir / "avatar.jpg", size=side)
