"""Raw MQTT load: publisher/subscriber pairs at QoS 1 and idle subscribers.

On a plain broker (Mosquitto, stock amqtt, any other) pair ``i`` publishes to
``bench/<run>/<i>`` and its subscriber receives it; the payload starts with the send time. On
mqchat the same path is the chat path: the publisher sends a ``send`` command to its own
``chat/<user>/out`` for its partner, and the partner receives the ``message`` event on
``chat/<partner>/in`` (the time is the start of the text). The publisher does not read its own
inbox (``sent`` events): that is ``chat`` mode.
"""

from __future__ import annotations

import json
import struct
import time
from functools import partial

from benchmarks.mqtt import Connection
from benchmarks.plan import WorkerPlan
from benchmarks.worker import ConnSpec, Workload

__all__ = ["RawLoad"]

_STAMP = struct.Struct("!d")


class RawLoad(Workload):
    def __init__(self, plan: WorkerPlan) -> None:
        super().__init__(plan)
        self._mqchat = plan.target.mqchat
        self._pad = b"x" * max(0, plan.payload - _STAMP.size)
        self._text_pad = "x" * max(0, plan.payload - 90)
        self._topics: list[str] = []
        self._publishers: list[Connection] = []

    def _client(self, name: str) -> tuple[str, str | None, str | None]:
        """Client id, username, password of the connection for ``name``."""
        target = self.plan.target
        if self._mqchat:
            return f"{name}/bench", name, target.token
        return f"bench-{self.plan.run_id}-{name}", target.username, target.password

    def specs(self) -> list[ConnSpec]:
        plan = self.plan
        specs: list[ConnSpec] = []
        for unit, (pub, sub) in enumerate(plan.pairs):
            if self._mqchat:
                out_topic, in_topic = f"chat/{pub}/out", f"chat/{sub}/in"
            else:
                out_topic = in_topic = f"bench/{plan.run_id}/{pub}"
            self._topics.append(out_topic)
            specs.append(ConnSpec(*self._client(pub), (), self._ignore))
            specs.append(ConnSpec(*self._client(sub), (in_topic,), partial(self._received, unit)))
        for name in plan.idle:
            topic = f"chat/{name}/in" if self._mqchat else f"bench/{plan.run_id}/idle/{name}"
            specs.append(ConnSpec(*self._client(name), (topic,), self._ignore))
        return specs

    def units(self) -> int:
        return len(self.plan.pairs)

    async def after_connect(self) -> None:
        self._publishers = [self.conns[self._client(pub)[0]] for pub, _ in self.plan.pairs]

    def send(self, unit: int, now: float) -> int:
        if self._mqchat:
            command = {
                "v": 1,
                "type": "send",
                "id": self.new_id("r"),
                "to": self.plan.pairs[unit][1],
                "text": f"{now!r} {self._text_pad}",
            }
            payload = json.dumps(command, separators=(",", ":")).encode()
        else:
            payload = _STAMP.pack(now) + self._pad
        self._publishers[unit].publish(self._topics[unit], payload, self.plan.qos)
        return 1

    def _ignore(self, topic: str, payload: bytes) -> None:
        return None

    def _received(self, unit: int, topic: str, payload: bytes) -> None:
        now = time.monotonic()
        if self._mqchat:
            try:
                event = json.loads(payload)
                if event.get("type") != "message":
                    self.errors[f"event {event.get('type')}"] += 1
                    return
                sent_at = float(event["message"]["text"].split(" ", 1)[0])
            except (ValueError, KeyError, TypeError):
                self.errors["unreadable event"] += 1
                return
        else:
            sent_at = _STAMP.unpack_from(payload)[0]
        self.rec.on_deliver(sent_at, now)
        self.completed(unit)
