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


AUDIO_FORMATS = {
    # name: (container format, codec, sample rate, file name extension, sniffed type)
    "opus": ("ogg", "libopus", 48000, "ogg", "audio/ogg"),
    "webm": ("webm", "libopus", 48000, "webm", "audio/webm"),
    "m4a": ("ipod", "aac", 44100, "m4a", "audio/mp4"),
    "mp3": ("mp3", "libmp3lame", 44100, "mp3", "audio/mpeg"),
    "adts": ("adts", "aac", 44100, "aac", "audio/aac"),
}


def audio(path: Path, fmt: str = "opus", *, seconds: float = 2.0, loud_first: bool = True) -> bytes:
    """A real recording made with PyAV: a 440 Hz tone, loud in its first half and quiet in its second
    (or the other way round), so a waveform can be told apart from its mirror image."""
    import math

    import av

    container, codec, rate, _, _ = AUDIO_FORMATS[fmt]
    total = int(seconds * rate)
    with av.open(str(path), mode="w", format=container) as output:
        stream = output.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame_size = 960 if "opus" in codec else 1024
        fmt_name = "fltp" if codec in ("aac", "vorbis") else "s16"
        for start in range(0, total, frame_size):
            count = min(frame_size, total - start)
            values = []
            for i in range(start, start + count):
                loud = (i < total // 2) == loud_first
                values.append(math.sin(2 * math.pi * 440 * i / rate) * (0.8 if loud else 0.05))
            if fmt_name == "s16":
                data = struct.pack(f"<{count}h", *(int(v * 32767) for v in values))
            else:
                data = struct.pack(f"<{count}f", *values)
            frame = av.AudioFrame(format=fmt_name, layout="mono", samples=count)
            frame.planes[0].update(data + bytes(frame.planes[0].buffer_size - len(data)))
            frame.sample_rate = rate
            frame.pts = start
            for packet in stream.encode(frame):
                output.mux(packet)
        for packet in stream.encode():
            output.mux(packet)
    return path.read_bytes()


def audio_with_video(path: Path) -> bytes:
    """A WebM with an Opus track and a VP8 video track: audio in a video's clothes."""
    import av

    with av.open(str(path), mode="w", format="webm") as output:
        video_stream = output.add_stream("libvpx", rate=12)
        video_stream.width, video_stream.height, video_stream.pix_fmt = 64, 48, "yuv420p"
        audio_stream = output.add_stream("libopus", rate=48000)
        audio_stream.layout = "mono"
        for index in range(6):
            image = Image.new("RGB", (64, 48), (40 * index % 256, 90, 160))
            for packet in video_stream.encode(av.VideoFrame.from_image(image)):
                output.mux(packet)
        for start in range(0, 48000 // 2, 960):
            frame = av.AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update(bytes(frame.planes[0].buffer_size))
            frame.sample_rate, frame.pts = 48000, start
            for packet in audio_stream.encode(frame):
                output.mux(packet)
        for stream in (video_stream, audio_stream):
            for packet in stream.encode():
                output.mux(packet)
    return path.read_bytes()


def pdf(text: str = "Hello") -> bytes:
    """A one-page PDF (A6, a line of text), written by hand: offsets computed, so it is well formed."""
    stream = f"BT /F1 24 Tf 30 200 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 298 420] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
