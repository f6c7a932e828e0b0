"""amqtt's configuration for the node's broker, from mqchat's broker settings."""

from __future__ import annotations

from typing import Any

from config.settings import BrokerSettings

__all__ = ["amqtt_config"]


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def amqtt_config(settings: BrokerSettings) -> dict[str, Any]:
    """The listeners ``default`` (TCP) and ``ws`` (WebSocket, when ``ws_port`` is set), both with TLS
    when a certificate is set. amqtt loads no plugin: mqchat's are passed to ``MqchatBroker``."""
    tls: dict[str, Any] = (
        {"ssl": True, "certfile": str(settings.certfile), "keyfile": str(settings.keyfile)}
        if settings.tls
        else {}
    )
    listeners: dict[str, Any] = {
        "default": {
            "type": "tcp",
            "bind": _bind(settings.host, settings.mqtt_port),
            "max_connections": settings.max_connections,
            **tls,
        }
    }
    if settings.ws_port is not None:
        listeners["ws"] = {
            "type": "ws",
            "bind": _bind(settings.host, settings.ws_port),
            "max_connections": settings.max_connections,
            **tls,
        }
    return {"listeners": listeners, "timeout_disconnect_delay": 0, "plugins": {}}
