"""broker/mqtt/codec.py frames and reads packets exactly as amqtt 0.12.1 does, on bytes."""

from __future__ import annotations

import asyncio

import pytest
from amqtt.adapters import BufferReader
from amqtt.errors import MQTTError
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from hypothesis import given
from hypothesis import strategies as st

from broker.mqtt.codec import Frame, encode_puback, encode_publish, read_frames, read_publish

topics = st.text(st.characters(blacklist_characters="#+", blacklist_categories=("Cs",)), max_size=300)


@given(topic=topics, data=st.binary(max_size=20_000), packet_id=st.integers(1, 65535), retain=st.booleans())
def test_publish_is_encoded_byte_for_byte_as_amqtt_does(
    topic: str, data: bytes, packet_id: int, retain: bool
) -> None:
    for qos, pid in ((0, None), (1, packet_id), (2, packet_id)):
        stock = PublishPacket.build(topic, data, pid, False, qos, retain).to_bytes()
        assert encode_publish(topic, data, pid, qos, retain) == stock


@given(packet_id=st.integers(1, 65535))
def test_puback_is_encoded_as_amqtt_does(packet_id: int) -> None:
    assert encode_puback(packet_id) == PubackPacket.build(packet_id).to_bytes()


@given(
    packets=st.lists(st.tuples(topics, st.binary(max_size=3000), st.integers(1, 65535)), max_size=8),
    cuts=st.lists(st.integers(0, 100_000), max_size=6),
)
def test_a_stream_cut_anywhere_frames_into_the_same_publishes(
    packets: list[tuple[str, bytes, int]], cuts: list[int]
) -> None:
    stream = b"".join(encode_publish(t, d, p, 1, False) for t, d, p in packets)
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {len(stream)})
    pending, frames, start = b"", [], 0
    for bound in bounds:  # the socket delivers the stream in arbitrary pieces
        data = pending + stream[start:bound]
        start = bound
        got, used = read_frames(data)
        frames += got
        pending = data[used:]
    assert pending == b""
    assert [(p.topic, p.data, p.packet_id, p.qos) for p in map(read_publish, frames)] == [
        (t, d, p, 1) for t, d, p in packets
    ]


def test_read_publish_agrees_with_amqtt_on_each_field() -> None:
    raw = PublishPacket.build("chat/ann/out", b'{"x":1}', 77, False, 1, False).to_bytes()
    (frame,), used = read_frames(raw)
    assert used == len(raw)
    mine = read_publish(frame)
    stock = asyncio.run(PublishPacket.from_stream(BufferReader(raw)))
    assert (mine.topic, mine.qos, mine.packet_id, mine.data) == (
        stock.topic_name,
        stock.qos,
        stock.packet_id,
        stock.data,
    )


def test_a_topic_that_is_not_utf8_is_kept_as_amqtt_keeps_it() -> None:
    body = b"\x00\x02\xff\xfe" + b"\x00\x05" + b"hi"
    assert read_publish(Frame(0x32, body)).topic == str(b"\xff\xfe")


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00", b"\x00\x05abc", b"\x00\x03abc\x00", b"\x00\x01#\x00\x01", b"\x00\x03a/+\x00\x01"],
)
def test_malformed_publishes_are_refused(body: bytes) -> None:
    with pytest.raises(MQTTError):
        read_publish(Frame(0x32, body))


def test_a_remaining_length_past_four_bytes_cannot_be_framed() -> None:
    with pytest.raises(MQTTError):
        read_frames(b"\x30\xff\xff\xff\xff\x01")
    # four bytes is the most there is: 268,435,455, incomplete here, not an error
    assert read_frames(b"\x30\xff\xff\xff\x7f") == ([], 0)


def test_incomplete_packets_wait_for_more_bytes() -> None:
    whole = encode_puback(9)
    assert read_frames(whole[:1]) == ([], 0)
    assert read_frames(whole[:3]) == ([], 0)
    assert read_frames(whole + whole[:2]) == ([Frame(0x40, b"\x00\x09")], 4)


def test_a_packet_announced_over_the_limit_is_refused_before_it_is_read() -> None:
    with pytest.raises(MQTTError, match="over the limit"):
        read_frames(b"\x30\x81\x08", limit=1024)  # 1,025 bytes announced, none of them here
    assert read_frames(b"\x30\x80\x08", limit=1024) == ([], 0)  # 1,024: waits for them
