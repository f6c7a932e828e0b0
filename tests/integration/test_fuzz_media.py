"""Media uploads fuzzed against a real node over real HTTP (hypothesis).

Arbitrary bytes, files with a right magic and a wrong rest, truncated and bit-flipped images,
decompression bombs and huge declared dimensions, empty and oversized bodies, lying
Content-Types, odd headers and credentials, bad recipients and groups, and other methods: every
answer is 202 or a 4xx with a JSON ``{"code", "message"}`` of the contract (never a 5xx). Every
accepted upload ends in a ``sent`` or an ``error`` event; afterwards the media store holds exactly
the files of the stored messages, and a normal upload still works.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import struct
import uuid
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client_sdk.contract import ErrorCode
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration.test_media import connect, stored
from tests.media_files import bare_mp4, box, jpeg, png, real_png_bomb
from tests.plain import PlainClient

MAX_IMAGE = 64 * 1024
MAX_VIDEO = 128 * 1024
MAX_AUDIO = 48 * 1024
MAX_DOCUMENT = 96 * 1024
MAX_PIXELS = 1_000_000
EXAMPLES = 150

CODES = {code.value for code in ErrorCode}
MAGIC = [
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x00\x01\x00\x00WEBPVP8 ",
    b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",
    b"\x1a\x45\xdf\xa3",
    b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x13OpusHead\x01\x01",
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"\xff\xfb\x90\x64",
    b"\xff\xf1\x50\x80",
    b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00",
    b"%PDF-1.7\n",
    b"PK\x03\x04",
]
SAMPLES = {
    "jpeg": jpeg(64, 48),
    "png": png(40, 30),
    "mp4": bare_mp4(),
    "bomb": real_png_bomb(1200, 1200),  # 1.44 megapixels in a few kilobytes, past MAX_PIXELS
}


def declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height (up to 2**32 - 1 each), with a little data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", zlib.compress(b"\x00" * 4096)), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )


def gif_header(width: int, height: int) -> bytes:
    """A GIF that declares a logical screen of width x height and then ends."""
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + b"\x3b"


def flipped(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in flips:
        out[position % len(out)] = value
    return bytes(out)


dims = st.integers(0, 2**32 - 1)
bodies = st.one_of(
    st.binary(max_size=3000),
    st.tuples(st.sampled_from(MAGIC), st.binary(max_size=2000)).map(b"".join),
    st.tuples(st.sampled_from(sorted(SAMPLES)), st.floats(0, 1)).map(
        lambda s: SAMPLES[s[0]][: int(len(SAMPLES[s[0]]) * s[1])]
    ),
    st.tuples(
        st.sampled_from(["jpeg", "png"]), st.lists(st.tuples(st.integers(0), st.integers(0, 255)), max_size=8)
    ).map(lambda s: flipped(SAMPLES[s[0]], s[1])),
    st.builds(declared_png, dims, dims),
    st.builds(gif_header, st.integers(1, 65535), st.integers(1, 65535)),
    st.builds(jpeg, st.integers(1, 200), st.integers(1, 200)),
    st.just(SAMPLES["bomb"]),
    st.just(b""),
    st.integers(1, 4096).map(
        lambda extra: SAMPLES["jpeg"][:-2] + b"\x00" * (MAX_IMAGE + extra) + b"\xff\xd9"
    ),
    st.integers(1, 4096).map(
        lambda extra: box(b"ftyp", b"isom\x00\x00\x02\x00") + b"\x00" * (MAX_VIDEO + extra)
    ),
    st.integers(1, 4096).map(lambda extra: MAGIC[7] + b"\x00" * (MAX_AUDIO + extra)),
    st.integers(1, 4096).map(lambda extra: b"%PDF-1.7\n" + b"\x00" * (MAX_DOCUMENT + extra)),
)
kinds = st.one_of(
    st.just({}),
    st.just({"kind": "voice"}),
    st.builds(lambda name: {"kind": "document", "name": name}, st.text(max_size=40)),
    st.just({"kind": "document"}),
)
"""What is sent: an image or video (no ``kind``), a voice note, or a document with any name."""
recipients = st.sampled_from(["mine", "foreign", "nobody-here", "g:nothere", "b b", "", None])
command_ids = st.sampled_from([None, "", "a b", "x" * 65])
captions = st.text(max_size=40) | st.just("é" * 1025)
authorizations = st.sampled_from(
    [None, "wrong-token", "unknown-user", "Basic !!!", "Bearer abc", "Basic bm9jb2xvbg=="]
)
content_types = st.sampled_from(
    [None, "image/jpeg", "image/png", "text/html", "application/x-www-form-urlencoded"]
)


@dataclass
class Upload:
    body: bytes
    to: str | None
    command_id: str | None
    caption: str | None
    authorization: str | None
    content_type: str | None
    chunked: bool
    expect: str | None
    method: str
    extra: dict[str, str]


WRONG = {
    "to": recipients,
    "command_id": command_ids,
    "caption": captions,
    "authorization": authorizations,
    "expect": st.sampled_from(["100-continue", "magic"]),
    "method": st.sampled_from(["PUT", "GET", "DELETE"]),
    "extra": st.sampled_from([{"colour": "red"}, {"to": "bob"}]),
}
"""What else may be wrong with a request, besides its body: at most two of these at a time."""


@st.composite
def uploads(draw: st.DrawFn) -> Upload:
    wrong = draw(st.sets(st.sampled_from(sorted(WRONG)), max_size=2))
    request: dict[str, Any] = {name: draw(WRONG[name]) for name in wrong}
    return Upload(
        body=draw(bodies),
        to=request.get("to", "bob"),
        command_id=request.get("command_id", "valid"),
        caption=request.get("caption"),
        authorization=request.get("authorization", "good"),
        content_type=draw(content_types),
        chunked=draw(st.booleans()),
        expect=request.get("expect"),
        method=request.get("method", "POST"),
        extra={**draw(kinds), **request.get("extra", {})},
    )


@dataclass
class Fuzz:
    node: RunningNode
    alice: str
    names: dict[str, str]
    inbox: PlainClient
    accepted: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)

    def headers(self, upload: Upload) -> dict[str, str]:
        headers: dict[str, str] = {}
        secret = {
            "good": (self.alice, self.node.tokens[self.alice]),
            "wrong-token": (self.alice, "mqc_wrong"),
            "unknown-user": ("nobody-here", "mqc_wrong"),
        }.get(upload.authorization or "")
        if secret is not None:
            encoded = base64.b64encode(f"{secret[0]}:{secret[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {encoded}"
        elif upload.authorization is not None:
            headers["Authorization"] = upload.authorization
        if upload.content_type is not None:
            headers["Content-Type"] = upload.content_type
        if upload.expect is not None:
            headers["Expect"] = upload.expect
        return headers

    def send(self, upload: Upload) -> tuple[int, dict[str, Any], str | None]:
        cid = f"fz-{uuid.uuid4().hex}" if upload.command_id == "valid" else upload.command_id
        params = {"to": self.names.get(upload.to or "", upload.to), "id": cid, "caption": upload.caption}
        query = urlencode([(k, v) for k, v in params.items() if v is not None] + list(upload.extra.items()))
        headers = self.headers(upload)
        body: Any = upload.body
        if upload.chunked:
            headers["Transfer-Encoding"] = "chunked"
            body = iter([upload.body[i : i + 1000] for i in range(0, len(upload.body), 1000)])
        conn = http.client.HTTPConnection("127.0.0.1", self.node.node.http_port, timeout=30)
        try:
            conn.request(
                upload.method, f"/media?{query}", body=body, headers=headers, encode_chunked=upload.chunked
            )
            response = conn.getresponse()
            status, content_type, data = (
                response.status,
                response.getheader("Content-Type", ""),
                response.read(),
            )
        finally:
            conn.close()
        assert content_type.startswith("application/json"), (status, content_type, data[:200])
        answer = json.loads(data)
        assert isinstance(answer, dict), answer
        return status, answer, cid


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    path: Path = tmp_path_factory.mktemp("fuzz-media")
    limits = {
        "media.max_image_bytes": MAX_IMAGE,
        "media.max_video_bytes": MAX_VIDEO,
        "media.max_audio_bytes": MAX_AUDIO,
        "media.max_document_bytes": MAX_DOCUMENT,
        "media.max_image_pixels": MAX_PIXELS,
        "limits.uploads_per_minute": 1_000_000,  # the quota has its own tests: here every upload counts
        "limits.login_failures_free": 1_000_000,  # bad credentials are fuzzed, not throttled
        "limits.address_failures_max": 1_000_000,
    }
    node = RunningNode(node_settings(path, **limits)).start()
    try:
        alice, _ = node.add_user("alice")
        bob, _ = node.add_user("bob")
        carol, _ = node.add_user("carol")
        with connect(node, alice) as sdk_alice, connect(node, bob) as sdk_bob:
            mine = sdk_alice.create_group("alice's", [bob]).id
            foreign = sdk_bob.create_group("bob's", [carol]).id
        inbox = PlainClient(node.port, alice, node.tokens[alice], device="inbox")
        inbox.inbox()
        try:
            yield Fuzz(node, alice, {"bob": bob, "mine": mine, "foreign": foreign}, inbox)
        finally:
            inbox.close()
    finally:
        node.close()


def outcome(fuzz: Fuzz, cid: str) -> dict[str, Any]:
    """The ``sent`` or ``error`` event that ends the processing of accepted upload ``cid``."""
    return fuzz.inbox.expect(  # type: ignore[no-any-return]
        lambda topic, p: isinstance(p, dict) and p.get("ref") == cid and p.get("type") in ("sent", "error"),
        timeout=30,
    )


def test_fuzzed_uploads_get_clear_answers_and_store_nothing_they_should_not(fuzz: Fuzz) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(uploads())
    def one(upload: Upload) -> None:
        status, answer, cid = fuzz.send(upload)
        fuzz.answers[f"{status} {answer.get('code', answer.get('status'))}"] += 1
        assert status == 202 or 400 <= status < 500, (status, answer)
        if status == 202:
            assert answer["id"] == cid and answer["status"] == "processing"
            fuzz.accepted.append(str(cid))
        else:
            assert answer["code"] in CODES and isinstance(answer["message"], str) and answer["message"]

    # When every example has been sent
    one()

    # Then each accepted upload was processed: stored as a message, or refused with an error event
    endings = [outcome(fuzz, cid) for cid in fuzz.accepted]
    errors = [e["code"] for e in endings if e["type"] == "error"]
    assert all(code in CODES - {"internal"} for code in errors), errors
    keys = set()
    for ending in endings:
        media = ending["message"]["media"] if ending["type"] == "sent" else None
        if media is not None:
            keys |= {media["key"]} | ({media["thumbnail"]["key"]} if media.get("thumbnail") else set())
    processed = f"{len(fuzz.accepted)} accepted, {len(errors)} of them refused in processing"
    print(f"\nmedia fuzz: {EXAMPLES} examples, {processed}; answers {dict(fuzz.answers.most_common())}")

    # and the store holds the files of the stored messages, nothing of any refusal
    assert wait_until(lambda: set(stored(fuzz.node)) == keys, timeout=15), (sorted(stored(fuzz.node)), keys)

    # and a normal upload still works, end to end
    with connect(fuzz.node, fuzz.alice) as alice, connect(fuzz.node, fuzz.names["bob"]) as bob:
        alice.send_media(fuzz.names["bob"], io.BytesIO(jpeg()), caption="after the storm").wait(
            "sent", timeout=15
        )
        message = next(m for m in bob.messages(timeout=15) if m.text == "after the storm")
        assert message.media is not None and bob.download(message)[:3] == b"\xff\xd8\xff"
