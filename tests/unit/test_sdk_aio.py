"""The asyncio client without a server: the same argument checks, state guard and connection
failures as the blocking client (tests/unit/test_sdk_client.py), awaited.

Each test runs one ``asyncio.run`` (no pytest plugin): whatever the client starts must be finished
when it returns, or ``filterwarnings = error`` and the leftover check fail the test.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from client_sdk.aio import AuthenticationError, Client, ConnectError, NotConnected
from tests.unit.test_sdk_client import refusing_server


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def checked() -> None:
        await scenario()
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    asyncio.run(checked())


@pytest.fixture
def free_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def mute_server() -> Iterator[int]:
    """A port that accepts TCP connections but never speaks MQTT."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


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
    client = Client(user="alice", token="t", device="phone")
    assert client.client_id == "alice/phone" and not client.connected

    async def scenario() -> None:
        # When the app uses it, Then each call raises NotConnected
        with pytest.raises(NotConnected):
            await client.send("bob", "hi")
        with pytest.raises(NotConnected):
            await client.mark_read("m-1")
        with pytest.raises(NotConnected):
            await client.typing("bob")
        with pytest.raises(NotConnected):
            await client.wait_synced(timeout=0)
        with pytest.raises(NotConnected):
            await client.groups()

    run(scenario)


def test_an_unreachable_server_is_a_connect_error_and_can_be_retried(free_port: int) -> None:
    client = Client("127.0.0.1", free_port, user="alice", token="t", connect_timeout=2)

    async def scenario() -> None:
        # When connecting, Then ConnectError (not a socket error) says where, and again on a retry
        for _ in range(2):
            with pytest.raises(ConnectError, match=f"127.0.0.1:{free_port}") as raised:
                await client.connect()
            assert not isinstance(raised.value, AuthenticationError)

    run(scenario)


def test_a_server_that_never_answers_is_a_connect_error(mute_server: int) -> None:
    # Given a peer that accepts the connection but never sends CONNACK
    client = Client("127.0.0.1", mute_server, user="alice", token="t", connect_timeout=0.5)

    async def scenario() -> None:
        # When connecting, Then ConnectError after the connect timeout
        with pytest.raises(ConnectError, match="did not accept the connection"):
            await client.connect()

    run(scenario)


@pytest.mark.parametrize(
    ("return_code", "error"), [(4, AuthenticationError), (5, AuthenticationError), (3, None)]
)
def test_refusals_are_the_blocking_clients_errors(return_code: int, error: type[Exception] | None) -> None:
    # Given a server that refuses the connection with this CONNACK code
    port, server = refusing_server(return_code)
    client = Client("127.0.0.1", port, user="alice", token="wrong", connect_timeout=5)

    async def scenario() -> None:
        # When connecting, Then AuthenticationError for credentials, a plain ConnectError otherwise
        with pytest.raises(ConnectError, match="refused") as raised:
            await client.connect()
        assert isinstance(raised.value, AuthenticationError) is (error is AuthenticationError)

    run(scenario)
    server.join(5)


def test_a_closed_client_cannot_be_reopened_and_its_iterators_end() -> None:
    client = Client(user="alice", token="t")

    async def scenario() -> None:
        # Given a closed client
        await client.close()
        await client.close()  # idempotent

        # Then it is not opened again, and its iterators end at once
        with pytest.raises(RuntimeError, match="opened only once"):
            await client.connect()
        with pytest.raises(RuntimeError, match="opened only once"):
            async with client:
                pass
        assert [e async for e in client.events()] == []
        assert [m async for m in client.messages()] == []

    run(scenario)


def test_the_cursor_resumes_from_the_state_file(tmp_path: Path) -> None:
    # Given a state file saved by a previous run at cursor 9
    path = tmp_path / "alice.json"
    path.write_text(json.dumps({"cursor": 9}))

    # Then the file's cursor is used unless one is given
    assert Client(user="alice", token="t", state_file=path).cursor == 9
    assert Client(user="alice", token="t", state_file=path, cursor=3).cursor == 3
