"""Per-user upload limits on the real node's media endpoint, through the real SDK and raw HTTP.

A user who starts too many uploads a minute, or sends too many bytes an hour, is refused with
HTTP 429 ``rate_limited`` and a ``Retry-After``; nothing of the refused upload is stored, the SDK
raises CommandRejected carrying the wait, and every other user keeps uploading.
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from client_sdk import CommandRejected
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration.test_media import connect, http, next_message, stored
from tests.media_files import jpeg

PER_MINUTE = 3
BYTES_PER_HOUR = 1024 * 1024


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[RunningNode]:
    limits = {"limits.uploads_per_minute": PER_MINUTE, "limits.upload_bytes_per_hour": BYTES_PER_HOUR}
    running = RunningNode(node_settings(tmp_path, **limits)).start()
    try:
        yield running
    finally:
        running.close()


def noise_png(side: int = 500) -> bytes:
    """A valid PNG that does not compress: side * side * 3 bytes of noise (750 kB for 500)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def objects_settled(node: RunningNode, count: int) -> bool:
    """The media folder holds exactly ``count`` objects (each image and its thumbnail)."""
    return wait_until(lambda: len(stored(node)) == count, timeout=15)


def test_too_many_uploads_a_minute_are_refused_with_429_and_others_carry_on(limited: RunningNode) -> None:
    node = limited
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        # Given alice has started as many uploads as a minute allows
        sent = [alice.send_media(bob_id, io.BytesIO(jpeg()), id=f"burst-{i}") for i in range(PER_MINUTE)]

        # When she starts one more, Then the SDK raises rate_limited with the server's wait
        with pytest.raises(CommandRejected) as refused:
            alice.send_media(bob_id, io.BytesIO(jpeg()), id="one-too-many")
        error = refused.value
        assert (error.code, error.ref) == ("rate_limited", "one-too-many")
        assert error.retry_after is not None and 1 <= error.retry_after <= 60
        assert "uploads a minute" in error.message

        # and the raw answer is a 429 with a JSON error and a Retry-After in whole seconds
        status, headers, body = http(node, "POST", f"/media?to={bob_id}&id=raw-1", user=alice_id, body=jpeg())
        assert status == 429 and json.loads(body)["code"] == "rate_limited"
        assert headers["Content-Type"].startswith("application/json")
        assert 1 <= int(headers["Retry-After"]) <= 60

        # Then what was accepted arrives, and nothing of the refused uploads
        for out in sent:
            out.wait("sent", timeout=15)
        received = [next_message(bob).id for _ in range(PER_MINUTE)]
        assert sorted(received) == sorted(str(out.message_id) for out in sent)
        assert list(bob.messages(timeout=0.5)) == []
        assert objects_settled(node, 2 * PER_MINUTE)

        # and another user keeps uploading as usual
        with connect(node, carol_id) as carol:
            carol.send_media(bob_id, io.BytesIO(jpeg()), caption="still works").wait("sent", timeout=15)
        assert next_message(bob).text == "still works"


def test_too_many_bytes_an_hour_are_refused_but_small_files_and_other_users_pass(
    limited: RunningNode,
) -> None:
    node = limited
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    dave_id, _ = node.add_user("dave")
    big = noise_png()
    assert BYTES_PER_HOUR // 2 < len(big) < BYTES_PER_HOUR
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        # Given alice has uploaded most of what an hour allows
        alice.send_media(bob_id, io.BytesIO(big), id="big-1").wait("sent", timeout=30)

        # When she uploads as much again, Then it is refused before a byte is stored
        with pytest.raises(CommandRejected) as refused:
            alice.send_media(bob_id, io.BytesIO(big), id="big-2")
        error = refused.value
        assert error.code == "rate_limited" and "an hour" in error.message
        assert error.retry_after is not None and error.retry_after > 60  # the bytes come back slowly

        # and a client that asks first (Expect: 100-continue) hears 429 before it sends the body
        assert expect_answer(node, alice_id, bob_id, len(big)).startswith(b"HTTP/1.1 429")

        # Then a small photo still fits in what is left, and another user sends a big one
        alice.send_media(bob_id, io.BytesIO(jpeg()), id="small-1").wait("sent", timeout=15)
        with connect(node, dave_id) as dave:
            dave.send_media(bob_id, io.BytesIO(big), id="big-3").wait("sent", timeout=30)
        senders = sorted(next_message(bob).sender for _ in range(3))
        assert senders == sorted([alice_id, alice_id, dave_id])
        assert list(bob.messages(timeout=0.5)) == []
    assert objects_settled(node, 6)


def expect_answer(node: RunningNode, user: str, to: str, length: int) -> bytes:
    """The server's first answer to upload headers sent with ``Expect: 100-continue``."""
    auth = base64.b64encode(f"{user}:{node.tokens[user]}".encode()).decode()
    with socket.create_connection(("127.0.0.1", node.node.http_port), timeout=10) as conn:
        conn.sendall(
            f"POST /media?to={to}&id=ask-1 HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            f"Authorization: Basic {auth}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        return conn.recv(65536)
