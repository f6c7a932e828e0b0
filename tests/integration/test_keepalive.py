"""The keep-alive deadline (one watchdog timer per connection, broker/mqtt/handler.py): a client that
keeps talking stays connected well past its keep-alive, and one that goes silent is closed."""

from __future__ import annotations

import time

from tests.integration.test_amqtt_fixes import _BareBroker, bare  # noqa: F401 - the fixture
from tests.raw_mqtt import login


def test_a_talking_client_stays_and_a_silent_one_is_closed(bare: _BareBroker) -> None:  # noqa: F811
    # Given a client with a keep-alive of 1 s (2 s with the broker's grace)
    sock = login(bare.port, "pinger", keepalive=1)
    try:
        # When it pings twice a second for 5 s, every ping is answered: it is still connected
        end = time.monotonic() + 5
        while time.monotonic() < end:
            sock.sendall(b"\xc0\x00")
            assert sock.recv(2) == b"\xd0\x00"
            time.sleep(0.5)

        # Then once it goes silent, the broker closes it
        sock.settimeout(30)
        assert sock.recv(16) == b""
    finally:
        sock.close()
