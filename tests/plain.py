"""A plain MQTT client (paho, no SDK) for tests of the wire contract itself."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


class PlainClient:
    def __init__(
        self,
        port: int,
        user: str,
        token: str,
        *,
        device: str = "plain",
        keepalive: int = 30,
        mqtt5: bool = False,
        transport: str = "tcp",
        properties: Any = None,
        tls: Any = None,
    ) -> None:
        """``mqtt5``: speak MQTT 5 (``properties``: the CONNECT's), else 3.1.1; ``transport``:
        "tcp" or "websockets"; ``tls``: an ``ssl.SSLContext``."""
        self.user = user
        self.mqtt5 = mqtt5
        self.connack: Any = None
        """The CONNACK's properties (MQTT 5)."""
        self.pubacks: dict[int, int] = {}
        """mid -> the PUBACK's reason code (MQTT 5)."""
        self.disconnects: queue.Queue[int] = queue.Queue()
        """The reason codes of the disconnects (MQTT 5: the server's DISCONNECT)."""
        self.received: list[mqtt.MQTTMessage] = []
        self.messages: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.qos_of: list[tuple[Any, int]] = []
        """(event type, QoS) of every JSON event received, in order."""
        self._connack: queue.Queue[Any] = queue.Queue()
        self._subacks: dict[int, queue.Queue[list[int]]] = {}
        self._lock = threading.Lock()
        if mqtt5:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"{user}/{device}",
                protocol=mqtt.MQTTv5,
                transport=transport,  # type: ignore[arg-type]
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=f"{user}/{device}",
                clean_session=True,
                transport=transport,  # type: ignore[arg-type]
            )
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.username_pw_set(user, token)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = lambda c, u, f, rc, p: self.disconnects.put(rc.value)
        if mqtt5:
            self.client.connect(
                "127.0.0.1", port, keepalive=keepalive, clean_start=True, properties=properties
            )
        else:
            self.client.connect("127.0.0.1", port, keepalive=keepalive)
        self.client.loop_start()
        rc = self._connack.get(timeout=10)
        if rc.is_failure:
            self.client.loop_stop()
            raise ConnectionRefusedError(str(rc))

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        self.connack = props
        self._connack.put(rc)

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self.pubacks[mid] = rc.value

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.received.append(msg)
        try:
            payload: Any = json.loads(msg.payload)
        except ValueError:
            payload = msg.payload
        if isinstance(payload, dict):
            self.qos_of.append((payload.get("type"), msg.qos))
        self.messages.put((msg.topic, payload))

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, codes: list[ReasonCode], props: Any
    ) -> None:
        with self._lock:
            waiter = self._subacks.setdefault(mid, queue.Queue())
        waiter.put([c.value for c in codes])

    def subscribe(self, topic: str, qos: int = 1) -> list[int]:
        """Subscribe and return the SUBACK codes (0x80 = refused)."""
        result, mid = self.client.subscribe(topic, qos)
        assert result == mqtt.MQTT_ERR_SUCCESS
        with self._lock:
            waiter = self._subacks.setdefault(mid, queue.Queue())
        return waiter.get(timeout=10)

    def inbox(self) -> list[int]:
        return self.subscribe(f"chat/{self.user}/in")

    def publish(
        self,
        payload: dict[str, Any] | bytes,
        *,
        topic: str | None = None,
        qos: int = 1,
        properties: Any = None,
    ) -> int | None:
        """Publish and wait for the PUBACK; its reason code (MQTT 5, QoS 1), else None."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = self.client.publish(topic or f"chat/{self.user}/out", data, qos, properties=properties)
        info.wait_for_publish(10)
        return self.pubacks.get(info.mid) if self.mqtt5 and qos else None

    def send(self, to: str, text: str, *, cid: str | None = None) -> str:
        cid = cid or uuid.uuid4().hex
        self.publish({"v": 1, "type": "send", "id": cid, "to": to, "text": text})
        return cid

    def expect(self, predicate: Any, timeout: float = 10.0) -> Any:
        """The first received payload for which ``predicate(topic, payload)`` holds (others are kept)."""
        deadline = time.monotonic() + timeout
        skipped = []
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"nothing matching arrived in {timeout}s; got {skipped}")
                try:
                    topic, payload = self.messages.get(timeout=remaining)
                except queue.Empty:
                    continue
                if predicate(topic, payload):
                    return payload
                skipped.append((topic, payload))
        finally:
            for item in skipped:
                self.messages.put(item)

    def expect_type(self, kind: str, timeout: float = 10.0, **fields: Any) -> Any:
        return self.expect(
            lambda t, p: (
                isinstance(p, dict)
                and p.get("type") == kind
                and all(p.get(k) == v for k, v in fields.items())
            ),
            timeout,
        )

    def drain(self, settle: float = 0.3) -> list[tuple[str, Any]]:
        time.sleep(settle)
        items = []
        while not self.messages.empty():
            items.append(self.messages.get_nowait())
        return items

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
