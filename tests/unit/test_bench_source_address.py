"""The load generator's connections from a chosen loopback address leave the port to connect time."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from benchmarks.mqtt import _IP_BIND_ADDRESS_NO_PORT, _connected_from


@pytest.mark.skipif(sys.platform != "linux", reason="IP_BIND_ADDRESS_NO_PORT is Linux's")
def test_a_connection_from_a_source_address_takes_its_port_at_connect_time() -> None:
    async def main() -> None:
        accepted: list[tuple[str, int]] = []

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer.get_extra_info("peername"))
            writer.close()

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        socks = [await _connected_from(loop, "127.0.0.2", "127.0.0.1", port) for _ in range(3)]
        try:
            for sock in socks:
                # a bind to port 0 without it takes a port no other socket on the address holds,
                # TIME_WAIT ones included: slow once thousands are (the runs of a minute before)
                assert sock.getsockopt(socket.IPPROTO_IP, _IP_BIND_ADDRESS_NO_PORT) == 1
                assert sock.getsockname()[0] == "127.0.0.2"
                assert sock.getpeername() == ("127.0.0.1", port)
            assert len({sock.getsockname()[1] for sock in socks}) == 3
            while len(accepted) < 3:
                await asyncio.sleep(0.01)
            assert {address for address, _ in accepted} == {"127.0.0.2"}
        finally:
            for sock in socks:
                sock.close()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def test_a_refused_connection_raises_to_the_caller() -> None:
    async def main() -> None:
        with socket.socket() as probe:  # a port where nothing listens
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with pytest.raises(ConnectionRefusedError):
            await _connected_from(asyncio.get_running_loop(), "127.0.0.1", "127.0.0.1", port)

    asyncio.run(main())
