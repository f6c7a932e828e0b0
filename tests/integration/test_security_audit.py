"""Issue 8 (reliability and security): what the other suites left unproven, against the real node.

Isolation of inboxes under every wildcard (``$SYS`` included), media out of a third user's reach,
per-user login slowing on MQTT and HTTP, plain clients refused by TLS listeners, a client that
stops reading its socket, and one that goes silent in the middle of a packet.
"""

from __future__ import annotations

import base64
import io
import select
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from client_sdk import Client
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration import test_chat_sdk
from tests.media_files import jpeg
from tests.plain import PlainClient
from tests.raw_mqtt import connect_packet, subscribe_packet


def _answered(sock: socket.socket) -> bool:
    """Whether the server has sent anything on ``sock`` yet (without waiting)."""
    return bool(select.select([sock], [], [], 0)[0])


def _http(node: RunningNode, path: str, user: str | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{node.media_url}{path}")
    if user is not None:
        secret = base64.b64encode(f"{user}:{node.tokens[user]}".encode()).decode()
        request.add_header("Authorization", f"Basic {secret}")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=10) as response:
            response.read()
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers)


# ---------------------------------------------------------------- 1. nobody reads another's inbox


def test_no_filter_lets_a_user_read_anothers_traffic(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    carol_id, carol_token = node.add_user("carol")
    alice = PlainClient(node.port, alice_id, alice_token)
    assert alice.inbox() == [1]

    filters = ["#", "+", "+/+", "+/+/+", "+/+/in", "+/+/out", "chat/#", "chat/+/in", "chat/+/out", "chat/+/+"]
    filters += [f"chat/{bob_id}/in", f"chat/{bob_id}/out", f"chat/{bob_id}/#", f"chat/{bob_id}/+"]
    filters += [
        f"+/{bob_id}/in",
        "presence/#",
        "presence/+",
        f"presence/{bob_id}",
        f"$share/g/chat/{bob_id}/in",
    ]
    filters += ["$SYS/#", "$SYS/broker/clients/connected", "$SYS/+/+"]
    refused = {topic: alice.subscribe(topic) for topic in filters}
    assert refused == {topic: [0x80] for topic in filters}

    # Then bob and carol chat, read, come and go (bob's presence is retained)
    bob, carol = PlainClient(node.port, bob_id, bob_token), PlainClient(node.port, carol_id, carol_token)
    bob.inbox()
    carol.inbox()
    cid = carol.send(bob_id, "for bob only")
    message = bob.expect_type("message")["message"]
    bob.publish({"v": 1, "type": "receipt", "id": "r1", "status": "read", "messages": [message["id"]]})
    carol.expect_type("receipt")
    carol.expect_type("sent", ref=cid)
    bob.send(carol_id, "for carol only")
    carol.expect_type("message")
    bob.close()

    # Nothing of it reaches alice, nor a client of hers connecting now (retained presence included)
    late = PlainClient(node.port, alice_id, alice_token, device="late")
    assert late.inbox() == [1]
    assert alice.drain(1.0) == []
    assert late.drain(0.5) == []
    for client in (alice, late, carol):
        client.close()


# ---------------------------------------------------------------- 3. media it was not sent


def test_a_third_user_cannot_fetch_media_even_with_credentials(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    mallory_id, _ = node.add_user("mallory")
    with (
        Client(
            "127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id], media_url=node.media_url
        ) as a,
        Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id], media_url=node.media_url) as b,
    ):
        a.wait_synced(timeout=10)
        b.wait_synced(timeout=10)
        a.send_media(bob_id, io.BytesIO(jpeg())).wait("sent", timeout=15)
        media = next(iter(b.messages(timeout=15))).media
    assert media is not None and media.thumbnail is not None

    for key in (media.key, media.thumbnail.key):
        assert _http(node, f"/media/{key}", user=mallory_id)[0] == 404  # as if it did not exist
        assert _http(node, f"/media/{key}")[0] == 401
        status, headers = _http(node, f"/media/{key}", user=bob_id)
        assert status == 302 and headers["Location"].startswith(f"/media/signed/{key}?")

    # A signed link is bound to its key and expiry: changing either, or the signature, is refused
    status, headers = _http(node, f"/media/{media.key}", user=bob_id)
    link = headers["Location"]
    signature = link.split("sig=")[1]
    for forged in (
        link.replace(f"sig={signature}", "sig="),
        link.replace(f"&sig={signature}", ""),
        link.replace(f"sig={signature}", f"sig={signature.upper()}"),
        link.replace(media.key, media.key.upper()),
        link.replace(media.key, media.thumbnail.key),  # the signature of another object
        link.replace("expires=", "expires=9"),
    ):
        assert _http(node, forged)[0] == 403, forged


