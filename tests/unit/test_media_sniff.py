"""The type of an upload comes from its first bytes, never from its name."""

from __future__ import annotations

import pytest

from tests.media_files import bare_mp4, gps_jpeg, jpeg, png
from workers.media.sniff import SNIFF_BYTES, describe, sniff


@pytest.mark.parametrize(
    ("head", "mime", "kind"),
    [
        (jpeg(), "image/jpeg", "image"),
        (gps_jpeg(), "image/jpeg", "image"),
        (png(), "image/png", "image"),
        (b"GIF89a\x01\x00\x01\x00", "image/gif", "image"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp", "image"),
        (bare_mp4(), "video/mp4", "video"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "video/quicktime", "video"),
        (b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x00isom", "video/3gpp", "video"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", "video/webm", "video"),
        (b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska", "video/x-matroska", "video"),
    ],
)
def test_accepted_types_are_known_by_their_signature(head: bytes, mime: str, kind: str) -> None:
    sniffed = sniff(head[:SNIFF_BYTES])
    assert sniffed is not None
    assert (sniffed.mime, sniffed.kind) == (mime, kind)


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"<!DOCTYPE html><html>", "HTML"),
        (b"  <svg xmlns='http://www.w3.org/2000/svg'>", "SVG"),
        (b"%PDF-1.7", "PDF"),
        (b"PK\x03\x04", "ZIP"),
        (b"MZ\x90\x00", "Windows program"),
        (b"\x7fELF\x02\x01", "Linux program"),
        (b"BM\x00\x00", "BMP"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", "HEIF"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00", "audio"),
        (b"ID3\x04", "audio"),
        (b"", "empty"),
        (b"\x00\x01\x02\x03", "unknown"),
    ],
)
def test_everything_else_is_refused_and_described(head: bytes, words: str) -> None:
    assert sniff(head) is None
    assert words in describe(head)
