"""The broker reads TCP by frames (broker/mqtt/codec.py): whatever way the bytes arrive, every packet is
handled once and in order, a malformed packet is dropped alone, and a stream that cannot be framed
ends only its own connection."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time

import pytest

from broker.mqtt.codec import encode_publish
from tests.harness import wait_until
from tests.integration.test_amqtt_fixes import _BareBroker, bare  # noqa: F401 - the fixture
from tests.raw_mqtt import PINGRESP, login, puback, read_exactly, suback, subscribe_packet, utf8


def test_packets_in_one_write_or_byte_by_byte_are_each_handled_once_in_order(
    bare: _BareBroker,  # noqa: F811
) -> None:
    sock = login(bare.port, "burst")
    burst = b"".join(encode_publish("out/burst", f"m{i}".encode(), i + 1, 1, False) for i in range(300))
    split = b"".join(encode_publish("out/burst", f"m{i}".encode(), i + 1, 1, False) for i in range(300, 305))
    sock.sendall(burst + b"\xc0\x00")  # 300 PUBLISHes and a PINGREQ in one write
    for i in range(len(split)):  # then five more, a byte per write
        sock.sendall(split[i : i + 1])
    expected = b"".join(puback(i + 1) for i in range(300))
    expected += PINGRESP + b"".join(puback(i + 1) for i in range(300, 305))
    assert read_exactly(sock, len(expected)) == expected
    assert [data for _user, _topic, data in bare.gate.published] == [f"m{i}".encode() for i in range(305)]
    sock.close()


def test_a_large_packet_in_small_pieces_is_put_back_together(bare: _BareBroker) -> None:  # noqa: F811
    sock = login(bare.port, "trickle")
    payload = bytes(range(256)) * 4096  # 1 MiB, sent in pieces of 1 KiB
    packet = encode_publish("out/big", payload, 7, 1, False)
    for start in range(0, len(packet), 1024):
        sock.sendall(packet[start : start + 1024])
    assert read_exactly(sock, 4) == b"\x40\x02\x00\x07"
    assert bare.gate.published == [(None, "out/big", payload)]
    sock.close()


def test_a_packet_announced_over_the_limit_closes_its_connection_unread(
    bare: _BareBroker,  # noqa: F811
) -> None:
    bare.broker._max_packet = 64 * 1024
    good = login(bare.port, "fits")
    hostile = login(bare.port, "huge")
    hostile.sendall(b"\x30\xff\xff\xff\x7f")  # a PUBLISH of 256 MiB is coming: nothing more is sent
    assert hostile.recv(16) == b""  # closed at once, nothing buffered
    hostile.close()
    assert wait_until(lambda: "huge" not in bare.broker._sessions)
    payload = b"x" * (60 * 1024)  # under the limit: read and handled
    good.sendall(encode_publish("out/fits", payload, 3, 1, False))
    assert read_exactly(good, 4) == b"\x40\x02\x00\x03"
    assert bare.gate.published[-1] == (None, "out/fits", payload)
    good.close()


def test_a_malformed_packet_is_dropped_alone(bare: _BareBroker) -> None:  # noqa: F811
    sock = login(bare.port, "sloppy")
    wildcard = encode_publish("out/+", b"bad", 1, 1, False)
    short = b"\x32\x03\x00\x05a"  # a topic longer than the packet
    sock.sendall(wildcard + short + encode_publish("out/ok", b"good", 2, 1, False))
    assert read_exactly(sock, 4) == b"\x40\x02\x00\x02"  # only the good one is acknowledged
    assert [t for _u, t, _d in bare.gate.published] == ["out/ok"]
    sock.close()


def test_subscribes_in_one_read_with_a_malformed_one_and_a_publish_are_each_handled(
    bare: _BareBroker,  # noqa: F811
) -> None:
    sock = login(bare.port, "eager")
    short = b"\x82\x01\x00"  # a SUBSCRIBE shorter than its packet id: dropped alone
    sock.sendall(
        short
        + subscribe_packet(2, "inbox/eager")
        + subscribe_packet(3, "inbox/eager+1")  # a filter with a '+' inside a level: refused
        + encode_publish("out/eager", b"behind them", 4, 1, False)
    )
    expected = suback(2, 1) + suback(3, 0x80) + puback(4)
    assert read_exactly(sock, len(expected)) == expected
    assert [t for _u, t, _d in bare.gate.published] == ["out/eager"]
    assert [s.client_id for s in bare.broker.subscribers_of("inbox/eager")] == ["eager"]
    sock.close()


def test_a_stream_that_cannot_be_framed_ends_only_its_connection(bare: _BareBroker) -> None:  # noqa: F811
    good = login(bare.port, "good")
    broken = login(bare.port, "broken")
    broken.sendall(b"\x30\xff\xff\xff\xff\x01")  # a remaining length of five bytes
    assert broken.recv(16) == b""  # closed by the broker
    broken.close()
    assert wait_until(lambda: "broken" not in bare.broker._sessions)
    good.sendall(encode_publish("out/good", b"still here", 5, 1, False))
    assert read_exactly(good, 4) == b"\x40\x02\x00\x05"
    good.close()


def _subscriber(port: int, name: str, topic: str) -> socket.socket:
    sock = login(port, name)
    sock.sendall(subscribe_packet(1, topic))
    assert read_exactly(sock, 5) == suback(1, 1)
    return sock


def _delivery(topic: str, packet_id: int, payload: bytes) -> bytes:
    body = utf8(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x32, len(body)]) + body


def test_deliveries_made_while_corked_go_out_together_at_its_end_in_order(
    bare: _BareBroker,  # noqa: F811
) -> None:
    sock = _subscriber(bare.port, "corked", "inbox/corked")
    leaving = _subscriber(bare.port, "leaving", "inbox/leaving")
    release = threading.Event()

    async def held_burst() -> None:
        with bare.broker.corked():
            for i in range(3):
                bare.broker.publish_nowait("inbox/corked", f"m{i}".encode(), 1)
            bare.broker.publish_nowait("inbox/leaving", b"never read", 1)
            while not release.is_set():
                await asyncio.sleep(0.01)

    done = asyncio.run_coroutine_threadsafe(held_burst(), bare.loop)
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):  # held: nothing is written inside the block
        sock.recv(1)
    leaving.close()  # a connection that ends while its deliveries are held
    assert wait_until(lambda: "leaving" not in bare.broker._sessions)
    release.set()
    done.result(10)
    sock.settimeout(10)
    expected = b"".join(_delivery("inbox/corked", i + 1, f"m{i}".encode()) for i in range(3))
    assert read_exactly(sock, len(expected)) == expected
    sock.sendall(b"".join(puback(i + 1) for i in range(3)))
    sock.sendall(encode_publish("out/corked", b"still served", 9, 1, False))
    assert read_exactly(sock, 4) == puback(9)
    sock.close()


def test_a_puback_waits_to_go_out_with_the_next_delivery_and_no_longer_than_the_hold_delay(
    bare: _BareBroker,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("broker.mqtt.writes.HOLD_DELAY", 0.5)
    sock = _subscriber(bare.port, "acked", "inbox/acked")
    other = _subscriber(bare.port, "other", "inbox/other")
    sock.sendall(encode_publish("out/acked", b"a command", 7, 1, False))
    assert wait_until(lambda: len(bare.gate.published) == 1)
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):  # its PUBACK is held back...
        sock.recv(1)

    async def someone_elses() -> None:
        with bare.broker.corked():
            bare.broker.publish_nowait("inbox/other", b"not the answer", 1)

    bare.call(someone_elses())  # ...through a batch of deliveries to other connections...
    other.settimeout(10)
    expected_other = _delivery("inbox/other", 1, b"not the answer")
    assert read_exactly(other, len(expected_other)) == expected_other
    with pytest.raises(TimeoutError):
        sock.recv(1)

    async def answer() -> None:
        with bare.broker.corked():
            bare.broker.publish_nowait("inbox/acked", b"the answer", 1)

    bare.call(answer())  # ...and goes out first, with the answer
    sock.settimeout(10)
    expected = puback(7) + _delivery("inbox/acked", 1, b"the answer")
    assert read_exactly(sock, len(expected)) == expected
    sock.sendall(puback(1) + encode_publish("out/acked", b"no answer", 8, 1, False))
    started = time.monotonic()
    assert read_exactly(sock, 4) == puback(8)  # nothing follows: it goes out after the delay
    assert time.monotonic() - started >= 0.3
    sock.close()
    other.close()


def test_each_held_puback_waits_its_own_hold_delay(
    bare: _BareBroker,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("broker.mqtt.writes.HOLD_DELAY", 0.6)
    first = _subscriber(bare.port, "first", "inbox/first")
    second = _subscriber(bare.port, "second", "inbox/second")
    started = time.monotonic()
    first.sendall(encode_publish("out/first", b"no answer", 3, 1, False))
    time.sleep(0.3)
    second.sendall(encode_publish("out/second", b"no answer", 4, 1, False))
    for sock in (first, second):
        sock.settimeout(10)
    assert read_exactly(first, 4) == puback(3)
    first_at = time.monotonic() - started
    assert read_exactly(second, 4) == puback(4)
    second_at = time.monotonic() - started
    # the second hold started 0.3 s later and is not cut short by the first one's timer
    assert 0.5 <= first_at < second_at
    assert second_at - first_at >= 0.2
    first.close()
    second.close()


def test_a_qos0_delivery_keeps_its_place_among_qos1_ones_and_owes_no_puback(
    bare: _BareBroker,  # noqa: F811
) -> None:
    sock = _subscriber(bare.port, "mixed", "inbox/mixed")

    async def burst() -> None:
        with bare.broker.corked():
            bare.broker.publish_nowait("inbox/mixed", b"one", 1)
            bare.broker.publish_nowait("inbox/mixed", b"live only", 0)
            bare.broker.publish_nowait("inbox/mixed", b"two", 1)
        bare.broker.publish_nowait("inbox/mixed", b"alone", 0)

    bare.call(burst())
    sock.settimeout(10)
    live, alone = (encode_publish("inbox/mixed", p, None, 0, False) for p in (b"live only", b"alone"))
    expected = _delivery("inbox/mixed", 1, b"one") + live + _delivery("inbox/mixed", 2, b"two") + alone
    assert read_exactly(sock, len(expected)) == expected
    sock.sendall(puback(1) + puback(2))
    assert wait_until(lambda: not any(bare.broker._inflight.values()))  # nothing owed for QoS 0
    sock.close()
