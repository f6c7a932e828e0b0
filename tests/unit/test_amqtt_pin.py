"""broker/server.py overrides amqtt internals: fail loudly if the pinned amqtt changes under it."""

from __future__ import annotations

import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

from amqtt.adapters import StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.protocol.handler import ProtocolHandler

from broker.compat import AMQTT_VERSION

ROOT = Path(__file__).resolve().parents[2]


def test_installed_amqtt_is_the_pinned_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert f"amqtt=={AMQTT_VERSION}" in pyproject["project"]["dependencies"]
    assert version("amqtt") == AMQTT_VERSION


def _params(func: object) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]  # type: ignore[arg-type]


def test_the_overridden_broker_methods_keep_their_shape() -> None:
    assert _params(Broker._initialize_client_session) == ["reader", "writer", "remote_address", "remote_port"]
    assert _params(Broker._handle_client_session) == [
        "reader",
        "writer",
        "client_session",
        "handler",
        "server",
        "listener_name",
    ]
    assert _params(Broker._authenticate) == ["session", "_"]
    assert _params(Broker._publish_retained_messages_for_subscription) == ["subscription", "session"]
    assert _params(Broker._client_message_loop) == ["client_session", "handler"]
    assert _params(Broker._del_all_subscriptions) == ["session"]
    source = inspect.getsource(Broker.__init__)
    for attribute in ("self._broadcast_queue", "self._sessions", "self._subscriptions", "self._servers"):
        assert attribute in source


def test_the_overridden_handler_methods_keep_their_shape() -> None:
    assert _params(BrokerProtocolHandler.handle_publish) == ["publish_packet"]
    assert _params(BrokerProtocolHandler.handle_read_timeout) == []
    assert _params(BrokerProtocolHandler.init_from_connect) == ["reader", "writer", "plugins_manager", "loop"]
    assert _params(ProtocolHandler._send_packet) == ["packet"]
    assert _params(Broker._client_connected) == ["listener_name", "reader", "writer"]
    assert "self._writer = writer" in inspect.getsource(StreamWriterAdapter.__init__)
    # the stock read-timeout handler does nothing: that is the defect broker/server.py fixes
    assert "pass" in inspect.getsource(BrokerProtocolHandler.handle_read_timeout)
