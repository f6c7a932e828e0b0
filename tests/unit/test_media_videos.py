"""Videos: the container is checked by its structure; PyAV, when installed, measures it and makes a poster."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from PIL import Image

from tests.harness import need
from tests.media_files import bare_mp4, box, have_pyav, video
from workers.media import videos
from workers.media.errors import MediaRefused
from workers.media.videos import check_container, process_video


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return path


def ebml(doc_type: bytes, segment: bytes, *, segment_size: bytes | None = None) -> bytes:
    header_body = b"\x42\x82" + bytes([0x80 | len(doc_type)]) + doc_type
    header = b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(header_body)]) + header_body
    size = segment_size if segment_size is not None else b"\x01" + struct.pack(">Q", len(segment))[1:]
    return header + b"\x18\x53\x80\x67" + size + segment


def test_whole_iso_bmff_boxes_with_an_index_pass(tmp_path: Path) -> None:
    check_container(write(tmp_path, bare_mp4()), mime="video/mp4")
    # a 64-bit box size, and a last box that runs to the end (size 0), are fine too
    large = struct.pack(">I4sQ", 1, b"mdat", 16 + 8) + b"\x00" * 8
    check_container(write(tmp_path, bare_mp4()[:-72] + large), mime="video/mp4")
    check_container(
        write(tmp_path, bare_mp4() + struct.pack(">I4s", 0, b"free") + b"\x00" * 9), mime="video/mp4"
    )


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (bare_mp4(truncate=1), "truncated"),
        (bare_mp4()[:-70], "truncated"),
        (box(b"ftyp", b"isom\x00\x00\x00\x00") + box(b"mdat", b"\x00" * 8), "no 'moov'"),
        (box(b"ftyp", b"isom\x00\x00\x00\x00") + box(b"moov", b"\x00" * 8), "no media data"),
        (box(b"moov") + box(b"ftyp", b"isom\x00\x00\x00\x00"), "does not start with an 'ftyp'"),
        (box(b"ftyp", b"isom\x00\x00\x00\x00") + b"\x00\x00\x00\x04moov", "damaged"),
        (
            box(b"ftyp", b"isom\x00\x00\x00\x00") + b"\x00\x00\x00\x10\xff\xfe\x00\x01" + b"\x00" * 8,
            "damaged",
        ),
    ],
)
def test_truncated_or_broken_iso_bmff_is_refused(tmp_path: Path, data: bytes, words: str) -> None:
    with pytest.raises(MediaRefused, match=words):
        check_container(write(tmp_path, data), mime="video/mp4")


def test_ebml_files_must_hold_their_whole_segment(tmp_path: Path) -> None:
    segment = b"\x16\x54\xae\x6b\x80" + b"\x1f\x43\xb6\x75\x84" + b"\x00" * 4
    check_container(write(tmp_path, ebml(b"webm", segment)), mime="video/webm")
    # a live recording never writes the segment's size
    check_container(
        write(tmp_path, ebml(b"webm", segment, segment_size=b"\x01\xff\xff\xff\xff\xff\xff\xff")),
        mime="video/webm",
    )
    with pytest.raises(MediaRefused, match="truncated"):
        check_container(write(tmp_path, ebml(b"webm", segment)[:-3]), mime="video/webm")
    with pytest.raises(MediaRefused, match="no Matroska segment"):
        check_container(write(tmp_path, ebml(b"webm", b"")[:-9] + b"\x1f\x43\xb6\x75\x80"), mime="video/webm")
    with pytest.raises(MediaRefused, match="EBML header"):
        check_container(
            write(tmp_path, b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff"), mime="video/webm"
        )


def test_without_pyav_a_sound_container_is_stored_without_a_poster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(videos, "_av", lambda: None)
    info = process_video(
        write(tmp_path, bare_mp4()), tmp_path, mime="video/mp4", max_pixels=10**6, thumbnail_size=64
    )
    assert info == videos.VideoInfo(None, None, None, None)
    assert videos.poster_support() is None


@pytest.mark.parametrize(
    ("container", "codec", "mime"), [("mp4", "mpeg4", "video/mp4"), ("webm", "libvpx", "video/webm")]
)
def test_pyav_measures_the_video_and_makes_a_poster(
    tmp_path: Path, container: str, codec: str, mime: str
) -> None:
    need(have_pyav(), "PyAV (av) is not installed")
    source = tmp_path / f"clip.{container}"
    video(source, container=container, codec=codec)
    info = process_video(source, tmp_path, mime=mime, max_pixels=10**6, thumbnail_size=32)
    assert (info.width, info.height) == (64, 48) and info.duration == pytest.approx(1.0, abs=0.2)
    assert info.poster is not None and (info.poster.width, info.poster.height) == (32, 24)
    with Image.open(info.poster.path) as poster:
        assert poster.format == "JPEG"


def test_pyav_refuses_what_it_cannot_read_and_frames_beyond_the_pixel_limit(tmp_path: Path) -> None:
    need(have_pyav(), "PyAV (av) is not installed")
    with pytest.raises(MediaRefused, match=r"no video track|cannot be read"):
        process_video(
            write(tmp_path, bare_mp4()), tmp_path, mime="video/mp4", max_pixels=10**6, thumbnail_size=32
        )
    source = tmp_path / "clip.mp4"
    video(source)
    with pytest.raises(MediaRefused, match="64x48 pixels"):
        process_video(source, tmp_path, mime="video/mp4", max_pixels=1000, thumbnail_size=32)
