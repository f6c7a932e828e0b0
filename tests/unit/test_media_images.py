"""Image processing with Pillow: upright, no metadata, re-encoded, a thumbnail; hostile files refused."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageSequence

from tests.media_files import gps_jpeg, jpeg, png, png_bomb, real_png_bomb
from workers.media.errors import MediaRefused
from workers.media.images import ProcessedImage, process_image


def process(tmp_path: Path, data: bytes, mime: str, *, max_pixels: int = 50_000_000) -> ProcessedImage:
    source = tmp_path / "upload"
    source.write_bytes(data)
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return process_image(source, out, mime=mime, max_pixels=max_pixels, thumbnail_size=320)


def test_a_photo_loses_its_gps_camera_and_comment_and_is_turned_upright(tmp_path: Path) -> None:
    result = process(tmp_path, gps_jpeg(64, 32, orientation=6), "image/jpeg")
    data = result.image.path.read_bytes()
    with Image.open(result.image.path) as image:
        assert image.size == (32, 64) == (result.image.width, result.image.height)
        assert len(image.getexif()) == 0 and not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
        assert "comment" not in image.info and "exif" not in image.info
        assert image.convert("RGB").getpixel((16, 4))[0] > 200  # the red half is on top
    assert b"Exif" not in data and b"SpyCam" not in data


def test_xmp_and_trailing_data_do_not_survive(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>where I live</rdf:RDF></x:xmpmeta>'
    Image.new("RGB", (40, 30), (1, 2, 3)).save(buffer, "JPEG", xmp=xmp)
    polyglot = buffer.getvalue() + b"PK\x03\x04 a zip archive hiding after the image"
    data = process(tmp_path, polyglot, "image/jpeg").image.path.read_bytes()
    assert b"where I live" not in data and b"PK\x03\x04" not in data and data.endswith(b"\xff\xd9")


def test_transparency_stays_and_the_thumbnail_is_a_jpeg_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (800, 400), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 400, 400))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    result = process(tmp_path, buffer.getvalue(), "image/png")
    with Image.open(result.image.path) as clean, Image.open(result.thumbnail.path) as thumbnail:
        assert clean.mode == "RGBA" and clean.getpixel((600, 10)) == (255, 0, 0, 0)
        assert thumbnail.format == "JPEG" and thumbnail.size == (320, 160)
        assert thumbnail.getpixel((300, 10)) == (255, 255, 255)  # transparent became white
        assert thumbnail.getpixel((10, 10))[2] > 240


def test_a_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("CMYK", (50, 40), (0, 255, 255, 0)).save(buffer, "JPEG")
    with Image.open(process(tmp_path, buffer.getvalue(), "image/jpeg").image.path) as image:
        assert image.mode == "RGB"


def test_an_animation_keeps_its_frames_but_not_its_comment(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (30, 20), (40 * i, 0, 0)) for i in range(5)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0, comment=b"me")
    result = process(tmp_path, buffer.getvalue(), "image/gif")
    with Image.open(result.image.path) as image:
        assert image.n_frames == 5 and "comment" not in image.info
        assert [f.info["duration"] for f in ImageSequence.Iterator(image)] == [80] * 5


def test_a_huge_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(MediaRefused, match=r"decompression bomb|pixels"):
        process(tmp_path, png_bomb(60_000, 60_000), "image/png")
    with pytest.raises(MediaRefused, match="9000x9000 pixels"):
        process(tmp_path, png_bomb(9000, 9000), "image/png")


def test_a_real_bomb_is_refused_under_the_configured_limit(tmp_path: Path) -> None:
    with pytest.raises(MediaRefused, match="2000x2000 pixels, more than the 1000000"):
        process(tmp_path, real_png_bomb(2000, 2000), "image/png", max_pixels=1_000_000)


def test_an_animation_with_too_many_pixels_in_all_is_refused(tmp_path: Path) -> None:
    frames = [Image.new("L", (100, 100), i * 10) for i in range(20)]  # 200,000 pixels in all
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(MediaRefused, match="frames"):
        process(tmp_path, buffer.getvalue(), "image/gif", max_pixels=100_000)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (jpeg(300, 200)[:1200], "image/jpeg"),
        (png(640, 400)[:-30], "image/png"),
        (png(640, 400)[:700], "image/png"),
        (jpeg(), "image/png"),  # the decoder of the sniffed type only
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png"),
    ],
)
def test_truncated_damaged_or_mislabelled_images_are_refused(tmp_path: Path, data: bytes, mime: str) -> None:
    with pytest.raises(MediaRefused, match="not a readable"):
        process(tmp_path, data, mime)
