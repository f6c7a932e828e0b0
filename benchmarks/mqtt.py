"""One MQTT 3.1.1 connection of the load generator, on gmqtt.

Why gmqtt: a worker process runs thousands of connections on one asyncio loop, and the generator
must cost as little CPU per message as possible so that it is not the bottleneck. gmqtt is an
asyncio ``Protocol`` client (no thread, no socket polling per connection); paho-mqtt driven from an
asyncio loop (``loop_read``/``loop_write`` on reader/writer callbacks, as aiomqtt does) measured
about 80 µs of generator CPU per QoS 1 message (publish, PUBACK, delivery, PUBACK) against
Mosquitto, gmqtt about 32 µs. Everything gmqtt-specific stays in this module.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gmqtt import Client as _GmqttClient  # type: ignore[import-untyped]
from gmqtt.mqtt.constants import MQTTv311  # type: ignore[import-untyped]

__all__ = ["Connection", "ConnectionFailed"]

OnMessage = Callable[[str, bytes], None]

logging.getLogger("gmqtt").setLevel(logging.ERROR)


class ConnectionFailed(Exception):
    """CONNECT or SUBSCRIBE did not succeed (refused, timed out, connection reset)."""


def _ignore(topic: str, payload: bytes) -> None:
    return None


class Connection:
    def __init__(
        self,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        on_message: OnMessage = _ignore,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.client_id = client_id
        self.on_message = on_message
        self._on_lost = on_lost
        self._client: Any = _GmqttClient(client_id, clean_session=True)
        self._client.set_config({"reconnect_retries": 0})
        if username is not None:
            self._client.set_auth_credentials(username, password)
        self._client.on_message = self._message
        self._client.on_subscribe = self._suback
        self._client.on_disconnect = self._disconnected
        self._subacks: dict[int, asyncio.Future[list[int]]] = {}
        self.connected = False
        self._closing = False

    def _message(self, _client: Any, topic: str, payload: bytes, _qos: int, _props: Any) -> int:
        self.on_message(topic, payload)
        return 0

    def _suback(self, _client: Any, mid: int, granted: list[int], _props: Any) -> None:
        future = self._subacks.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(list(granted))

    def _disconnected(self, _client: Any, _packet: Any, _exc: Any = None) -> None:
        was = self.connected
        self.connected = False
        if was and not self._closing and self._on_lost is not None:
            self._on_lost()

    async def connect(self, host: str, port: int, *, keepalive: int = 60, timeout: float = 30.0) -> None:
        try:
            await asyncio.wait_for(
                self._client.connect(host, port, keepalive=keepalive, version=MQTTv311), timeout
            )
        except Exception as exc:
            raise ConnectionFailed(f"{self.client_id}: CONNECT failed: {exc!r}") from exc
        self.connected = True

    async def subscribe(self, topic: str, qos: int = 1, *, timeout: float = 30.0) -> None:
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        mid = self._client.subscribe(topic, qos=qos)
        self._subacks[mid] = future  # the SUBACK cannot be read before the next await
        try:
            granted = await asyncio.wait_for(future, timeout)
        except TimeoutError as exc:
            raise ConnectionFailed(f"{self.client_id}: no SUBACK for {topic}") from exc
        if any(code >= 0x80 for code in granted):
            raise ConnectionFailed(f"{self.client_id}: SUBSCRIBE {topic} refused")

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        self._client.publish(topic, payload, qos=qos)

    async def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        if not self.connected:
            return
        self.connected = False
        try:
            await asyncio.wait_for(self._client.disconnect(), timeout)
        except Exception:
            return
