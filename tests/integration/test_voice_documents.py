"""Voice notes and documents against a real node: plain HTTP and plain MQTT, the SDK (blocking and
asyncio), 1-on-1 and groups with an offline member, downloads, deletion, and hostile files."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Status, aio
from client_sdk.contract import load_schema
from tests import harness
from tests.harness import RunningNode, need, node_settings, wait_until
from tests.integration.test_media import connect, http, next_message, stored
from tests.media_files import AUDIO_FORMATS, audio, audio_with_video, have_pyav, jpeg, pdf, video
from tests.plain import PlainClient
from workers.media.documents import pdf_support

CONTRACT = Draft202012Validator(load_schema())


def need_pyav() -> None:
    need(have_pyav(), "PyAV (av) is not installed: no audio to make")


def upload(
    node: RunningNode, user: str, body: bytes, *, to: str, cid: str, **params: str
) -> tuple[int, dict[str, Any]]:
    """A plain HTTP upload: the status and the JSON answer."""
    query = urllib.parse.urlencode({"to": to, "id": cid, **params})
    status, _, answer = http(node, "POST", f"/media?{query}", user=user, body=body)
    return status, json.loads(answer)


def fetch(node: RunningNode, user: str, key: str) -> tuple[dict[str, str], bytes]:
    """Download ``key`` as a browser would: the 302, then the signed link, without credentials."""
    status, headers, _ = http(node, "GET", f"/media/{key}", user=user)
    assert status == 302, status
    with urllib.request.urlopen(node.media_url + headers["Location"], timeout=10) as response:
        return dict(response.headers), response.read()


def plain(node: RunningNode, user: str) -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user])
    client.inbox()
    return client


@dataclass
class Pair:
    """alice sends to bob, whose plain MQTT client is connected."""

    node: RunningNode
    alice: str
    bob: str
    inbox: PlainClient

    def deliver(self, body: bytes, **params: str) -> dict[str, Any]:
        """Upload ``body`` from alice to bob (202); the media of the message bob gets, which
        follows the published schema."""
        status, answer = upload(self.node, self.alice, body, to=self.bob, cid=uuid.uuid4().hex, **params)
        assert status == 202, answer
        event = self.inbox.expect_type("message", timeout=20)
        CONTRACT.validate(event)
        media: dict[str, Any] = event["message"]["media"]
        return media

    def fetch(self, key: str) -> tuple[dict[str, str], bytes]:
        return fetch(self.node, self.bob, key)


@pytest.fixture
def pair(node: RunningNode) -> Iterator[Pair]:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    inbox = plain(node, bob_id)
    try:
        yield Pair(node, alice_id, bob_id, inbox)
    finally:
        inbox.close()


@pytest.fixture
def opus(tmp_path: Path) -> bytes:
    need_pyav()
    return audio(tmp_path / "note.ogg", "opus", seconds=2.0)


# ---------------------------------------------------------------------- plain HTTP and plain MQTT


def test_a_voice_note_over_plain_http_reaches_a_plain_mqtt_client_measured(
    node: RunningNode, opus: bytes
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    try:
        # When alice uploads a recording as a voice note
        status, answer = upload(node, alice_id, opus, to=bob_id, cid="v-1", kind="voice")
        assert (status, answer["type"], answer["size"]) == (202, "audio/ogg", len(opus))

        # Then both get it as a voice note, with its duration and a waveform, and no thumbnail
        sent = alice.expect_type("sent", ref="v-1")["message"]
        event = bob.expect_type("message")
        CONTRACT.validate(event)  # the event as the published schema says
        message = event["message"]
        assert message["id"] == sent["id"]
        media = message["media"]
        assert (media["kind"], media["type"], media["size"]) == ("voice", "audio/ogg", len(opus))
        assert "thumbnail" not in media and "name" not in media
        assert media["duration"] == pytest.approx(2.0, abs=0.1)
        waveform = media["waveform"]
        assert len(waveform) == 64 and all(isinstance(x, int) and 0 <= x <= 100 for x in waveform)
        assert max(waveform) == 100 and min(waveform[:28]) > 5 * max(waveform[36:])  # loud, then quiet

        # and the recording comes back byte for byte, served as audio for a player
        headers, body = fetch(node, bob_id, media["key"])
        assert body == opus and headers["Content-Type"] == "audio/ogg"
        assert "Content-Disposition" not in headers and headers["X-Content-Type-Options"] == "nosniff"

        # and receipts move as for any message
        bob.publish({"v": 1, "type": "receipt", "id": "r-1", "status": "read", "messages": [message["id"]]})
        assert alice.expect_type("receipt", status="read")["message_id"] == message["id"]
    finally:
        alice.close()
        bob.close()


@pytest.mark.parametrize("fmt", [f for f in AUDIO_FORMATS if f != "opus"])
def test_every_voice_format_is_sniffed_and_measured(pair: Pair, tmp_path: Path, fmt: str) -> None:
    need_pyav()
    _, _, _, ext, mime = AUDIO_FORMATS[fmt]
    data = audio(tmp_path / f"note.{ext}", fmt, seconds=1.5, loud_first=False)
    media = pair.deliver(data, kind="voice")
    assert (media["kind"], media["type"], media["size"]) == ("voice", mime, len(data))
    assert media["duration"] == pytest.approx(1.5, abs=0.15)
    assert max(media["waveform"][4:28]) * 5 < min(media["waveform"][36:58])  # quiet, then loud
    assert pair.fetch(media["key"])[1] == data


def test_a_document_over_plain_http_is_served_as_a_named_attachment(pair: Pair) -> None:
    report = b"quarterly numbers\n" * 100
    media = pair.deliver(report, kind="document", name="Bericht März.txt")
    assert (media["kind"], media["type"], media["size"], media["name"]) == (
        "document",
        "text/plain",
        len(report),
        "Bericht März.txt",
    )
    assert media["thumbnail"] is None

    headers, body = pair.fetch(media["key"])
    assert body == report
    assert headers["Content-Type"] == "text/plain"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"Bericht M_rz.txt\"; filename*=UTF-8''Bericht%20M%C3%A4rz.txt"
    )


def test_the_signed_name_and_type_of_a_document_link_cannot_be_changed(pair: Pair) -> None:
    key = pair.deliver(b"<b>hello</b>", kind="document", name="a.html")["key"]
    _, headers, _ = http(pair.node, "GET", f"/media/{key}", user=pair.bob)
    link = urllib.parse.urlsplit(headers["Location"])
    query = dict(urllib.parse.parse_qsl(link.query))
    for forged in ({**query, "type": "text/html"}, {k: v for k, v in query.items() if k != "name"}):
        status, _, _ = http(pair.node, "GET", f"{link.path}?{urllib.parse.urlencode(forged)}")
        assert status == 403


def test_over_plain_mqtt_a_group_member_offline_through_a_restart_syncs_both_kinds(
    node: RunningNode, opus: bytes
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")  # offline until the end
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    try:
        alice.publish(
            {"v": 1, "type": "group_create", "id": "g-1", "name": "team", "members": [bob_id, carol_id]}
        )
        group = alice.expect_type("group", ref="g-1")["group"]["id"]
        bob.expect_type("group")
        # When alice sends a voice note and a document to the group over plain HTTP
        assert upload(node, alice_id, opus, to=group, cid="gv-1", kind="voice")[0] == 202
        alice.expect_type("sent", ref="gv-1", timeout=15)
        assert (
            upload(node, alice_id, b"agenda\n", to=group, cid="gd-1", kind="document", name="agenda.txt")[0]
            == 202
        )
        alice.expect_type("sent", ref="gd-1", timeout=15)
        # Then bob, online, gets both as they are sent
        kinds = [bob.expect_type("message", timeout=15)["message"]["media"]["kind"] for _ in range(2)]
        assert kinds == ["voice", "document"]
    finally:
        alice.close()
        bob.close()

    # When the node restarts, and carol connects and syncs from the start
    node.stop()
    node.start()
    carol = plain(node, carol_id)
    try:
        carol.publish({"v": 1, "type": "sync", "id": "s-1", "after": 0, "limit": 50})
        page = carol.expect_type("sync_page", ref="s-1", timeout=15)
        media = [e["message"]["media"] for e in page["entries"] if e["type"] == "message"]
        # Then she gets both, as they were stored, and may download them: the document as an attachment
        assert [m["kind"] for m in media] == ["voice", "document"]
        assert media[0]["duration"] == pytest.approx(2.0, abs=0.1) and len(media[0]["waveform"]) == 64
        headers, body = fetch(node, carol_id, media[1]["key"])
        assert body == b"agenda\n" and headers["Content-Disposition"].startswith(
            'attachment; filename="agenda.txt"'
        )
        assert fetch(node, carol_id, media[0]["key"])[1] == opus
    finally:
        carol.close()


# ---------------------------------------------------------------------- the SDK, groups, sync


def test_the_sdk_sends_voice_and_documents_to_a_group_and_an_offline_member_syncs_them(
    node: RunningNode, tmp_path: Path, opus: bytes
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    (tmp_path / "minutes.pdf").write_bytes(pdf("Minutes"))
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        team = alice.create_group("team", [bob_id, carol_id])
        # When alice sends a voice note (bytes) and a PDF (a path) while carol is offline
        voice = alice.send_voice(team.id, opus, caption="listen")
        doc = alice.send_document(team.id, tmp_path / "minutes.pdf")
        voice.wait("sent", timeout=20)
        doc.wait("sent", timeout=20)

        # Then bob gets both, typed
        first, second = next_message(bob), next_message(bob)
        assert (first.id, second.id) == (voice.message_id, doc.message_id)
        assert first.text == "listen" and first.media is not None and first.media.is_voice
        assert first.media.duration == pytest.approx(2.0, abs=0.1) and len(first.media.waveform or ()) == 64
        assert second.media is not None and second.media.is_document
        assert (second.media.name, second.media.type) == ("minutes.pdf", "application/pdf")
        assert bob.download(first) == opus and bob.download(second) == pdf("Minutes")
        if pdf_support() is not None:
            assert second.media.thumbnail is not None
            assert bob.download(second, thumbnail=True)[:3] == b"\xff\xd8\xff"
        else:
            assert second.media.thumbnail is None

    # When carol connects later, sync brings both, and she may download them
    with connect(node, carol_id) as carol:
        got = [next_message(carol), next_message(carol)]
        assert [m.id for m in got] == [voice.message_id, doc.message_id]
        assert got[0].media is not None and got[0].media.waveform == first.media.waveform
        assert carol.download(got[1]) == pdf("Minutes")
        carol.mark_read(got[0])


def test_two_devices_of_the_recipient_both_get_a_document(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with (
        connect(node, alice_id) as alice,
        harness.connect(node, bob_id, media_url=node.media_url, device="phone") as phone,
        harness.connect(node, bob_id, media_url=node.media_url, device="laptop") as laptop,
    ):
        out = alice.send_document(bob_id, io.BytesIO(b"%PDF-1.4 not really"), name="x.pdf")
        for device in (phone, laptop):
            message = next_message(device)
            assert message.id == out.wait("sent", timeout=15).message_id
            assert message.media is not None and message.media.name == "x.pdf"


def test_resending_a_voice_note_with_the_same_id_stores_it_once(node: RunningNode, opus: bytes) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        first = alice.send_voice(bob_id, opus, id="voice-1").wait("sent", timeout=15)
        again = alice.send_voice(bob_id, opus, id="voice-1")
        assert again.status is Status.SENT and again.message_id == first.message_id
        assert [m.id for m in bob.messages(timeout=2)] == [first.message_id]
    assert len(stored(node)) == 1


def test_the_asyncio_sdk_sends_voice_notes_and_documents(node: RunningNode, opus: bytes) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            aio.Client(
                "127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id], media_url=node.media_url
            ) as alice,
            aio.Client(
                "127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id], media_url=node.media_url
            ) as bob,
        ):
            await alice.wait_synced(timeout=10)
            await bob.wait_synced(timeout=10)
            voice = await alice.send_voice(bob_id, io.BytesIO(opus))
            doc = await alice.send_document(bob_id, b"a,b\n1,2\n", name="../../etc/table.csv")
            await voice.wait("sent", timeout=15)
            await doc.wait("sent", timeout=15)
            got = []
            async for message in bob.messages(timeout=15):
                got.append(message)
                if len(got) == 2:
                    break
            by_id = {message.id: message.media for message in got}  # processed side by side: any order
            voice_media, doc_media = by_id[voice.message_id], by_id[doc.message_id]
            assert voice_media is not None and voice_media.kind == "voice"
            assert doc_media is not None and doc_media.name == "table.csv"
            assert await bob.download(doc_media) == b"a,b\n1,2\n"

    asyncio.run(scenario())


def test_deleting_a_voice_note_and_a_pdf_removes_their_objects(node: RunningNode, opus: bytes) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        voice = alice.send_voice(bob_id, opus).wait("sent", timeout=15)
        doc = alice.send_document(bob_id, pdf("secret"), name="secret.pdf").wait("sent", timeout=15)
        keys = []
        for message in (next_message(bob), next_message(bob)):
            assert message.media is not None
            keys.append(message.media.key)
            if message.media.thumbnail is not None:
                keys.append(message.media.thumbnail.key)
        assert wait_until(lambda: sorted(keys) == stored(node), timeout=5)  # the uploads are cleared
        for sent in (voice, doc):
            deletion = node.call(node.node.delete_message(sent.message_id))
            assert deletion.changed and "media" not in deletion.message
        for key in keys:
            assert http(node, "GET", f"/media/{key}", user=bob_id)[0] == 404
        assert wait_until(lambda: stored(node) == [], timeout=5)


# ---------------------------------------------------------------------- hostile input


def refused_voice(node: RunningNode, body: bytes) -> tuple[int, dict[str, Any]]:
    """Upload ``body`` as a voice note; the answer at once, or the error event of the processing."""
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    try:
        status, answer = upload(node, alice_id, body, to=bob_id, cid="bad-1", kind="voice")
        if status == 202:
            answer = alice.expect_type("error", ref="bad-1", timeout=15)
        assert [kind for kind, _ in bob.drain()] == []  # nothing reached bob
    finally:
        alice.close()
        bob.close()
    assert wait_until(lambda: stored(node) == [], timeout=5)
    return status, answer


def test_a_video_sent_as_a_voice_note_is_refused(node: RunningNode, tmp_path: Path) -> None:
    need_pyav()
    status, answer = refused_voice(node, video(tmp_path / "clip.mp4"))
    assert (status, answer["code"]) == (415, "unsupported_media")
    status, answer = refused_voice(node, jpeg())
    assert (status, answer["code"]) == (415, "unsupported_media")


def test_audio_with_a_video_stream_is_refused(node: RunningNode, tmp_path: Path) -> None:
    need_pyav()
    status, answer = refused_voice(node, audio_with_video(tmp_path / "both.webm"))
    assert (status, answer["code"]) == (202, "bad_media") and "video stream" in answer["message"]
    status, answer = refused_voice(node, video(tmp_path / "v.webm", container="webm", codec="libvpx"))
    assert (status, answer["code"]) == (202, "bad_media")


def test_a_truncated_ogg_voice_note_is_refused(node: RunningNode, opus: bytes) -> None:
    status, answer = refused_voice(node, opus[: len(opus) - 100])
    assert (status, answer["code"]) == (202, "bad_media") and "truncated" in answer["message"]


def test_garbage_behind_an_audio_signature_is_refused(node: RunningNode) -> None:
    need_pyav()  # without PyAV an MP3 is not decoded: it would be stored as sent
    status, answer = refused_voice(node, b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40)
    assert (status, answer["code"]) == (202, "bad_media")


@pytest.fixture
def small_node(tmp_path: Path) -> Iterator[RunningNode]:
    limits = {"media.max_document_bytes": 64 * 1024, "media.max_audio_bytes": 32 * 1024}
    running = RunningNode(node_settings(tmp_path, **limits)).start()
    try:
        yield running
    finally:
        running.close()


def test_an_oversized_document_or_voice_note_is_refused_with_413_and_nothing_is_stored(
    small_node: RunningNode,
) -> None:
    node = small_node
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    big = b"x" * (64 * 1024 + 1)
    status, answer = upload(node, alice_id, big, to=bob_id, cid="big-1", kind="document", name="a.txt")
    assert (status, answer["code"]) == (413, "too_large") and str(64 * 1024) in answer["message"]

    # without a length announced, the server stops reading at the limit
    def chunks() -> Iterator[bytes]:
        yield from (big[i : i + 8192] for i in range(0, len(big), 8192))

    query = urllib.parse.urlencode({"to": bob_id, "id": "big-2", "kind": "document"})
    request = urllib.request.Request(f"{node.media_url}/media?{query}", data=chunks(), method="POST")
    secret = base64.b64encode(f"{alice_id}:{node.tokens[alice_id]}".encode()).decode()
    request.add_header("Authorization", f"Basic {secret}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413
    refused.value.close()

    ogg = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead" + b"\x00" * (32 * 1024)
    status, answer = upload(node, alice_id, ogg, to=bob_id, cid="big-3", kind="voice")
    assert (status, answer["code"]) == (413, "too_large")
    assert stored(node) == []


def test_a_zip_bomb_is_kept_as_sent_and_never_unpacked(pair: Pair) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\x00" * (50 * 1024 * 1024))  # 50 MiB that pack to ~50 KiB
    bomb = buffer.getvalue()
    assert len(bomb) < 100 * 1024
    media = pair.deliver(bomb, kind="document", name="fun.zip")
    assert (media["type"], media["size"], media["name"]) == ("application/zip", len(bomb), "fun.zip")
    assert pair.fetch(media["key"])[1] == bomb


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\evil.dll", "evil.dll"),
        ("report\r\nSet-Cookie: a=b.pdf", "reportSet-Cookie: a=b.pdf"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("...hidden", "hidden"),
        ("", "file"),
        ("/", "file"),
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_document_names_are_made_safe(pair: Pair, sent: str, kept: str) -> None:
    media = pair.deliver(b"hello", kind="document", name=sent)
    assert media["name"] == kept
    disposition = pair.fetch(media["key"])[0]["Content-Disposition"]
    assert disposition.startswith("attachment; ") and "\r" not in disposition and "\n" not in disposition


@pytest.mark.parametrize(
    "markup",
    [
        b"<!DOCTYPE html><html><script>alert(document.cookie)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>',
    ],
)
def test_html_and_svg_documents_are_never_served_as_pages(pair: Pair, markup: bytes) -> None:
    media = pair.deliver(markup, kind="document", name="page.html")
    assert media["type"] == "text/plain"
    headers, body = pair.fetch(media["key"])
    assert body == markup
    assert headers["Content-Type"] == "text/plain" and "html" not in headers["Content-Type"]
    assert headers["Content-Disposition"].startswith("attachment; ")
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "broken",
    [
        b"%PDF-1.7\n" + b"\x00\xff" * 5000,  # garbage after the signature
        pdf("cut")[:200],  # a truncated PDF
        pdf("loop").replace(b"/Kids [3 0 R]", b"/Kids [2 0 R]"),  # a page tree that contains itself
        pdf("huge").replace(b"[0 0 298 420]", b"[0 0 99999999 99999999]"),  # a page larger than any screen
    ],
)
def test_a_broken_pdf_is_accepted_without_a_thumbnail(pair: Pair, broken: bytes) -> None:
    need(pdf_support() is not None, "pypdfium2 is not installed: no PDF is rendered")
    media = pair.deliver(broken, kind="document", name="x.pdf")
    assert (media["type"], media["size"]) == ("application/pdf", len(broken))
    if media["thumbnail"] is not None:  # the huge page renders, within the pixel cap
        assert media["thumbnail"]["width"] <= 320 and media["thumbnail"]["height"] <= 320
    assert pair.fetch(media["key"])[1] == broken


def test_bad_kind_and_name_parameters_are_refused(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    for params, wanted in [
        ({"kind": "sticker"}, "kind"),
        ({"name": "a.jpg"}, "name"),  # only a document has a name
        ({"kind": "voice", "name": "a.ogg"}, "name"),
        ({"kind": "document", "name": "x" * 1025}, "name"),
    ]:
        status, answer = upload(node, alice_id, jpeg(), to=bob_id, cid="k-1", **params)
        assert (status, answer["code"]) == (400, "bad_request") and wanted in answer["message"]
    status, answer = upload(node, alice_id, b"", to=bob_id, cid="k-2", kind="document")
    assert (status, answer["code"]) == (400, "bad_request")
    # and an image is still an image without kind; audio without kind is refused as before
    assert upload(node, alice_id, b"ID3\x04" + b"\x00" * 100, to=bob_id, cid="k-3")[0] == 415
    assert stored(node) == []
