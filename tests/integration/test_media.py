"""Images and videos through the real SDK and the real node: upload, processing, delivery, download."""

from __future__ import annotations

import base64
import io
import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from PIL import ExifTags, Image

from client_sdk import Client, CommandRejected, Message, Status
from tests import harness
from tests.harness import RunningNode, need, node_settings, wait_until
from tests.media_files import bare_mp4, gps_jpeg, have_pyav, jpeg, png, png_bomb, real_png_bomb, video
from workers.media.local import LocalStorage, load_secret


def connect(node: RunningNode, user: str) -> AbstractContextManager[Client]:
    """A synced client of ``user`` that sends media to this node's HTTP endpoint."""
    return harness.connect(node, user, media_url=node.media_url)


def next_message(client: Client, timeout: float = 15) -> Message:
    for message in client.messages(timeout=timeout):
        return message
    raise AssertionError("no message arrived")


def stored(node: RunningNode) -> list[str]:
    """Every object in the node's media folder."""
    root = node.settings.data_dir / "media"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def http(
    node: RunningNode, method: str, path: str, *, user: str | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP request to the media endpoint, redirects not followed."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(f"{node.media_url}{path}", data=body, method=method)
    if user is not None:
        secret = base64.b64encode(f"{user}:{node.tokens[user]}".encode()).decode()
        request.add_header("Authorization", f"Basic {secret}")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_an_image_round_trips_processed_with_a_valid_thumbnail_and_the_same_receipts(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        # When alice sends a photo with a caption
        out = alice.send_media(bob_id, io.BytesIO(png(640, 400)), caption="the view from the top")
        out.wait("sent", timeout=15)

        # Then bob gets a message with the processed image, its size and a thumbnail
        message = next_message(bob)
        assert (message.sender, message.text, message.id) == (
            alice_id,
            "the view from the top",
            out.message_id,
        )
        media = message.media
        assert media is not None and media.is_image
        assert (media.type, media.width, media.height) == ("image/png", 640, 400)
        image = opened(bob.download(message))
        assert image.format == "PNG" and image.size == (640, 400) and len(bob.download(media)) == media.size
        assert image.convert("RGBA").getpixel((50, 16)) == (50, 16, 100, 200)  # the pixels themselves
        assert media.thumbnail is not None
        thumbnail = opened(bob.download(message, thumbnail=True))
        assert thumbnail.format == "JPEG" and thumbnail.size == (320, 200) == (
            media.thumbnail.width,
            media.thumbnail.height,
        )

        # and the receipts move as for a text message; the sender can fetch her own media too
        out.wait("delivered", timeout=10)
        bob.mark_read(message)
        out.wait(Status.READ, timeout=10)
        assert alice.download(media) == bob.download(media)

    # Then the store holds the image and its thumbnail, and no upload is left behind
    assert stored(node) == sorted([media.key, media.thumbnail.key])


def test_a_gps_tagged_jpeg_comes_back_upright_without_gps_or_any_metadata(
    node: RunningNode, tmp_path: Path
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    original = tmp_path / "IMG_0001.jpg"
    original.write_bytes(gps_jpeg(64, 32, orientation=6))  # "rotate 90° clockwise to show"
    with Image.open(original) as check:
        assert check.getexif().get_ifd(ExifTags.IFD.GPSInfo)  # it does say where

    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.send_media(bob_id, original).wait("sent", timeout=15)
        message = next_message(bob)
        assert message.text == ""
        data = bob.download(message)

    image = opened(data)
    exif = image.getexif()
    assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
    assert len(exif) == 0 and "comment" not in image.info and "exif" not in image.info
    assert b"SpyCam" not in data and b"SN-123456" not in data and b"taken at home" not in data
    # turned as the orientation said: the left (red) half is now on top
    assert image.size == (32, 64) and message.media is not None and message.media.width == 32
    red, blue = image.convert("RGB").getpixel((16, 4)), image.convert("RGB").getpixel((16, 60))
    assert red[0] > 200 > red[2] and blue[2] > 200 > blue[0]


def test_a_video_round_trips_byte_for_byte_with_a_poster(node: RunningNode, tmp_path: Path) -> None:
    need(have_pyav(), "PyAV (av) is not installed: no video to make and no poster")
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    clip = video(tmp_path / "clip.mp4")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        out = alice.send_media(bob_id, tmp_path / "clip.mp4", caption="watch this")
        out.wait("sent", timeout=20)
        message = next_message(bob)
        media = message.media
        assert media is not None and media.is_video
        assert (media.type, media.size, media.width, media.height) == ("video/mp4", len(clip), 64, 48)
        assert media.duration == pytest.approx(1.0, abs=0.2)
        assert bob.download(message) == clip
        target = tmp_path / "received.mp4"
        assert bob.download_to(target, message) == len(clip) and target.read_bytes() == clip
        poster = opened(bob.download(message, thumbnail=True))
        assert poster.format == "JPEG" and poster.size == (64, 48)
        out.wait("delivered", timeout=10)
    assert len(stored(node)) == 2


def test_a_webm_video_to_a_group_reaches_every_member_who_alone_may_download_it(
    node: RunningNode, tmp_path: Path
) -> None:
    need(have_pyav(), "PyAV (av) is not installed: no video to make")
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    mallory_id, _ = node.add_user("mallory")
    clip = video(tmp_path / "clip.webm", container="webm", codec="libvpx")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob, connect(node, carol_id) as carol:
        team = alice.create_group("crag", [bob_id, carol_id])
        out = alice.send_media(team.id, io.BytesIO(clip))
        for member in (bob, carol):
            message = next_message(member)
            assert message.group == team.id and message.media is not None
            assert message.media.type == "video/webm" and member.download(message) == clip
        out.wait("delivered", timeout=10)  # delivered to every member
        assert message.media is not None
        key = message.media.key

    # Then someone outside the group cannot fetch it, whatever key they try
    with connect(node, mallory_id) as mallory:
        with pytest.raises(CommandRejected) as refused:
            mallory.download(message)
        assert refused.value.code == "not_found"
    assert http(node, "GET", f"/media/{key}", user=mallory_id)[0] == 404
    assert http(node, "GET", f"/media/{key}")[0] == 401


def test_sending_the_same_upload_again_stores_it_once(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        first = alice.send_media(bob_id, io.BytesIO(jpeg()), id="photo-1").wait("sent", timeout=15)
        again = alice.send_media(bob_id, io.BytesIO(jpeg()), id="photo-1")
        assert again.status is Status.SENT and again.message_id == first.message_id
        assert [m.id for m in bob.messages(timeout=2)] == [first.message_id]
    assert len(stored(node)) == 2


# ---------------------------------------------------------------------- refusals


def refused_upload(node: RunningNode, file: Any, *, to: str | None = None) -> CommandRejected:
    """Send ``file`` from a new user to a new user; the refusal, whether at upload or processing."""
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        with pytest.raises(CommandRejected) as refused:
            alice.send_media(to or bob_id, file, id="refused-1").wait("sent", timeout=15)
        assert list(bob.messages(timeout=0.5)) == []  # nothing reached bob
    assert refused.value.ref == "refused-1"
    return refused.value


def test_a_decompression_bomb_is_refused_and_leaves_nothing(node: RunningNode) -> None:
    error = refused_upload(node, io.BytesIO(png_bomb(60_000, 60_000)))
    assert error.code == "bad_media" and "pixels" in error.message
    assert wait_until(lambda: stored(node) == [], timeout=5)


def test_a_real_decompression_bomb_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    node = RunningNode(node_settings(tmp_path, **{"media.max_image_pixels": 1_000_000})).start()
    try:
        bomb = real_png_bomb(2000, 2000)  # 4 megapixels in a few kilobytes
        assert len(bomb) < 10_000
        error = refused_upload(node, io.BytesIO(bomb))
        assert error.code == "bad_media" and "2000x2000 pixels" in error.message
        assert stored(node) == []
    finally:
        node.close()


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("photo.jpg", jpeg(400, 300)[:1500], "JPEG"),
        ("drawing.png", png(200, 100)[:-40], "PNG"),
        ("clip.mp4", bare_mp4(truncate=20), "truncated"),
    ],
)
def test_a_truncated_file_is_refused_and_leaves_nothing(
    node: RunningNode, tmp_path: Path, name: str, data: bytes, words: str
) -> None:
    (tmp_path / name).write_bytes(data)
    error = refused_upload(node, tmp_path / name)
    assert error.code == "bad_media" and words in error.message
    assert wait_until(lambda: stored(node) == [], timeout=5)


def test_a_file_whose_name_lies_about_its_type_is_refused_at_once(node: RunningNode, tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_bytes(b"<!DOCTYPE html><html><script>alert('hi')</script></html>" + b" " * 500)
    error = refused_upload(node, fake)
    assert error.code == "unsupported_media" and "HTML" in error.message
    assert stored(node) == []


def test_a_name_is_not_trusted_either_way(node: RunningNode, tmp_path: Path) -> None:
    # A real JPEG called .png is a JPEG
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    (tmp_path / "scan.png").write_bytes(jpeg())
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.send_media(bob_id, tmp_path / "scan.png").wait("sent", timeout=15)
        media = next_message(bob).media
        assert media is not None and media.type == "image/jpeg" and media.key.endswith(".jpg")


def test_an_oversize_upload_is_refused_with_413_and_leaves_nothing(tmp_path: Path) -> None:
    limits = {"media.max_image_bytes": 64 * 1024, "media.max_video_bytes": 128 * 1024}
    node = RunningNode(node_settings(tmp_path, **limits)).start()
    try:
        big = jpeg(10, 10)[:-2] + b"\x00" * 200_000 + b"\xff\xd9"  # a JPEG padded past 64 KiB
        error = refused_upload(node, io.BytesIO(big))
        assert error.code == "too_large" and str(64 * 1024) in error.message

        # the same without a length announced: the server stops reading at the limit
        def chunks() -> Iterator[bytes]:
            yield big[:1000]
            yield from (big[i : i + 65536] for i in range(1000, len(big), 65536))

        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        request = urllib.request.Request(
            f"{node.media_url}/media?to={bob_id}&id=chunked-1", data=chunks(), method="POST"
        )
        secret = base64.b64encode(f"{alice_id}:{node.tokens[alice_id]}".encode()).decode()
        request.add_header("Authorization", f"Basic {secret}")
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(request, timeout=10)
        assert answer.value.code == 413 and json.loads(answer.value.read())["code"] == "too_large"
        answer.value.close()
        assert stored(node) == []
    finally:
        node.close()


def test_uploads_to_someone_unknown_or_a_foreign_group_are_refused(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, bob_id) as bob:
        team = bob.create_group("bob's", [node.add_user("carol")[0]])
    with connect(node, alice_id) as alice:
        with pytest.raises(CommandRejected) as unknown:
            alice.send_media("nobody-here", io.BytesIO(jpeg()))
        assert unknown.value.code == "unknown_user"
        with pytest.raises(CommandRejected) as foreign:
            alice.send_media(team.id, io.BytesIO(jpeg()))
        assert foreign.value.code == "not_member"
        with pytest.raises(CommandRejected) as no_group:
            alice.send_media("g:doesnotexist", io.BytesIO(jpeg()))
        assert no_group.value.code == "unknown_group"
        with pytest.raises(ValueError, match="caption"):
            alice.send_media(bob_id, io.BytesIO(jpeg()), caption="x" * 2000)
    assert stored(node) == []


def test_the_endpoint_answers_clear_json_errors(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    status, headers, body = http(node, "POST", f"/media?to={bob_id}&id=x1", body=jpeg())
    assert (
        status == 401
        and json.loads(body)["code"] == "unauthorized"
        and "Basic" in headers["WWW-Authenticate"]
    )
    node.tokens["intruder"] = "mqc_wrong"
    assert http(node, "POST", f"/media?to={bob_id}&id=x1", user="intruder", body=jpeg())[0] == 401
    status, _, body = http(node, "POST", f"/media?id=x1&to={bob_id}&colour=red", user=alice_id, body=jpeg())
    assert status == 400 and "colour" in json.loads(body)["message"]
    status, _, body = http(node, "POST", f"/media?to={bob_id}&id=x1", user=alice_id, body=b"")
    assert status == 400 and json.loads(body)["code"] == "bad_request"
    status, _, body = http(node, "GET", "/media/m/../../mqchat.db", user=alice_id)
    assert status == 404 and json.loads(body)["code"] == "not_found"
    status, _, body = http(node, "GET", "/elsewhere", user=alice_id)
    assert status == 404 and json.loads(body)["code"] == "not_found"


def test_downloads_go_through_signed_links_that_expire_and_cannot_be_forged(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.send_media(bob_id, io.BytesIO(jpeg())).wait("sent", timeout=15)
        media = next_message(bob).media
    assert media is not None

    # When bob asks for the media, he is sent to a signed link, valid without credentials
    status, headers, _ = http(node, "GET", f"/media/{media.key}", user=bob_id)
    assert status == 302 and headers["Cache-Control"] == "no-store"
    link = headers["Location"]
    assert link.startswith(f"/media/signed/{media.key}?expires=")
    status, headers, body = http(node, "GET", link)
    assert status == 200 and headers["Content-Type"] == "image/jpeg" and len(body) == media.size
    assert headers["X-Content-Type-Options"] == "nosniff" and "max-age=" in headers["Cache-Control"]

    # Then a changed signature, expiry or key is refused
    forged = link[:-4] + ("0000" if not link.endswith("0000") else "1111")
    status, _, body = http(node, "GET", forged)
    assert status == 403 and json.loads(body)["code"] == "forbidden"
    expires = int(link.split("expires=")[1].split("&")[0])
    assert http(node, "GET", link.replace(f"expires={expires}", f"expires={expires + 3600}"))[0] == 403
    assert media.thumbnail is not None
    assert http(node, "GET", link.replace(media.key, media.thumbnail.key))[0] == 403

    # and a link past its time is refused as expired (made here with the node's secret)
    data_dir = node.settings.data_dir
    storage = LocalStorage(data_dir / "media", secret=load_secret(data_dir / "media.secret"))
    expired = storage.signed_url(media.key, expires_in=-1)
    status, _, body = http(node, "GET", expired)
    assert status == 403 and "expired" in json.loads(body)["message"]


def test_media_sent_while_the_recipient_is_offline_arrives_by_sync(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice:
        caption = "while you were out 📷" + "é" * 1004  # the longest caption, percent-encoded
        out = alice.send_media(bob_id, io.BytesIO(jpeg()), caption=caption).wait("sent", timeout=15)
    with connect(node, bob_id) as bob:
        message = next_message(bob)
        assert message.id == out.message_id and message.media is not None and message.text == caption
        assert opened(bob.download(message)).format == "JPEG"


def test_media_goes_over_https_when_the_node_has_a_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_certificate = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    make_certificate += ["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*make_certificate, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    node = RunningNode(node_settings(tmp_path, **{"broker.certfile": cert, "broker.keyfile": key})).start()
    try:
        assert node.media_url.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        clients = [
            Client(
                "127.0.0.1", node.port, user=u, token=node.tokens[u], tls=context, media_url=node.media_url
            )
            for u in (alice_id, bob_id)
        ]
        with clients[0] as alice, clients[1] as bob:
            alice.send_media(bob_id, io.BytesIO(jpeg())).wait("sent", timeout=15)
            assert opened(bob.download(next_message(bob))).format == "JPEG"
        # plain HTTP is not spoken there
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no answer in clear text
            urllib.request.urlopen(node.media_url.replace("https", "http") + "/media/x", timeout=5)
    finally:
        node.close()


def test_guessing_passwords_on_the_media_endpoint_locks_the_address_out(tmp_path: Path) -> None:
    node = RunningNode(node_settings(tmp_path, **{"limits.address_failures_max": 3})).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        for guess in range(3):
            node.tokens[f"guess{guess}"] = "mqc_wrong"
            assert http(node, "GET", "/media/m/x.jpg", user=f"guess{guess}")[0] == 401
        # Then even good credentials from that address are refused for a while
        status, _, body = http(node, "POST", f"/media?to={bob_id}&id=x1", user=alice_id, body=jpeg())
        assert status == 429 and json.loads(body)["code"] == "rate_limited"
    finally:
        node.close()


def test_a_client_that_asks_first_is_refused_before_it_sends_the_body(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    auth = base64.b64encode(f"{alice_id}:{node.tokens[alice_id]}".encode()).decode()

    def ask(length: int, authorization: str) -> bytes:
        """Send the headers with Expect: 100-continue and return the server's first answer."""
        with socket.create_connection(("127.0.0.1", node.node.http_port), timeout=10) as conn:
            conn.sendall(
                f"POST /media?to={bob_id}&id=big-1 HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
                f"Authorization: Basic {authorization}\r\nExpect: 100-continue\r\n\r\n".encode()
            )
            answer = conn.recv(65536)
            if answer.startswith(b"HTTP/1.1 100"):
                conn.sendall(jpeg())
                answer = conn.recv(65536)
                answer = answer[answer.index(b"HTTP/1.1 2") :] if b"HTTP/1.1 2" in answer else answer
            return answer

    assert ask(10 * 1024**3, auth).startswith(b"HTTP/1.1 413")  # 10 GiB: no, before a byte is sent
    assert ask(len(jpeg()), "bm9ib2R5OndhdA==").startswith(b"HTTP/1.1 401")
    assert ask(len(jpeg()), auth).startswith(b"HTTP/1.1 202")


def test_an_upload_cut_off_midway_leaves_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    auth = base64.b64encode(f"{alice_id}:{node.tokens[alice_id]}".encode()).decode()
    photo = jpeg(400, 300)
    with socket.create_connection(("127.0.0.1", node.node.http_port), timeout=10) as conn:
        conn.sendall(
            f"POST /media?to={bob_id}&id=cut-1 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(photo)}\r\n"
            f"Authorization: Basic {auth}\r\n\r\n".encode()
            + photo[: len(photo) // 2]
        )
        time.sleep(0.2)  # the server has started storing it
    with connect(node, bob_id) as bob:
        assert list(bob.messages(timeout=0.5)) == []
    assert wait_until(lambda: stored(node) == [], timeout=5)
