"""The broker reads TCP by frames (broker/codec.py): whatever way the bytes arrive, every packet is
handled once and in order, a malformed packet is dropped alone, and a stream that cannot be framed
ends only its own connection."""

from __future__ import annotations

from broker.codec import encode_publish
from tests.harness import wait_until
from tests.integration.test_amqtt_fixes import _BareBroker, bare  # noqa: F401 - the fixture
from tests.raw_mqtt import PINGRESP, login, puback, read_exactly


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
