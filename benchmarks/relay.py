"""mqchat's embedded broker alone, as a plain relay: ``python -m benchmarks.relay --port N``.

The ``mqchat-broker`` target of ``python -m benchmarks raw``. It runs ``MqchatBroker`` (the pinned
amqtt with every fix of broker/: framed reads, quick QoS 1 deliveries, routing by index, lean
sessions) on uvloop with the node's GC pacing, anonymous, and its gate relays each client PUBLISH
to the topic's subscribers instead of handing it to the chat pipeline. So the same raw workload
that runs on Mosquitto and stock amqtt measures the broker layer of mqchat on its own, apart from
validation and storage (which the ``mqchat`` target includes). Not a product: no ACL, no store.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from amqtt.mqtt.constants import QOS_1

from broker.cli import run_process
from broker.mqtt.properties import PublishProps
from broker.mqtt.server import MqchatBroker

__all__: list[str] = []


class _Relay:
    broker: MqchatBroker | None = None

    def accept(
        self,
        user: str | None,
        topic: str,
        data: bytes | bytearray,
        client_id: str | None = None,
        props: PublishProps | None = None,
    ) -> int:
        # the properties go along, as a plain MQTT 5 broker forwards them
        if self.broker is not None:
            self.broker.publish_nowait(topic, bytes(data), QOS_1, props)
        return 0  # the MQTT 5 PUBACK's "success"


async def _serve(port: int) -> None:
    relay = _Relay()
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}", "max_connections": 0}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = MqchatBroker(config, gate=relay, max_inflight=10_000)
    relay.broker = broker
    await broker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run_process(_serve(args.port), "uvloop")


if __name__ == "__main__":
    main()
