"""Files for the media tests, made here: images with Pillow, videos with PyAV or by hand, and hostile ones."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import ExifTags, Image

GPS = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (48.0, 51.0, 29.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (2.0, 17.0, 40.0),
}


def have_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def jpeg(width: int = 120, height: int = 80) -> bytes:
    """A JPEG of a colour gradient (so it has some entropy to cut short)."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def png(width: int = 120, height: int = 80, *, mode: str = "RGBA") -> bytes:
    image = Image.new(mode, (width, height))
    for x in range(width):  # a gradient, so the pixels can be compared
        for y in range(0, height, 8):
            image.putpixel((x, y), (x % 256, y % 256, 100, 200) if mode == "RGBA" else (x % 256))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def gps_jpeg(width: int = 64, height: int = 32, *, orientation: int = 6) -> bytes:
    """A JPEG that says where it was taken (GPS), by which camera, with a comment and an orientation:
    the left half red, the right half blue, so the orientation can be checked."""
    image = Image.new("RGB", (width, height), (255, 0, 0))
    image.paste((0, 0, 255), (width // 2, 0, width, height))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "SpyCam"
    exif[ExifTags.Base.BodySerialNumber] = "SN-123456"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps.update(GPS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, comment=b"taken at home", quality=95)
    return buffer.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A tiny PNG that declares a huge image (a decompression bomb's header, with a little data)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    data = zlib.compress(b"\x00" * (width + 1) * 4, 9)  # the first rows; decoding would want the rest
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def real_png_bomb(width: int, height: int) -> bytes:
    """A real decompression bomb: a valid all-black PNG that compresses about a thousand to one."""
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )


def video(path: Path, *, container: str = "mp4", codec: str = "mpeg4", frames: int = 12) -> bytes:
    """A short real video made with PyAV: 64x48, a colour that changes frame by frame."""
    import av

    with av.open(str(path), mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            image = Image.new("RGB", (64, 48), (20 * index % 256, 120, 200))
            for packet in stream.encode(av.VideoFrame.from_image(image)):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path.read_bytes()


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def bare_mp4(*, truncate: int = 0) -> bytes:
    """An ISO-BMFF file with the boxes of an MP4 (ftyp, moov, mdat) but no playable content."""
    data = (
        box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41")
        + box(b"moov", b"\x00" * 32)
        + box(b"mdat", b"\x01" * 64)
    )
    return data[: len(data) - truncate] if truncate else data
