"""What the client does without a server: argument checks, the state guard, and connection failures
converted into the SDK's errors (a refused port, a silent peer, a CONNACK refusal)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import AuthenticationError, Client, ConnectError, NotConnected
from tests.raw_publish import publish_raw


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections but never speaks MQTT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def refusing_server(return_code: int) -> tuple[int, threading.Thread]:
    """A one-shot peer that reads CONNECT and answers a CONNACK with ``return_code`` (MQTT 3.1.1)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(5)

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(5)
                conn.recv(1024)
                conn.sendall(bytes([0x20, 0x02, 0x00, return_code]))
                try:
                    while conn.recv(1024):
                        pass
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread


def test_the_client_id_is_user_slash_device() -> None:
    # When a client is made for alice's phone, Then its MQTT client id is alice/phone
    assert Client(user="alice", token="t", device="phone").client_id == "alice/phone"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"user": "al ice"}, "user"),
        ({"user": "alice", "device": "a/b"}, "device"),
        ({"user": "alice", "transport": "udp"}, "transport"),
        ({"user": "alice", "mqtt_version": "4"}, "mqtt_version"),
        ({"user": "alice", "port": 70000}, "port"),
        ({"user": "alice", "cursor": -1}, "cursor"),
        ({"user": "alice", "connect_timeout": 0}, "connect_timeout"),
        ({"user": "alice", "prefix": "chat/#"}, "prefix"),
    ],
)
def test_bad_settings_are_refused_at_construction(kwargs: dict[str, object], problem: str) -> None:
    # When a client is made with a bad setting, Then ValueError names it
    with pytest.raises(ValueError, match=problem):
        Client(token="t", **kwargs)  # type: ignore[arg-type]


def test_nothing_works_before_connecting() -> None:
    # Given a client that was never connected
    client = Client(user="alice", token="t")

    # When the app uses it, Then each call raises NotConnected
    with pytest.raises(NotConnected):
        client.send("bob", "hi")
    with pytest.raises(NotConnected):
        client.mark_read("m-1")
    with pytest.raises(NotConnected):
        client.typing("bob")
    with pytest.raises(NotConnected):
        client.wait_synced(timeout=0)
    with pytest.raises(NotConnected):
        publish_raw(client, b"{}")
    assert not client.connected


def test_an_unreachable_server_is_a_connect_error(closed_port: int) -> None:
    # Given a port nothing listens on
    client = Client("127.0.0.1", closed_port, user="alice", token="t", connect_timeout=2)

    # When connecting, Then ConnectError (not a socket error) says where
    with pytest.raises(ConnectError, match=f"127.0.0.1:{closed_port}") as raised:
        client.connect()
    assert not isinstance(raised.value, AuthenticationError)


def test_a_server_that_never_answers_is_a_connect_error(silent_server: int) -> None:
    # Given a peer that accepts the connection but never sends CONNACK
    client = Client("127.0.0.1", silent_server, user="alice", token="t", connect_timeout=0.5)

    # When connecting, Then ConnectError after the connect timeout
    with pytest.raises(ConnectError, match="did not accept the connection"):
        client.connect()


@pytest.mark.parametrize("return_code", [4, 5])
def test_refused_credentials_are_an_authentication_error(return_code: int) -> None:
    # Given a server that refuses the credentials (bad user name or password / not authorized)
    port, server = refusing_server(return_code)
    client = Client("127.0.0.1", port, user="alice", token="wrong", connect_timeout=5)

    # When connecting, Then AuthenticationError, a ConnectError
    with pytest.raises(AuthenticationError, match="refused 'alice'"):
        client.connect()
    server.join(5)


def test_other_refusals_are_a_plain_connect_error() -> None:
    # Given a server that refuses the connection as unavailable
    port, server = refusing_server(3)
    client = Client("127.0.0.1", port, user="alice", token="t", connect_timeout=5)

    # When connecting, Then ConnectError that is not about credentials
    with pytest.raises(ConnectError, match="refused the connection") as raised:
        client.connect()
    assert not isinstance(raised.value, AuthenticationError)
    server.join(5)


def test_a_failed_connect_can_be_retried(closed_port: int) -> None:
    # Given a client whose first connect failed
    client = Client("127.0.0.1", closed_port, user="alice", token="t")
    with pytest.raises(ConnectError):
        client.connect()

    # When connecting again, Then it tries again (and fails the same way) instead of refusing to reopen
    with pytest.raises(ConnectError):
        client.connect()


def test_a_closed_client_cannot_be_reopened() -> None:
    # Given a closed client
    client = Client(user="alice", token="t")
    client.close()

    # When it is closed again, Then nothing happens; when it is opened again, Then RuntimeError
    client.close()
    with pytest.raises(RuntimeError, match="opened only once"):
        client.connect()
    with pytest.raises(RuntimeError, match="opened only once"), client:
        pass


def test_event_iterators_end_once_the_client_is_closed() -> None:
    # Given a closed client
    client = Client(user="alice", token="t")
    client.close()

    # When the app iterates without a timeout, Then the iterators end at once
    assert list(client.events()) == []
    assert list(client.messages()) == []


def test_the_cursor_resumes_from_the_state_file(tmp_path: Path) -> None:
    # Given a state file saved by a previous run at cursor 9
    path = tmp_path / "alice.json"
    path.write_text(json.dumps({"cursor": 9}))

    # When a client is made with it (and with an explicit cursor)
    resumed = Client(user="alice", token="t", state_file=path)
    explicit = Client(user="alice", token="t", state_file=path, cursor=3)

    # Then the file's cursor is used unless one is given
    assert resumed.cursor == 9
    assert explicit.cursor == 3
