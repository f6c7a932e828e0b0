"""MQTT 3.1.1 framing and the few packets of the hot path, on bytes.

amqtt decodes every packet through several awaited reads (one per byte of the fixed header, then
the variable header, then the payload) and a tree of objects, and encodes through the same objects.
The broker's hot path only needs to cut a byte buffer into packets, read PUBLISH and PUBACK, and
write PUBLISH and PUBACK; every other packet is still decoded by amqtt (see ``MqchatHandler``).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from amqtt.errors import MQTTError

__all__ = [
    "PUBACK",
    "PUBLISH",
    "Frame",
    "PacketTooLarge",
    "Publish",
    "encode_puback",
    "encode_publish",
    "mark_dup",
    "read_frames",
    "read_publish",
    "remaining_length",
]

PUBLISH = 3
PUBACK = 4

_MAX_LENGTH_BYTES = 4

_new_tuple = tuple.__new__
_HEAD_1 = struct.Struct("!BBH").pack
"""A PUBLISH's first byte, a one-byte remaining length and its topic's length."""
_HEAD_2 = struct.Struct("!BBBH").pack
"""The same with a two-byte remaining length."""
_U16 = struct.Struct("!H").pack
_PUBACK = _HEAD_1
"""A PUBACK: its first byte, its remaining length (2) and the packet id, as ``_HEAD_1`` packs them."""


class PacketTooLarge(MQTTError):
    """A packet says it is longer than the connection's limit (MQTT 5 answers it with 0x95)."""


class Frame(NamedTuple):
    """One whole packet: its first byte (type and flags) and the rest after the remaining length."""

    first: int
    body: bytes


class Publish(NamedTuple):
    topic: str
    qos: int
    packet_id: int | None
    data: bytes


def read_frames(
    buffer: bytes | bytearray, start: int = 0, *, limit: int | None = None
) -> tuple[list[Frame], int]:
    """The whole packets in ``buffer`` from ``start``, and where the first incomplete one begins.

    MQTTError if a remaining length runs past four bytes (the stream cannot be framed any more),
    or if a packet says it is longer than ``limit`` bytes (refused before it is read).
    """
    frames: list[Frame] = []
    end = len(buffer)
    pos = start
    while end - pos >= 2:
        length = buffer[pos + 1]
        i = pos + 2
        if length & 0x80:  # a remaining length of more than one byte (a packet of 128 bytes or more)
            length &= 0x7F
            shift = 7
            while True:
                if i >= end:
                    return frames, pos  # the remaining length is not all here yet
                byte = buffer[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
                shift += 7
                if shift >= 7 * _MAX_LENGTH_BYTES:
                    raise MQTTError(f"invalid remaining length in a packet of type {buffer[pos] >> 4}")
        if limit is not None and length > limit:
            raise PacketTooLarge(f"a packet of {length} bytes, over the limit of {limit}")
        stop = i + length
        if stop > end:
            break
        body = buffer[i:stop]
        # ``tuple.__new__``, not ``Frame(...)``: a NamedTuple's constructor is a Python function,
        # and this runs for every packet read
        frames.append(_new_tuple(Frame, (buffer[pos], body if type(body) is bytes else bytes(body))))
        pos = stop
    return frames, pos


def read_publish(frame: Frame) -> Publish:
    """A PUBLISH packet's fields (MQTTError if malformed), as amqtt 0.12.1 decodes them."""
    body = frame.body
    qos = (frame.first >> 1) & 0x03
    if len(body) < 2:
        raise MQTTError("PUBLISH without a topic")
    size = (body[0] << 8) | body[1]
    cut = 2 + size
    if len(body) < cut + (2 if qos else 0):
        raise MQTTError("PUBLISH shorter than its topic and packet id")
    raw = body[2:cut]
    try:
        topic = raw.decode("utf-8")
    except UnicodeDecodeError:
        topic = str(raw)  # as amqtt: a topic nobody may publish to
    if "#" in topic or "+" in topic:
        raise MQTTError("[MQTT-3.3.2-2] a PUBLISH topic must not contain wildcard characters")
    packet_id = None
    if qos:
        packet_id = (body[cut] << 8) | body[cut + 1]
        cut += 2
    return _new_tuple(Publish, (topic, qos, packet_id, body[cut:]))  # as ``Frame``'s, in ``read_frames``


def remaining_length(length: int) -> bytes:
    """A packet's remaining length as MQTT writes it (7 bits a byte, the high bit: more follow)."""
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_publish(
    topic: str,
    data: bytes | bytearray,
    packet_id: int | None,
    qos: int,
    retain: bool,
    properties: bytes = b"",
) -> bytes:
    """A PUBLISH packet (DUP clear), byte for byte what amqtt's ``PublishPacket.build`` writes.
    ``properties``: MQTT 5's, encoded (``b"\\x00"``: none); 3.1.1 has none."""
    name = topic.encode("utf-8")
    size = len(name)
    length = size + 2 + len(properties) + len(data) + (2 if qos else 0)
    first = 0x30 | (qos << 1) | (1 if retain else 0)
    # the fixed header and the topic's length in one ``pack`` (one or two bytes of remaining length:
    # every packet under 16 KiB), the rest in one join: this runs for every delivery
    if length < 0x80:
        head = _HEAD_1(first, length, size)
    elif length < 0x4000:
        head = _HEAD_2(first, 0x80 | (length & 0x7F), length >> 7, size)
    else:
        head = bytes((first,)) + remaining_length(length) + _U16(size)
    if qos:
        assert packet_id is not None
        return b"".join((head, name, _U16(packet_id), properties, data))
    return b"".join((head, name, properties, data))


def mark_dup(packet: bytes) -> bytes:
    """A PUBLISH (3.1.1 or 5) with its DUP flag set [MQTT-3.3.1-1]: the redelivery of one the
    client may have seen."""
    return bytes((packet[0] | 0x08,)) + packet[1:]


def encode_puback(packet_id: int) -> bytes:
    return _PUBACK(0x40, 2, packet_id)
