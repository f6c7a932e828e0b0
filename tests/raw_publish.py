"""Bytes published as they are through an SDK :class:`~client_sdk.Client`'s own connection, to test
how the server takes bad input from a real client (no app needs this: it lives with the tests)."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from client_sdk import Client, MqchatError, NotConnected, Timeout


def publish_raw(client: Client, payload: bytes | bytearray, *, qos: int = 1, timeout: float = 10.0) -> None:
    """Publish ``payload`` as is on ``client``'s outbox topic.

    With QoS 1 or 2 returns once the server acknowledged it. Raises :class:`NotConnected`
    without a connection, :class:`Timeout` when the acknowledgement does not come in time.
    """
    if qos not in (0, 1, 2):
        raise ValueError(f"qos must be 0, 1 or 2, got {qos!r}")
    with client._lock:
        client._require_open()
        if client._mqtt is None or not client._session.connected:
            raise NotConnected(f"{client.client_id} is not connected right now")
        info = client._mqtt.publish(client._outbox, bytes(payload), qos=qos)
    if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
        raise NotConnected(f"{client.client_id} is not connected right now")
    if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
        raise MqchatError(f"publishing failed: {mqtt.error_string(info.rc)}")
    if qos == 0:
        return
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError) as exc:
        raise MqchatError(f"publishing failed: {exc}") from exc
    if not info.is_published():
        raise Timeout(f"the server did not acknowledge the publish within {timeout} s")