# ---------------------------------------------------------------- 4. guessing one user's password


@pytest.fixture
def slow_guessing(tmp_path: Path) -> Iterator[RunningNode]:
    settings = node_settings(
        tmp_path,
        **{
            "limits.login_failures_free": 1,
            "limits.login_max_delay": 8.0,
            "limits.address_failures_max": 1000,  # only the per-user slowing is at work here
        },
    )
    node = RunningNode(settings).start()
    yield node
    node.close()


def test_guessing_one_users_password_slows_every_login_of_that_user_only(slow_guessing: RunningNode) -> None:
    node = slow_guessing
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")

    # Given four wrong guesses for bob at once (none waits: bob had no failures yet)
    guesses = [socket.create_connection(("127.0.0.1", node.port)) for _ in range(4)]
    for i, guess in enumerate(guesses):
        guess.sendall(connect_packet(f"{bob_id}/g{i}", bob_id, "mqc_guess"))
    for guess in guesses:
        guess.settimeout(10)
        assert guess.recv(4) == b"\x20\x02\x00\x04"  # bad user name or password
        guess.close()

    # When bob logs in with the right token, over MQTT from another address and over HTTP
    mqtt_login = socket.socket()
    mqtt_login.bind(("127.0.0.2", 0))
    mqtt_login.connect(("127.0.0.1", node.port))
    mqtt_login.sendall(connect_packet(f"{bob_id}/phone", bob_id, bob_token))
    http_login = socket.create_connection(("127.0.0.1", node.node.http_port))
    auth = base64.b64encode(f"{bob_id}:{bob_token}".encode()).decode()
    http_login.sendall(
        f"GET /media/m/none.jpg HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\r\n".encode()
    )

    # Then alice logs in at once on both while bob's logins still wait (2**3 s, capped at 8 s)...
    PlainClient(node.port, alice_id, alice_token).close()
    assert _http(node, "/media/m/none.jpg", user=alice_id)[0] == 404
    assert not _answered(mqtt_login) and not _answered(http_login)

    # ...and are let in once the delay is over: the real user is slowed, not locked out
    for sock in (mqtt_login, http_login):
        sock.settimeout(30)
    assert mqtt_login.recv(4) == b"\x20\x02\x00\x00"
    assert http_login.recv(64).startswith(b"HTTP/1.1 404")
    mqtt_login.close()
    http_login.close()


# ---------------------------------------------------------------- 6. TLS on all three listeners


tls_node = test_chat_sdk.tls_node  # the fixture: a node with TLS on its three listeners


