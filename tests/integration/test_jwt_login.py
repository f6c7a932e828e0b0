"""Bring your own users: JWTs of the app's auth server log in over MQTT and HTTP, against a real node."""

from __future__ import annotations

import base64
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from broker.node import NodeError
from client_sdk import Client, Message
from tests.harness import RunningNode, connect, node_settings, unique
from tests.jwt_tokens import AUDIENCE, ISSUER, AuthServer, forged_hs256, public_jwk, unsigned
from tests.media_files import png
from tests.plain import PlainClient


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> AuthServer:
    return AuthServer(tmp_path_factory.mktemp("auth"))


def jwt_node(tmp_path: Path, auth: AuthServer, **changes: Any) -> RunningNode:
    limits = changes.pop("limits", {})
    return RunningNode(node_settings(tmp_path, **auth.settings(**changes), **limits)).start()


LENIENT = {"limits.login_failures_free": 1000, "limits.address_failures_max": 1000}
"""Login limits that let a test try every bad token at full speed (the throttle has a test of its own)."""


@pytest.fixture
def node(tmp_path: Path, auth: AuthServer) -> Iterator[RunningNode]:
    """A node that takes the auth server's JWTs (HS256, RS256, ES256) and creates their users."""
    running = jwt_node(tmp_path, auth, jwt_create_users=True, limits=LENIENT)
    try:
        yield running
    finally:
        running.close()


def refusal(port: int, user: str, secret: str) -> str:
    """The CONNACK refusal of a login (it must be refused)."""
    with pytest.raises(ConnectionRefusedError) as refused:
        PlainClient(port, user, secret).close()
    return str(refused.value)


def users(node: RunningNode) -> set[str]:
    assert node.node.store is not None
    return {info.id for info in node.node.store.list_users()}


