"""Voice notes and documents without a node: sniffing, names, waveforms, signed links, the SDK types."""

from __future__ import annotations

import io
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from client_sdk._events import Message, parse_inbox
from client_sdk._media_calls import document_name
from client_sdk.contract import load_schema
from tests.media_files import pdf
from workers.media.base import Attachment
from workers.media.documents import MAX_NAME_BYTES, document_type, sanitise_name
from workers.media.errors import MediaRefused
from workers.media.local import LocalStorage
from workers.media.sniff import sniff, sniff_audio
from workers.media.voice import check_ogg, levels

OPUS_PAGE = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13" + b"OpusHead\x01\x01" + b"\x00" * 17
VORBIS_PAGE = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e" + b"\x01vorbis" + b"\x00" * 23


@pytest.mark.parametrize(
    ("head", "mime"),
    [
        (OPUS_PAGE, "audio/ogg"),
        (VORBIS_PAGE, "audio/ogg"),
        (
            b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\xf7\x81\x01B\xf2\x81\x04B\xf3\x81\x08B\x82\x84webm",
            "audio/webm",
        ),
        (b"\x1a\x45\xdf\xa3\xa3B\x86\x81\x01B\x82\x88matroska", "audio/x-matroska"),
        (b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00", "audio/mp4"),
        (b"ID3\x04\x00\x00\x00\x00\x00#TSSE", "audio/mpeg"),
        (b"\xff\xfb\x90\x64" + b"\x00" * 20, "audio/mpeg"),  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz
        (b"\xff\xf1\x50\x80\x02\x1f\xfc", "audio/aac"),  # ADTS, AAC LC, 44.1 kHz
    ],
)
def test_voice_notes_are_sniffed_from_their_first_bytes(head: bytes, mime: str) -> None:
    found = sniff_audio(head)
    assert found is not None and found.mime == mime and found.kind == "audio"
    assert sniff(head) is None or sniff(head) != found  # never taken for an image or video upload


@pytest.mark.parametrize(
    "head",
    [
        b"\xff\xd8\xff\xe0" + b"\x00" * 20,  # JPEG
        b"\x89PNG\r\n\x1a\n",
        b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00",  # an MP4 video's brand
        b"\x00\x00\x00\x20ftypqt  \x00\x00\x02\x00",
        b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x2a\x80theora",  # Ogg video
        b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x33\x7fFLAC",  # Ogg FLAC: not a voice codec
        b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01",  # EBML without a doc type
        b"\xff\xfb\xf0\x64",  # a frame header with a forbidden bitrate
        b"\xff\xf1\x7c\x80",  # ADTS with a sampling frequency index that does not exist
        b"%PDF-1.7",
        b"",
    ],
)
def test_what_is_not_voice_is_not_sniffed_as_voice(head: bytes) -> None:
    assert sniff_audio(head) is None


def _zip(*names: str, first: tuple[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if first is not None:
            archive.writestr(zipfile.ZipInfo(first[0]), first[1])
        for name in names:
            archive.writestr(name, b"<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "mime"),
    [
        (pdf(), "application/pdf"),
        (_zip("a.txt"), "application/zip"),
        (
            _zip("[Content_Types].xml", "word/document.xml"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            _zip("[Content_Types].xml", "xl/workbook.xml"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (
            _zip("content.xml", first=("mimetype", b"application/vnd.oasis.opendocument.text")),
            "application/vnd.oasis.opendocument.text",
        ),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "image/png"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (OPUS_PAGE, "audio/ogg"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x1f\x8b\x08\x00", "application/gzip"),
        ("plain text, ünïcödé ✓\n".encode(), "text/plain"),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", "text/plain"),  # never text/html
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "text/plain"),  # never image/svg+xml
        ("é".encode() * 10 + "€".encode()[:2], "text/plain"),  # a character cut off by the window
        (b"text with a NUL\x00 in it", "application/octet-stream"),
        (b"\xfe\xff\x00h\x00i", "application/octet-stream"),
        (bytes(range(256)), "application/octet-stream"),
    ],
)
def test_a_documents_type_is_read_from_its_content(content: bytes, mime: str) -> None:
    assert document_type(content).mime == mime


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\notes.txt", "notes.txt"),
        ("a\x00b\x1fc\x7f.txt", "abc.txt"),
        ("evil\u202etxt.exe", "eviltxt.exe"),
        ("  .bashrc", "bashrc"),
        ("...", "file"),
        ("", "file"),
        ("name. ", "name"),
        ("e\u0301te\u0301.txt", "été.txt"),  # NFC
        ("ü" * 200 + ".docx", "ü" * 125 + ".docx"),  # 255 bytes at most, the extension kept
        ("x" * 300, "x" * 255),
    ],
)
def test_document_names_are_sanitised(sent: str, kept: str) -> None:
    assert sanitise_name(sent) == kept


@given(st.text(max_size=400))
def test_any_name_becomes_a_safe_one(name: str) -> None:
    safe = sanitise_name(name)
    assert safe and len(safe.encode()) <= MAX_NAME_BYTES
    assert "/" not in safe and "\\" not in safe
    assert not safe.startswith((".", " "))
    assert all(ch.isprintable() for ch in safe)
    assert sanitise_name(safe) == safe  # made safe once and for all


@given(
    st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=300),
    st.sampled_from(["pdf", "docx", "tar.gz"]),
)
def test_a_long_name_keeps_its_extension(stem: str, ext: str) -> None:
    safe = sanitise_name(f"{stem}.{ext}")
    assert safe.endswith(f".{ext.rsplit('.', 1)[-1]}") and len(safe.encode()) <= MAX_NAME_BYTES


def test_waveform_levels_are_relative_to_the_loudest_stretch() -> None:
    assert levels([0, 0, 0]) == [0] * 64
    assert levels([]) == [0] * 64
    ramp = levels(list(range(640)))
    assert len(ramp) == 64 and ramp[-1] == 100 and ramp == sorted(ramp) and ramp[0] < 2
    short = levels([10, 20], count=4)  # fewer blocks than levels: stretched
    assert short == [50, 50, 100, 100]


def test_an_ogg_file_must_be_whole_pages(tmp_path: Path) -> None:
    page = b"OggS\x00\x02" + b"\x00" * 20 + b"\x02\x05\x03" + b"x" * 8  # two segments: 5 + 3 bytes
    whole = tmp_path / "whole.ogg"
    whole.write_bytes(page * 3)
    check_ogg(whole)
    for broken, why in [
        (page * 3 + b"Ogg", "truncated"),
        (page[:-1], "truncated"),
        (page + b"junk" * 10, "damaged"),
    ]:
        path = tmp_path / "broken.ogg"
        path.write_bytes(broken)
        with pytest.raises(MediaRefused, match=why):
            check_ogg(path)


def test_an_attachment_is_named_for_every_browser() -> None:
    plain = Attachment("report.pdf", "application/pdf")
    assert plain.disposition() == "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    tricky = Attachment('naïve "quote"; x.pdf', "application/pdf")
    assert tricky.disposition() == (
        "attachment; filename=\"na_ve _quote_; x.pdf\"; filename*=UTF-8''na%C3%AFve%20%22quote%22%3B%20x.pdf"
    )


def test_a_signed_document_link_covers_its_name_and_type() -> None:
    storage = LocalStorage(Path("/nonexistent"), secret=b"s" * 32)
    attachment = Attachment("a b.pdf", "application/pdf")
    url = urllib.parse.urlsplit(storage.signed_url("m/a.pdf", expires_in=60, attachment=attachment))
    query = dict(urllib.parse.parse_qsl(url.query))
    assert (query["name"], query["type"]) == ("a b.pdf", "application/pdf")
    expires, sig = query["expires"], query["sig"]
    assert storage.check_signature("m/a.pdf", expires, sig, attachment=attachment) == "ok"
    assert storage.check_signature("m/a.pdf", expires, sig) == "invalid"  # served inline: no
    for forged in (Attachment("a b.pdf", "text/html"), Attachment("a b.html", "application/pdf")):
        assert storage.check_signature("m/a.pdf", expires, sig, attachment=forged) == "invalid"
    # a plain link does not become a document's
    plain = dict(
        urllib.parse.parse_qsl(urllib.parse.urlsplit(storage.signed_url("m/a.pdf", expires_in=60)).query)
    )
    assert (
        storage.check_signature("m/a.pdf", plain["expires"], plain["sig"], attachment=attachment) == "invalid"
    )


STORED = {"id": "m1", "conversation": "dm:alice:bob", "seq": 3, "from": "alice", "to": "bob", "ts": 1.0}
VOICE = {
    "kind": "voice",
    "key": "m/5f.ogg",
    "type": "audio/ogg",
    "size": 9000,
    "duration": 2.5,
    "waveform": [0, 50, 100] * 21 + [7],
}
DOCUMENT = {
    "kind": "document",
    "key": "m/6a.pdf",
    "type": "application/pdf",
    "size": 4000,
    "name": "minutes.pdf",
    "thumbnail": {"key": "m/6a.thumb.jpg", "type": "image/jpeg", "size": 900, "width": 226, "height": 320},
}


def event(media: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "type": "message", "cursor": 7, "message": {**STORED, "text": "", "media": media}}


@pytest.mark.parametrize(
    "media",
    [
        VOICE,
        {**VOICE, "duration": None, "waveform": None},
        DOCUMENT,
        {**DOCUMENT, "thumbnail": None, "type": "application/octet-stream"},
    ],
)
def test_voice_and_document_messages_follow_the_published_schema(media: dict[str, Any]) -> None:
    Draft202012Validator(load_schema()).validate(event(media))


@pytest.mark.parametrize(
    "media",
    [
        {**VOICE, "waveform": [101]},
        {k: v for k, v in VOICE.items() if k != "waveform"},
        {**VOICE, "type": "video/webm"},
        {**DOCUMENT, "name": ""},
        {k: v for k, v in DOCUMENT.items() if k != "name"},
    ],
)
def test_the_schema_refuses_malformed_voice_and_document_media(media: dict[str, Any]) -> None:
    assert list(Draft202012Validator(load_schema()).iter_errors(event(media)))


def test_the_sdk_parses_voice_notes_and_documents() -> None:
    voice = parse_inbox(event(VOICE))
    assert isinstance(voice, Message) and voice.media is not None
    assert voice.media.is_voice and not voice.media.is_document
    assert (voice.media.duration, voice.media.waveform) == (2.5, tuple(VOICE["waveform"]))
    doc = parse_inbox(event(DOCUMENT))
    assert isinstance(doc, Message) and doc.media is not None and doc.media.is_document
    assert doc.media.name == "minutes.pdf" and doc.media.thumbnail is not None
    with pytest.raises(ValueError, match="waveform"):
        parse_inbox(event({**VOICE, "waveform": [True]}))


def test_a_document_is_sent_with_the_name_of_its_file() -> None:
    assert document_name("/home/me/minutes.pdf", None) == "minutes.pdf"
    assert document_name(Path("a/b.txt"), "chosen.txt") == "chosen.txt"
    assert document_name(b"bytes", None) == "file"
    assert document_name(io.BytesIO(b""), None) == "file"


@pytest.mark.parametrize(
    ("text", "media", "said"),
    [
        ("", VOICE, "sent a voice message"),
        ("", DOCUMENT, "sent a document: minutes.pdf"),
        ("", {"kind": "image", "key": "m/a.jpg", "type": "image/jpeg"}, "sent a photo"),
        ("", {"key": "m/a.jpg", "type": "image/jpeg"}, "sent a file"),  # from before kinds
        ("the minutes", DOCUMENT, "the minutes"),  # a caption says it best
    ],
)
def test_a_push_says_what_was_sent_without_a_caption(text: str, media: dict[str, Any], said: str) -> None:
    from workers.notify.service import _snippet
    from workers.stores.records import StoredMessage

    assert _snippet(StoredMessage("m1", "dm:alice:bob", 1, "alice", "bob", text, 1.0, media)) == said


def test_decoding_stops_at_the_cap_and_the_duration_still_comes_from_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.harness import need
    from tests.media_files import audio, have_pyav
    from workers.media import voice

    need(have_pyav(), "PyAV (av) is not installed")
    path = tmp_path / "long.ogg"
    audio(path, "opus", seconds=4.0)  # loud for 2 s, then quiet
    monkeypatch.setattr(voice, "MAX_DECODED_SECONDS", 1)
    info = voice.process_voice(path, mime="audio/ogg")
    assert info.duration == pytest.approx(4.0, abs=0.1)
    assert info.waveform is not None and min(info.waveform[2:]) > 80  # only the loud first second


def test_without_pyav_a_voice_note_is_checked_and_kept_unmeasured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workers.media import videos, voice

    monkeypatch.setattr(videos, "_av", lambda: None)
    page = tmp_path / "one-page.ogg"
    page.write_bytes(b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13" + b"OpusHead\x01\x01" + b"\x00" * 9)
    assert voice.process_voice(page, mime="audio/ogg") == voice.VoiceInfo(None, None)
    mp3 = tmp_path / "a.mp3"
    mp3.write_bytes(b"ID3" + b"\x00" * 100)  # no outer structure to check: FFmpeg would judge it
    assert voice.process_voice(mp3, mime="audio/mpeg") == voice.VoiceInfo(None, None)


def test_the_sdk_refuses_a_bad_kind_or_name_before_sending_anything() -> None:
    from client_sdk._transfer import MediaEndpoint

    endpoint = MediaEndpoint("http://127.0.0.1:9", user="alice", token="t")  # nothing listens there
    with pytest.raises(ValueError, match="kind"):
        endpoint.upload(to="bob", id="c-1", caption="", file=io.BytesIO(b"x"), kind="sticker")
    with pytest.raises(ValueError, match="name"):
        endpoint.upload(to="bob", id="c-1", caption="", file=io.BytesIO(b"x"), kind="voice", name="a.ogg")
    with pytest.raises(ValueError, match="name"):
        endpoint.upload(
            to="bob", id="c-1", caption="", file=io.BytesIO(b"x"), kind="document", name="x" * 1025
        )
