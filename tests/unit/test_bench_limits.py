"""benchmarks/limits.py: source addresses and the open-file limit for tens of thousands of connections."""

from __future__ import annotations

import asyncio
import resource
import socket

import pytest

from benchmarks.limits import PER_ADDRESS, OpenFilesTooLow, raise_open_files, source_addresses
from benchmarks.mqtt import Connection, ConnectionFailed


def test_connections_are_spread_over_enough_loopback_addresses() -> None:
    assert source_addresses(1) == ["127.0.0.1"]
    assert source_addresses(PER_ADDRESS) == ["127.0.0.1"]
    assert source_addresses(50_000) == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    with pytest.raises(ValueError, match="254"):
        source_addresses(255 * PER_ADDRESS)


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 256), hard))
        assert raise_open_files() == hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_limit_that_cannot_be_raised_says_how_to_raise_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    beyond = 10 * 1_048_576  # past any kernel's nr_open: no process may raise its limit this far
    try:
        with pytest.raises(OpenFilesTooLow, match=rf"{beyond} open files are needed.*ulimit -Hn {beyond}"):
            raise_open_files(beyond)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_connection_comes_from_the_source_address_asked_for() -> None:
    # Given a listener on 127.0.0.1 (no broker: the CONNACK never comes)
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)

    async def connect_and_accept() -> str:
        loop = asyncio.get_running_loop()
        conn = Connection("c")
        # When a connection is opened from 127.0.0.2
        opening = asyncio.ensure_future(
            conn.connect("127.0.0.1", server.getsockname()[1], local_host="127.0.0.2", timeout=0.5)
        )
        peer, address = await loop.sock_accept(server)
        peer.close()
        with pytest.raises(ConnectionFailed):
            await opening
        return str(address[0])

    try:
        source = asyncio.run(asyncio.wait_for(connect_and_accept(), 5))
    finally:
        server.close()
    # Then the listener saw it come from there
    assert source == "127.0.0.2"