def http(
    node: RunningNode, method: str, path: str, user: str, secret: str, body: bytes | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{node.media_url}{path}", data=body, method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_plain_mqtt_clients_log_in_with_hs256_and_chat(node: RunningNode, auth: AuthServer) -> None:
    # Given alice, known to the app only, and bob with a token of `mqchat users`
    alice_id = unique("alice")
    bob_id, bob_token = node.add_user("bob")

    # When alice logs in with a JWT of the app's auth server
    alice = PlainClient(node.port, alice_id, auth.token(alice_id))
    bob = PlainClient(node.port, bob_id, bob_token)
    try:
        assert alice.inbox() == [1] and bob.inbox() == [1]

        # Then she chats like anyone: sent, the message, delivered
        cid = alice.send(bob_id, "hello from a JWT")
        alice.expect_type("sent", ref=cid)
        message = bob.expect_type("message")["message"]
        assert (message["from"], message["text"]) == (alice_id, "hello from a JWT")
        bob.publish(
            {"v": 1, "type": "receipt", "id": unique("r"), "status": "delivered", "messages": [message["id"]]}
        )
        receipt = alice.expect_type("receipt", status="delivered")
        assert (receipt["message_id"], receipt["by"]) == (message["id"], bob_id)
    finally:
        alice.close()
        bob.close()
    assert alice_id in users(node)  # created on her first login


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_sdk_clients_log_in_with_each_algorithm_and_get_sent_and_delivered(
    node: RunningNode, auth: AuthServer, alg: str
) -> None:
    alice_id, bob_id = unique("alice"), unique("bob")
    node.tokens[alice_id] = auth.token(alice_id, alg=alg)
    node.tokens[bob_id] = auth.token(bob_id, alg=alg)

    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        out = alice.send(bob_id, f"signed with {alg}")
        out.wait("sent", timeout=10)
        received = next_message(bob)
        assert (received.sender, received.text) == (alice_id, f"signed with {alg}")
        out.wait("delivered", timeout=10)


def next_message(client: Client, timeout: float = 10) -> Message:
    for message in client.messages(timeout=timeout):
        return message
    raise AssertionError("no message arrived")


def bad_tokens(auth: AuthServer, user: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": user, "iss": ISSUER, "aud": AUDIENCE, "exp": now + 60}
    pem = auth.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    good = auth.token(user)
    return {
        "expired": auth.token(user, exp=now - 600),
        "not yet valid": auth.token(user, nbf=now + 600),
        "wrong signature": forged_hs256(claims, b"a secret that is not the shared one, at all"),
        "HS256 signed with the RSA public key": forged_hs256(claims, pem, kid="rsa-1"),
        "wrong issuer": auth.token(user, iss="https://evil.example/"),
        "wrong audience": auth.token(user, aud="another-service"),
        "alg none": unsigned(claims),
        "algorithm not configured": auth.token(user, alg="PS256"),
        "malformed": good[: good.rindex(".") + 5],
        "another sub": auth.token(unique("mallory")),
    }


def test_each_bad_token_is_refused_like_a_wrong_password_and_changes_nothing(
    node: RunningNode, auth: AuthServer
) -> None:
    # Given alice and bob chatting, alice with a password
    alice_id, alice_token = node.add_user("alice", password="correct horse battery")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token, device="phone")
    bob = PlainClient(node.port, bob_id, bob_token, device="phone")
    alice.inbox()
    bob.inbox()
    wrong_password = refusal(node.port, alice_id, "wrong horse")
    before = users(node)

    # When each bad token is tried for alice, for bob, and for someone unknown
    newcomer = unique("newcomer")
    for user in (alice_id, bob_id, newcomer):
        for case, token in bad_tokens(auth, user).items():
            # Then each is refused with the very CONNACK of a wrong password
            assert refusal(node.port, user, token) == wrong_password, case

    # and nobody was created, and alice and bob chat on
    assert users(node) == before
    alice.send(bob_id, "still here")
    assert bob.expect_type("message")["message"]["text"] == "still here"
    PlainClient(node.port, alice_id, "correct horse battery", device="laptop").close()
    alice.close()
    bob.close()


def test_a_sub_that_is_not_a_user_id_is_refused(node: RunningNode, auth: AuthServer) -> None:
    wrong_password = refusal(node.port, unique("alice"), "wrong")

    for sub in ("bad name", "x" * 65, "a/b", ""):
        assert refusal(node.port, sub, auth.token(sub)) == wrong_password
    assert not any(" " in user or "/" in user for user in users(node))


def test_without_create_users_only_existing_users_log_in_with_a_jwt(tmp_path: Path, auth: AuthServer) -> None:
    # Given a node that takes RS256 tokens only and creates nobody
    node = jwt_node(
        tmp_path, auth, jwt_secret=None, jwt_algorithms=["RS256"], jwt_create_users=False, limits=LENIENT
    )
    try:
        # and a user of `mqchat users add` and one the node never heard of
        known, _ = node.add_user("known")
        stranger = unique("stranger")
        wrong_password = refusal(node.port, known, "wrong")

        # Then the known one logs in with a JWT, the stranger is refused like a wrong password
        PlainClient(node.port, known, auth.token(known, alg="RS256")).close()
        assert refusal(node.port, stranger, auth.token(stranger, alg="RS256")) == wrong_password
        assert stranger not in users(node)
        # and HS256 is refused here, also when signed with the public key (algorithm confusion)
        for case, token in bad_tokens(auth, known).items():
            assert refusal(node.port, known, token) == wrong_password, case
        assert refusal(node.port, known, auth.token(known)) == wrong_password
    finally:
        node.close()


def test_the_media_endpoint_takes_a_jwt_and_refuses_a_bad_one_with_401(
    node: RunningNode, auth: AuthServer
) -> None:
    alice_id, bob_id = unique("alice"), unique("bob")
    node.tokens[alice_id] = auth.token(alice_id, alg="ES256")
    node.tokens[bob_id] = auth.token(bob_id)
    with (
        connect(node, alice_id, media_url=node.media_url) as alice,
        connect(node, bob_id, media_url=node.media_url) as bob,
    ):
        # When alice sends an image with her JWT as the endpoint's password
        out = alice.send_media(bob_id, io.BytesIO(png(64, 48)), caption="a picture")
        out.wait("sent", timeout=15)
        # Then bob gets it and downloads it with his
        message = next_message(bob, timeout=15)
        assert message.media is not None and message.media.width == 64
        assert len(bob.download(message)) == message.media.size

    # and a bad token gets the 401 of a wrong token
    wrong = http(node, "POST", f"/media?to={bob_id}&id=x1", alice_id, "mqc_wrong", body=png(8, 8))
    for case, token in bad_tokens(auth, alice_id).items():
        answer = http(node, "POST", f"/media?to={bob_id}&id=x1", alice_id, token, body=png(8, 8))
        assert answer == wrong, case
    assert wrong[0] == 401 and json.loads(wrong[1])["code"] == "unauthorized"


def test_failed_jwt_logins_count_in_the_login_throttle(tmp_path: Path, auth: AuthServer) -> None:
    node = jwt_node(
        tmp_path,
        auth,
        jwt_create_users=True,
        limits={"limits.address_failures_max": 4, "limits.address_lockout": 60.0},
    )
    try:
        alice_id = unique("alice")
        # When an address presents four bad JWTs
        for token in list(bad_tokens(auth, alice_id).values())[:4]:
            refusal(node.port, alice_id, token)

        # Then it is locked out: a good JWT is refused over MQTT, and the media endpoint says 429
        refusal(node.port, alice_id, auth.token(alice_id))
        assert http(node, "GET", "/media/m/x.jpg", alice_id, auth.token(alice_id))[0] == 429
    finally:
        node.close()


def test_a_jwks_key_that_cannot_be_used_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [public_jwk(weak, "weak")]}))
    running = RunningNode(node_settings(tmp_path, **{"auth.jwt_jwks_file": jwks}))
    try:
        with pytest.raises(NodeError, match=r"^auth\.jwt_jwks_file: key 'weak': an RSA key of 1024 bits"):
            running.start()
    finally:
        running.close()
