"""broker/mqtt/ overrides amqtt internals: fail loudly if the pinned amqtt changes under it, and
keep amqtt out of every other module, so that this folder is all a new amqtt version can break."""

from __future__ import annotations

import ast
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from amqtt.adapters import StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.protocol.handler import ProtocolHandler
from amqtt.session import Session

from broker.mqtt.compat import AMQTT_VERSION

ROOT = Path(__file__).resolve().parents[2]


def _imports_amqtt(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "amqtt" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "amqtt":
            return True
    return False


def test_only_broker_mqtt_imports_amqtt() -> None:
    sources = [p for folder in ("broker", "workers") for p in (ROOT / folder).rglob("*.py")]
    importing = {p.relative_to(ROOT).as_posix() for p in sources if _imports_amqtt(p)}
    assert importing  # the scan finds the fork itself
    assert sorted(p for p in importing if not p.startswith("broker/mqtt/")) == []


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
    # the stock read-timeout handler does nothing: that is the defect broker/mqtt/handler.py fixes
    assert "pass" in inspect.getsource(BrokerProtocolHandler.handle_read_timeout)


def _digest(func: object) -> str:
    import hashlib

    return hashlib.sha256(inspect.getsource(func).encode()).hexdigest()  # type: ignore[arg-type]


def test_the_code_copied_or_replaced_for_lighter_connections_is_unchanged() -> None:
    # broker/mqtt/connect.py repeats the checks of init_from_connect, building a ConnectionState
    assert _digest(BrokerProtocolHandler.init_from_connect) == (
        "036dc04c1133a18fb5b5987a60c2e45d0250daf02d18ec797989c5d23d0876e2"
    )
    # broker/mqtt/connection_state.py: Session.__init__ builds its machine through _init_states and its two
    # queues as plain attributes, which ConnectionState replaces
    assert _digest(Session.__init__) == "ad7888c0daff2038e59468539a7335d136e397033d397bc5c80b70cceda0e4d4"
    assert "self._init_states()" in inspect.getsource(Session.__init__)


def test_the_constructors_the_lean_connection_replaces_are_unchanged() -> None:
    # broker/mqtt/lean.py: LeanHandler.__init__ and _init_session stand for these three, setting
    # their constants as class attributes and their containers lazily
    assert _digest(ProtocolHandler.__init__) == (
        "1d65aad5a7b47e7dd30f0a30a760176427f1ff22495b85f0542f706595af4efd"
    )
    assert _digest(BrokerProtocolHandler.__init__) == (
        "95a1c78fecfdbffa7097f19c842b11ad41ecb11dd6feca1dd6b374e7bc328ad3"
    )
    assert _digest(ProtocolHandler._init_session) == (
        "d8f6979793e163e93f417f0110227ca3f5c063e541d87641001d30355cc55227"
    )
    # a ConnectionState has every attribute Session.__init__ sets (its own, or its class's)
    from broker.mqtt.connection_state import ConnectionState

    lean = ConnectionState()
    missing = [name for name in vars(Session()) if name != "transitions" and not hasattr(lean, name)]
    assert missing == []


def test_the_handler_internals_the_lighter_handler_relies_on() -> None:
    # broker/mqtt/handler.py replaces start() and the reader loop; stop() must still end them this way
    stop = inspect.getsource(ProtocolHandler.stop)
    assert "self._reader_task.cancel()" in stop
    assert "await self._reader_stopped.wait()" in stop
    assert "self._reader_stopped = asyncio.Event()" in inspect.getsource(ProtocolHandler.__init__)
    # the write-timeout timer is re-armed only when one was set (MqchatHandler sets none)
    assert "if self._keepalive_task:" in inspect.getsource(ProtocolHandler._send_packet)
    # SUBSCRIBE/UNSUBSCRIBE queues are replaced by DISCARD, which stop() may only drain
    assert "_pending_subscriptions.empty()" in inspect.getsource(BrokerProtocolHandler.stop)
    assert "self._disconnect_waiter" in inspect.getsource(BrokerProtocolHandler.wait_disconnect)
    for name in ("handle_puback", "handle_pingreq", "handle_disconnect", "handle_pubrec", "handle_pubrel"):
        assert _params(getattr(BrokerProtocolHandler, name)) != []
    assert _params(BrokerProtocolHandler.mqtt_acknowledge_subscription) == ["packet_id", "return_codes"]
    assert _params(BrokerProtocolHandler.mqtt_acknowledge_unsubscription) == ["packet_id"]
    # broker/mqtt/handler5.py answers these with MQTT 5 packets instead (the broker calls them)
    assert _params(ProtocolHandler.mqtt_publish) == ["topic", "data", "qos", "retain", "ack_timeout"]
    assert _params(BrokerProtocolHandler.handle_connection_closed) == []


def test_the_broker_internals_the_connect_path_relies_on() -> None:
    # MqchatBroker replaces the loop that logged every subscription's repr after each SUBSCRIBE,
    # and the session monitor, which start() runs as a task
    assert "self._handle_subscription(" in inspect.getsource(Broker._client_message_loop)
    assert "self._session_monitor()" in inspect.getsource(Broker.start)
    assert _params(Broker._session_monitor) == []
    assert _params(Broker._get_handler) == ["session"]
    assert _params(Broker._matches) == ["topic", "a_filter"]
    assert _params(Broker._stop_handler) == ["handler"]
    assert "self._retained_messages" in inspect.getsource(Broker.__init__)


def test_what_the_framed_reader_relies_on_is_still_there() -> None:
    from amqtt.adapters import StreamReaderAdapter
    from amqtt.plugins.manager import PluginManager

    # the TCP stream under the adapter, and the test for plugins that want each packet received
    assert "self._reader = reader" in inspect.getsource(StreamReaderAdapter.__init__)
    assert "self._event_plugin_callbacks" in inspect.getsource(PluginManager)
    # ConnectionState.next_packet_id skips the ids stock skips, and the quick deliveries' too
    stock = inspect.getsource(Session.next_packet_id.fget)  # type: ignore[attr-defined]
    assert "self.inflight_in" in stock
    assert "self.inflight_out" in stock
    assert "self._packet_id = (self._packet_id % 65535) + 1" in stock


def test_packet_ids_in_flight_anywhere_are_never_handed_out_again() -> None:
    from amqtt.errors import AMQTTError

    from broker.mqtt.connection_state import ConnectionState

    session = ConnectionState()
    session.quick_out[1] = (0.0, lambda: None)
    session.inflight_out[2] = object()
    session.inflight_in[3] = object()
    assert session.next_packet_id == 4
    session._packet_id = 65534
    assert [session.next_packet_id, session.next_packet_id] == [65535, 4]  # wraps past 1-3
    for packet_id in range(4, 65536):
        session.quick_out[packet_id] = (0.0, lambda: None)
    with pytest.raises(AMQTTError):
        _ = session.next_packet_id


def test_what_calling_mqchats_plugins_in_place_relies_on() -> None:
    from amqtt.broker import BrokerContext
    from amqtt.plugins.manager import PluginManager

    # MqchatBroker._authenticate and _topic_filtering give stock's verdicts without its tasks: a
    # change of stock's rules must be looked at
    assert _digest(Broker._authenticate) == "4d7db8cc6fe2c3f64d607c8063f6b3158368039af89c554baf275543569f53f5"
    assert _digest(Broker._topic_filtering) == (
        "9259ae5e1dd3e20d3d111950239847f4c77b57550878c09da538c2ad9ec25240"
    )
    assert _params(Broker._topic_filtering) == ["session", "topic", "action"]
    assert "await self._topic_filtering(session, topic_filter, Action.SUBSCRIBE)" in inspect.getsource(
        Broker.add_subscription
    )
    # plugins named in amqtt's config (the node names none: "plugins": {}) are still asked
    manager = inspect.getsource(PluginManager)
    for attribute in ("self._auth_plugins", "self._topic_plugins", "self._event_plugin_callbacks"):
        assert attribute in manager
    assert 'self.app_context.config.get("plugins", None) is not None' in manager
    assert _params(PluginManager._map_plugin_method) == ["plugins", "method_name", "method_kwargs"]
    assert isinstance(inspect.getattr_static(PluginManager, "_map_plugin_method"), staticmethod)
    # the presence plugin publishes through amqtt's BrokerContext (its PluginContext)
    assert _params(BrokerContext.__init__) == ["broker"]
    assert _params(BrokerContext.broadcast_message) == ["topic", "data", "qos"]
    assert _params(BrokerContext.retain_message) == ["topic_name", "data", "qos"]


def test_the_subscription_index_shares_the_dict_amqtt_fills() -> None:
    # SubscriptionIndex keeps a reference to Broker._subscriptions: amqtt must fill and empty that
    # dict in place, never bind a new one
    source = inspect.getsource(Broker)
    assert source.count("self._subscriptions: dict[") == 1
    assert "self._subscriptions = " not in source
    assert "self._subscriptions.clear()" in inspect.getsource(Broker.start)
    assert "self._subscriptions[topic_filter].append((session, qos))" in inspect.getsource(
        Broker.add_subscription
    )
    assert "subscriptions.pop(index)" in inspect.getsource(Broker._del_subscription)


def test_what_reading_the_connect_whole_relies_on() -> None:
    from amqtt.mqtt.connect import ConnectPacket
    from amqtt.mqtt.packet import CONNECT, MQTTFixedHeader, MQTTPacket

    assert CONNECT == 1
    assert _params(MQTTFixedHeader.__init__)[:3] == ["packet_type", "flags", "length"]
    assert _params(ConnectPacket.from_stream) == ["reader", "fixed_header", "variable_header"]
    # given a fixed header, the packet is decoded from the reader without reading a header again
    assert "if fixed_header is None:" in inspect.getsource(MQTTPacket.from_stream)


def test_the_listeners_are_made_as_stock_makes_them_but_for_the_backlog() -> None:
    # MqchatBroker._create_server_instance repeats stock's servers with a listen backlog
    assert _params(Broker._create_server_instance) == [
        "listener_name",
        "listener_type",
        "address",
        "port",
        "ssl_context",
    ]
    assert "self._create_server_instance(listener_name, listener.type, address, port, ssl_context)" in (
        inspect.getsource(Broker._start_listeners)
    )
    stock = inspect.getsource(Broker._create_server_instance)
    assert "backlog" not in stock
    arguments = ("reuse_address=True,", "ssl=ssl_context,", 'subprotocols=[websockets.Subprotocol("mqtt")],')
    assert all(argument in stock for argument in arguments)


def test_every_packet_writes_itself_in_one_write_before_it_waits() -> None:
    # broker/mqtt/lean.py: the handler's write lock is a no-op, because every to_stream writes its
    # packet in one write before it awaits anything (a drain): packets cannot interleave
    from amqtt.mqtt import packet as packet_module

    checked = 0
    for cls in vars(packet_module).values():
        if isinstance(cls, type) and "to_stream" in vars(cls):
            body = inspect.getsource(cls.to_stream).split("\n", 1)[1]
            assert body.count("writer.write(") == 1, cls
            assert "await" not in body.split("writer.write(")[0], cls
            checked += 1
    assert checked >= 3
    assert "async with self._write_lock:" in inspect.getsource(ProtocolHandler._send_packet)


def test_the_connection_coroutine_repeats_stocks() -> None:
    # MqchatBroker._client_connected repeats stock's (and stream_connected's adapters) in one frame
    assert _digest(Broker._client_connected) == (
        "432b724bc4fb7946f1e4de2b71ba4cd0e94aa4959afc7cb5a146353308b833a5"
    )
    assert _digest(Broker.stream_connected) == (
        "d1c68240cb49f94a431455e63b0277a27c92a482c4512a8e2de975e13025720e"
    )


def test_the_disconnect_waiter_is_only_resolved_or_awaited() -> None:
    # broker/mqtt/server.py _EndOnDisconnect stands for the waiter of a TCP connection: amqtt's
    # broker handler may only test it, ask done(), resolve it, reset it, or await it (unused here)
    uses = sorted(
        {
            line.strip()
            for line in inspect.getsource(BrokerProtocolHandler).splitlines()
            if "_disconnect_waiter" in line
        }
    )
    assert uses == [
        "if self._disconnect_waiter and not self._disconnect_waiter.done():",
        "if self._disconnect_waiter is None or self._disconnect_waiter.done():",
        "if self._disconnect_waiter is not None and not self._disconnect_waiter.done():",
        "if self._disconnect_waiter is not None:",
        "return await self._disconnect_waiter",
        "self._disconnect_waiter = None  # Reset the disconnect waiter",
        "self._disconnect_waiter = None  # Reset the disconnect waiter to avoid reuse",
        "self._disconnect_waiter = asyncio.Future()",
        "self._disconnect_waiter.set_result(None)",
        "self._disconnect_waiter.set_result(disconnect)",
        "self._disconnect_waiter: asyncio.Future[DisconnectPacket | None] | None = None",
    ]


def test_a_subscribe_decodes_without_waiting() -> None:
    """The feed decodes a SUBSCRIBE in its read callback (``MqchatHandler._subscribe_now``): amqtt's
    decoder over a ``BufferReader`` must not wait, and ``run_now`` says so if it ever does."""
    import asyncio

    from amqtt.adapters import BufferReader
    from amqtt.mqtt.packet import SUBSCRIBE, MQTTFixedHeader
    from amqtt.mqtt.subscribe import SubscribePacket

    from broker.mqtt.lean import run_now

    body = b"\x00\x07\x00\x03a/b\x01\x00\x01c\x00"
    header = MQTTFixedHeader(SUBSCRIBE, 0x02, len(body))
    packet = run_now(SubscribePacket.from_stream(BufferReader(body), fixed_header=header))
    assert packet.variable_header is not None and packet.payload is not None
    assert packet.variable_header.packet_id == 7
    assert packet.payload.topics == [("a/b", 1), ("c", 0)]

    async def waits() -> None:
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="waited"):
        run_now(waits())