def _plain_answer(port: int, request: bytes) -> bytes:
    """What a listener answers in clear text to ``request`` (b"" if it hangs up or says nothing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        plain.sendall(request)
        try:
            return plain.recv(64)
        except (ConnectionResetError, TimeoutError):
            return b""


def _paho_connects(port: int, user: str, token: str, *, transport: str, tls: ssl.SSLContext | None) -> bool:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{user}/{transport}",
        transport=transport,  # type: ignore[arg-type]
    )
    client.username_pw_set(user, token)
    if tls is not None:
        client.tls_set_context(tls)
    results: list[bool] = []
    client.on_connect = lambda c, u, f, rc, p: results.append(not rc.is_failure)
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    wait_until(lambda: bool(results), 5)
    client.loop_stop()
    client.disconnect()
    return results == [True]


def test_each_listener_speaks_tls_and_refuses_plain_clients(
    tls_node: tuple[RunningNode, Path],
) -> None:
    node, cert = tls_node  # with a self-signed certificate made by openssl for the test
    context = ssl.create_default_context(cafile=str(cert))
    alice_id, alice_token = node.add_user("alice")

    # MQTT over TCP: a TLS client is accepted; the same CONNECT in clear text never gets a CONNACK
    with context.wrap_socket(
        socket.create_connection(("127.0.0.1", node.port)), server_hostname="127.0.0.1"
    ) as s:
        s.sendall(connect_packet(f"{alice_id}/tls", alice_id, alice_token))
        assert s.recv(4) == b"\x20\x02\x00\x00"
    assert not _plain_answer(
        node.port, connect_packet(f"{alice_id}/plain", alice_id, alice_token)
    ).startswith(b"\x20")

    # MQTT over WebSocket: the same; a WebSocket handshake in clear text is not answered with 101
    assert _paho_connects(node.ws_port, alice_id, alice_token, transport="websockets", tls=context)
    upgrade = (
        b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Protocol: mqtt\r\n\r\n"
    )
    assert not _plain_answer(node.ws_port, upgrade).startswith(b"HTTP/1.1 101")

    # HTTP: HTTPS answers, clear text does not
    assert node.media_url.startswith("https://")
    with pytest.raises(urllib.error.HTTPError) as unauthorised:  # an answer over TLS: 401, no credentials
        urllib.request.urlopen(f"{node.media_url}/media/x", context=context, timeout=10)
    assert unauthorised.value.code == 401
    unauthorised.value.close()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(node.media_url.replace("https", "http") + "/media/x", timeout=5)


# ---------------------------------------------------------------- 7. a client that stops reading


def test_a_client_that_stops_reading_its_socket_is_disconnected(tmp_path: Path) -> None:
    settings = node_settings(tmp_path, **{"limits.max_inflight_per_connection": 20})
    node = RunningNode(settings).start()
    try:
        alice_id, alice_token = node.add_user("alice")
        bob_id, bob_token = node.add_user("bob")
        watcher_id, watcher_token = node.add_user("watcher")
        node.make_contacts(bob_id, watcher_id)
        watcher = PlainClient(node.port, watcher_id, watcher_token)
        watcher.subscribe(f"presence/{bob_id}")

        # bob subscribes at QoS 0 (nothing to acknowledge), with a tiny receive buffer, and never reads
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect(("127.0.0.1", node.port))
        stuck.sendall(connect_packet(f"{bob_id}/stuck", bob_id, bob_token))
        assert stuck.recv(4) == b"\x20\x02\x00\x00"
        stuck.sendall(subscribe_packet(1, f"chat/{bob_id}/in", qos=0))
        watcher.expect(lambda t, p: isinstance(p, dict) and p.get("status") == "online")

        alice = PlainClient(node.port, alice_id, alice_token)
        alice.inbox()
        text = "x" * 16_000
        for i in range(200):  # about 3 MB for bob, far more than his socket holds
            alice.send(bob_id, text, cid=f"big{i}")

        watcher.expect(lambda t, p: isinstance(p, dict) and p.get("status") == "offline", timeout=30)
        alice.expect_type("sent", ref="big199", timeout=30)  # the node and alice carry on
        stuck.close()
        for client in (alice, watcher):
            client.close()
    finally:
        node.close()


def test_a_connection_that_goes_silent_mid_packet_is_closed_after_its_keepalive(node: RunningNode) -> None:
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    node.make_contacts(watcher_id, bob_id)
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe(f"presence/{bob_id}")
    sock = socket.create_connection(("127.0.0.1", node.port))
    sock.sendall(connect_packet(f"{bob_id}/raw", bob_id, bob_token, keepalive=1))
    assert sock.recv(4) == b"\x20\x02\x00\x00"
    watcher.expect(lambda t, p: isinstance(p, dict) and p.get("status") == "online")

    # bob starts a PUBLISH of 100 bytes, sends 3 of them, and his network dies
    sock.sendall(bytes([0x30, 100]) + b"\x00\x01")

    watcher.expect(lambda t, p: isinstance(p, dict) and p.get("status") == "offline", timeout=15)
    sock.settimeout(5)
    assert sock.recv(1) == b""
    sock.close()
    watcher.close()
