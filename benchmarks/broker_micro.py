"""The broker layer's Python per relayed message on its own: ``python -m benchmarks.broker_micro``.

Runs what ``mqchat-broker`` (``benchmarks/relay.py``) runs for a QoS 1 message of the raw
benchmark, without sockets: ``--pairs`` publisher/subscriber connections of ``MqchatBroker`` on
in-memory transports, each subscriber on its own topic, MQTT 3.1.1 or 5 (``--mqtt``, the MQTT 5
packets with an empty properties field, as the raw benchmark's). Per message, the publisher's
PUBLISH arrives in a read callback (relayed to the subscriber, its PUBACK held), then the
subscriber's PUBACK in another; every ``--per-pass`` messages the loop runs one pass (what is due
then: held PUBACKs, timers). It prints the process CPU per message and the transport writes per
message. Under ``valgrind --tool=callgrind`` (``--messages`` small) its instruction count is the
figure a shared host does not move: the system calls of a real socket are not in it, only the
Python and the loop around them.

``--connects N`` measures the connect sequence instead: N clients connect one after another, each
subscribing to its inbox once its CONNACK came (as the SDK's and the chat benchmark's clients do),
with the anonymous login of amqtt's plugin (not the node's store lookups or presence).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from functools import partial
from typing import Any

from benchmarks.machine import describe
from broker.cli import loop_factory
from broker.mqtt.codec import encode_publish
from broker.mqtt.protocol import MqttProtocol
from broker.mqtt.server import MqchatBroker

__all__: list[str] = []

_PAYLOAD = b"x" * 100

_CONFIG: dict[str, Any] = {
    "listeners": {"default": {"type": "tcp", "bind": "127.0.0.1:0", "max_connections": 0}},
    "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
}


class _Transport(asyncio.Transport):
    """A socket that keeps what is written (the micro-benchmark's only transport)."""

    def __init__(self, protocol: MqttProtocol, port: int) -> None:
        super().__init__()
        self._protocol = protocol
        self._port = port
        self.out: list[bytes] = []
        self.writes = 0
        self._closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes += 1
        self.out.append(bytes(data))

    def take(self) -> bytes:
        out, self.out = self.out, []
        return b"".join(out)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", self._port) if name == "peername" else default

    def get_protocol(self) -> Any:
        return self._protocol

    def set_protocol(self, protocol: Any) -> None:
        self._protocol = protocol

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


def _topic(pair: int) -> str:
    """As the raw benchmark names them (``bench/<run>/<publisher>``): its PUBLISH of 100 bytes is
    then over 127 bytes, two bytes of remaining length."""
    return f"bench/000000/b000000-p{pair}a"


def _packet(first: int, body: bytes) -> bytes:
    return (
        bytes((first, len(body))) + body
        if len(body) < 128
        else bytes((first, 0x80 | len(body) & 0x7F, len(body) >> 7)) + body
    )


def _connect_packet(client_id: str, mqtt5: bool) -> bytes:
    """Clean session, keep-alive 60 s; MQTT 5 with no property (as the raw benchmark's clients)."""
    name = client_id.encode()
    header = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" if mqtt5 else b"\x00\x04MQTT\x04\x02\x00\x3c"
    return _packet(0x10, header + len(name).to_bytes(2, "big") + name)


async def _connect(
    broker: MqchatBroker, client_id: str, port: int, mqtt5: bool
) -> tuple[MqttProtocol, _Transport]:
    protocol = MqttProtocol(partial(broker._tcp_connected, "default"))
    transport = _Transport(protocol, port)
    protocol.connection_made(transport)
    protocol.data_received(_connect_packet(client_id, mqtt5))
    for _ in range(200):
        await asyncio.sleep(0)
        if transport.out:
            break
    connack = transport.take()
    assert connack[:1] == b"\x20", f"{client_id}: no CONNACK"
    assert connack[3] == 0, f"{client_id}: refused"
    return protocol, transport


async def _subscribed(
    broker: MqchatBroker, client_id: str, port: int, topic: str, mqtt5: bool
) -> tuple[MqttProtocol, _Transport]:
    """A client connected, then subscribed to ``topic`` at QoS 1 once its CONNACK came."""
    protocol, transport = await _connect(broker, client_id, port, mqtt5)
    properties = b"\x00" if mqtt5 else b""
    name = topic.encode()
    subscribe = b"\x00\x01" + properties + len(name).to_bytes(2, "big") + name + b"\x01"
    protocol.data_received(_packet(0x82, subscribe))
    for _ in range(200):
        await asyncio.sleep(0)
        if transport.out:
            break
    assert transport.take().startswith(b"\x90"), f"{client_id}: no SUBACK"
    return protocol, transport


class _Clock:
    """The loop's clock (``--clock-rate``): real time, or time that advances by one message's share
    of the rate with each message, so that timers (held PUBACKs, the keep-alive) fire at the same
    messages however fast the process runs (under valgrind, say)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, rate: float | None) -> None:
        self.loop = loop
        self.step = 1 / rate if rate else 0.0
        self.now = loop.time()

    def start(self) -> None:
        if self.step:
            setattr(self.loop, "time", lambda: self.now)  # noqa: B010 - the instance's, over the method

    def stop(self) -> None:
        if self.step:
            delattr(self.loop, "time")

    def tick(self) -> None:
        self.now += self.step

    async def pause(self, seconds: float) -> None:
        if not self.step:
            await asyncio.sleep(seconds)
            return
        self.now += seconds
        for _ in range(20):  # what fell due runs in the next passes
            await asyncio.sleep(0)


async def _run(
    pairs: int, messages: int, per_pass: int, mqtt5: bool, clock_rate: float | None
) -> tuple[float, float, int]:
    class _Relay:
        def accept(self, user: Any, topic: str, data: Any, client_id: Any = None, props: Any = None) -> int:
            broker.publish_nowait(topic, bytes(data), 1, props)
            return 0

    broker = MqchatBroker(_CONFIG, gate=_Relay(), max_inflight=10_000)
    await broker.start()
    clock = _Clock(asyncio.get_running_loop(), clock_rate)
    clock.start()
    publishers, subscribers = [], []
    for i in range(pairs):
        sub, sub_t = await _subscribed(broker, f"s{i}", 20000 + i, _topic(i), mqtt5)
        pub, pub_t = await _connect(broker, f"p{i}", 30000 + i, mqtt5)
        publishers.append((pub, pub_t))
        subscribers.append((sub, sub_t))
    await clock.pause(0.05)  # the last connection's feed, attached a few loop passes after its CONNACK
    # made before the timed part, and read below without the broker's codec: the
    # client side costs the same whatever the broker's codec does
    payload = b"\x00" + _PAYLOAD if mqtt5 else _PAYLOAD  # MQTT 5: no property, as the raw benchmark's
    packets = [
        [encode_publish(_topic(i), payload, pid, 1, False) for pid in range(1, 65)] for i in range(pairs)
    ]

    async def relay(count: int) -> None:
        for k in range(count):
            i = k % pairs
            pub, _ = publishers[i]
            sub, sub_t = subscribers[i]
            pub.data_received(packets[i][k % 64])
            delivery = sub_t.take()  # one PUBLISH: its packet id after the topic (both versions)
            head = 2 if delivery[1] < 0x80 else 3
            at = head + 2 + ((delivery[head] << 8) | delivery[head + 1])
            sub.data_received(b"\x40\x02" + delivery[at : at + 2])  # its PUBACK, in a read of its own
            clock.tick()
            if k % per_pass == per_pass - 1:
                await asyncio.sleep(0)
        await clock.pause(0.03)  # the last held PUBACKs

    await relay(min(messages, 2000))  # warm up
    writes = sum(t.writes for _, t in publishers + subscribers)
    started, cpu = time.perf_counter(), time.process_time()
    await relay(messages)
    cpu = time.process_time() - cpu
    elapsed = time.perf_counter() - started
    writes = sum(t.writes for _, t in publishers + subscribers) - writes
    clock.stop()
    await broker.shutdown()
    return cpu, elapsed, writes


async def _connects(count: int, mqtt5: bool) -> tuple[float, int]:
    """``count`` clients connect, each subscribing to its inbox once its CONNACK came (as the SDK and
    the chat benchmark's users do); the process CPU of it all and the transport writes."""

    class _Ingest:
        def accept(self, user: Any, topic: str, data: Any, client_id: Any = None, props: Any = None) -> int:
            return 0

    broker = MqchatBroker(_CONFIG, gate=_Ingest())
    await broker.start()
    transports: list[_Transport] = []
    cpu = time.process_time()
    for i in range(count):
        _, transport = await _subscribed(broker, f"u{i}/bench", 20000 + i % 40000, f"chat/u{i}/in", mqtt5)
        transports.append(transport)
    cpu = time.process_time() - cpu
    writes = sum(t.writes for t in transports)
    await broker.shutdown()
    return cpu, writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--per-pass", type=int, default=5, help="messages read per loop pass")
    parser.add_argument("--loop", default="uvloop")
    parser.add_argument("--mqtt", choices=("3.1.1", "5"), default="3.1.1", help="the clients' MQTT version")
    parser.add_argument(
        "--clock-rate",
        type=float,
        help="messages per second of a clock that advances with the messages, not with real time "
        "(with --loop asyncio): timers fire at the same messages however fast the run, as under valgrind",
    )
    parser.add_argument(
        "--connects",
        type=int,
        help="instead of relaying: this many clients connect and subscribe to their inbox, one after another",
    )
    args = parser.parse_args()
    if args.connects:
        with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
            cpu, writes = runner.run(_connects(args.connects, args.mqtt == "5"))
        print(describe().line())
        print(
            f"MQTT {args.mqtt}, {args.connects} connects and subscribes: {cpu / args.connects * 1e6:.1f} µs "
            f"CPU per connection, {writes / args.connects:.3f} writes per connection"
        )
        return
    if args.clock_rate and args.loop == "uvloop":
        parser.error("--clock-rate needs --loop asyncio (uvloop's clock is its own)")
    factory = loop_factory(args.loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        cpu, _elapsed, writes = runner.run(
            _run(args.pairs, args.messages, args.per_pass, args.mqtt == "5", args.clock_rate)
        )
    print(describe().line())
    print(
        f"MQTT {args.mqtt}, {args.messages} messages, {args.pairs} pairs, {args.per_pass} a loop pass: "
        f"{cpu / args.messages * 1e6:.2f} µs CPU per message, {writes / args.messages:.3f} writes per message"
    )


if __name__ == "__main__":
    main()
