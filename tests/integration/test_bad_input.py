"""Bad input gets a clear error to its sender; nothing else is affected."""

from __future__ import annotations

import json

import pytest

from tests.harness import RunningNode, unique
from tests.plain import PlainClient
from tests.raw_mqtt import login

BAD_COMMANDS = [
    pytest.param(b"{not json", "bad_json", None, id="malformed-json"),
    pytest.param(b"\xff\xfe\x00garbage", "bad_json", None, id="not-utf8"),
    pytest.param(b"[1, 2, 3]", "bad_request", None, id="not-an-object"),
    pytest.param(
        b'{"type": "send", "id": "x1", "to": "bob", "text": "hi"}', "bad_request", "x1", id="no-version"
    ),
    pytest.param(b'{"v": 9, "type": "send", "id": "x2"}', "unsupported_version", "x2", id="future-version"),
    pytest.param(b'{"v": 1, "type": "dance", "id": "x3"}', "unknown_type", "x3", id="unknown-type"),
    pytest.param(
        b'{"v": 1, "type": "send", "id": "x4", "to": "bob", "text": 42}', "bad_request", "x4", id="wrong-type"
    ),
    pytest.param(
        b'{"v": 1, "type": "send", "id": "x5", "to": "bob"}', "bad_request", "x5", id="missing-field"
    ),
    pytest.param(
        b'{"v": 1, "type": "send", "id": "x6", "to": "b b", "text": "x"}',
        "bad_request",
        "x6",
        id="bad-user-id",
    ),
    pytest.param(
        b'{"v": 1, "type": "sync", "id": "x7", "after": -1}', "bad_request", "x7", id="negative-cursor"
    ),
    pytest.param(
        b'{"v": 1, "type": "receipt", "id": "x8", "status": "seen", "messages": ["a"]}',
        "bad_request",
        "x8",
        id="unknown-status",
    ),
    pytest.param(
        b'{"v": 1, "type": "send", "id": "x9", "to": "bob", "text": "", "extra": 1}',
        "bad_request",
        "x9",
        id="extra-field",
    ),
]


@pytest.fixture
def pair(node: RunningNode):  # type: ignore[no-untyped-def]
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice, bob = PlainClient(node.port, alice_id, alice_token), PlainClient(node.port, bob_id, bob_token)
    alice.inbox()
    bob.inbox()
    yield alice, bob
    alice.close()
    bob.close()


def _still_works(alice: PlainClient, bob: PlainClient) -> None:
    cid = alice.send(bob.user, "still here")
    alice.expect_type("sent", ref=cid)
    assert bob.expect_type("message")["message"]["text"] == "still here"


@pytest.mark.parametrize(("payload", "code", "ref"), BAD_COMMANDS)
def test_a_bad_command_gets_a_clear_error_and_the_connection_keeps_working(
    pair: tuple[PlainClient, PlainClient], payload: bytes, code: str, ref: str | None
) -> None:
    alice, bob = pair

    alice.publish(payload)

    error = alice.expect_type("error")
    assert (error["code"], error["ref"]) == (code, ref)
    assert error["message"]
    _still_works(alice, bob)


def test_an_oversized_payload_is_refused(pair: tuple[PlainClient, PlainClient]) -> None:
    alice, bob = pair
    text = "x" * 70_000

    alice.publish({"v": 1, "type": "send", "id": "big", "to": bob.user, "text": text})

    error = alice.expect_type("error")
    assert error["code"] == "too_large"
    _still_works(alice, bob)


def test_a_packet_announced_as_hundreds_of_megabytes_is_not_waited_for(
    node: RunningNode, pair: tuple[PlainClient, PlainClient]
) -> None:
    alice, bob = pair
    mallory_id, mallory_token = node.add_user("mallory")

    # Given mallory logged in over plain TCP
    sock = login(node.port, f"{mallory_id}/raw", mallory_id, mallory_token)
    # When she announces a PUBLISH of 256 MiB, then sends nothing more
    sock.sendall(b"\x32\xff\xff\xff\x7f")
    # Then the node closes her connection at once instead of waiting to buffer it all
    assert sock.recv(16) == b""
    sock.close()
    _still_works(alice, bob)


def test_a_message_to_an_unknown_user_is_refused(pair: tuple[PlainClient, PlainClient]) -> None:
    alice, bob = pair

    alice.send(unique("nobody"), "hello?", cid="to-nobody")

    error = alice.expect_type("error", ref="to-nobody")
    assert error["code"] == "unknown_user"
    _still_works(alice, bob)


def test_a_spoofed_sender_is_refused_and_never_reaches_anyone(pair: tuple[PlainClient, PlainClient]) -> None:
    alice, bob = pair

    alice.publish(
        {"v": 1, "type": "send", "id": "spoof", "to": bob.user, "text": "I am bob", "from": bob.user}
    )

    assert alice.expect_type("error", ref="spoof")["code"] == "bad_request"
    _still_works(alice, bob)  # the only message bob sees is alice's real one


def test_publishing_outside_the_own_outbox_is_refused(pair: tuple[PlainClient, PlainClient]) -> None:
    alice, bob = pair
    forged = {"v": 1, "type": "message", "cursor": 99, "message": {"text": "forged"}}

    for topic in (f"chat/{bob.user}/in", f"chat/{bob.user}/out", f"presence/{bob.user}", "anything/else"):
        alice.publish(json.dumps(forged).encode(), topic=topic)
        assert alice.expect_type("error")["code"] == "forbidden"

    assert [p for _, p in bob.drain(0.5) if isinstance(p, dict) and p.get("cursor") == 99] == []
    _still_works(alice, bob)


def test_subscribing_outside_the_acl_is_refused(pair: tuple[PlainClient, PlainClient]) -> None:
    alice, bob = pair

    refused = [
        alice.subscribe(t)
        for t in (f"chat/{bob.user}/in", f"chat/{bob.user}/out", "chat/#", "#", "chat/+/in")
    ]
    # presence is for contacts only (the default): bob is a stranger, the wildcard covers strangers
    not_yet = [alice.subscribe(t) for t in (f"presence/{bob.user}", "presence/+", "presence/#")]
    own = alice.subscribe(f"presence/{alice.user}")

    assert refused == [[0x80]] * 5
    assert not_yet == [[0x80]] * 3
    assert own == [1]
    _still_works(alice, bob)  # alice's message makes them contacts
    assert alice.subscribe(f"presence/{bob.user}") == [1]


def test_receipts_for_messages_not_sent_to_you_are_refused(pair: tuple[PlainClient, PlainClient]) -> None:
    alice, bob = pair
    cid = alice.send(bob.user, "mine")
    message_id = alice.expect_type("sent", ref=cid)["message"]["id"]

    alice.publish({"v": 1, "type": "receipt", "id": "self-read", "status": "read", "messages": [message_id]})

    assert alice.expect_type("error", ref="self-read")["code"] == "not_recipient"
    assert [p for _, p in alice.drain(0.3) if isinstance(p, dict) and p.get("type") == "receipt"] == []
