"""The embedded broker: amqtt's Broker with the fixes mqchat needs (see broker/mqtt/compat.py for the pin).

What changes from stock amqtt 0.12.1, and why:

- **Ingest before PUBACK, keep-alive enforced, lighter connections**: see broker/mqtt/handler.py and
  broker/mqtt/connection_state.py (an acknowledged command is already in the ingest queue, which a clean
  stop drains).
- **No MQTT session state.** Every connection starts clean: amqtt's offline queues and session
  persistence lose and replay messages, and the database is the source of truth (clients sync).
- **Authentication before anything else.** Stock amqtt deletes the old session of a client id and
  registers the new one *before* checking credentials, so a failed login with someone's client id
  cut them off (and leaked the rejected session). Here a refused client touches nothing; an
  accepted one takes over the old connection of its client id, which is closed.
- **Keep-alive with grace.** A client's keep-alive is stretched by ``grace`` before the handler
  enforces it, so dead clients go offline (stock amqtt ignored the read timeout).
- **Connect in O(1).** Stock amqtt logged the repr of every subscription of every session after
  each SUBSCRIBE (even with debug logging off), matched every retained message (one presence per
  user) against each new filter, and scanned every session each second for disconnected ones.
  Here SUBSCRIBE is handled as it arrives, an exact filter finds its retained message by lookup,
  and a session (always clean) is dropped with its subscriptions when its connection ends.
- **No wills from clients.** The server publishes presence itself; a client's will could otherwise
  be published to topics the ACL never saw.
- **No retained messages on connect for other clients' subscriptions.** Stock amqtt sent a new
  client every retained message matching *any* client's subscription, scanning them all.
- **Routing by index.** Stock amqtt matched every published topic against every subscription (and
  scanned them all again on each disconnect). Exact filters (every inbox) are found by dict lookup,
  only wildcard filters are matched, and each session's filters are indexed for its disconnect.
- **Bounded deliveries per connection.** A client that stops reading or acknowledging made the
  broker pile up publish tasks without end; past ``max_inflight`` unacknowledged deliveries the
  connection is closed, and the client catches up by sync when it reconnects.
- **Every connection's socket is closed when its handler ends**, and a stop waits for the handlers.
  Stock amqtt's writer ``close()`` marks itself closed before draining, so a peer that hung up
  first left the socket open for good.
- **A listen backlog for connect storms.** amqtt listened with asyncio's default backlog of 100: when
  hundreds of clients connect at once the kernel drops their SYNs, and each waits a second or more
  to retry. Listeners here queue up to ``LISTEN_BACKLOG`` connections (within the kernel's limit).
- **mqchat's own plugins are called directly.** Stock amqtt ran every plugin call of the connect
  path as a task of its own (authentication and topic filtering gathered, connect and disconnect
  events fired and forgotten). mqchat's plugins (``broker/mqtt/plugins``) are awaited in place, in the
  order they are configured, with the same verdicts (``_authenticate``, ``_topic_filtering``); their
  connect and disconnect hooks return at once and queue any slow work themselves. Any other plugin
  configured still goes through amqtt's plugin manager.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import websockets
from amqtt.broker import Broker, Server
from amqtt.contexts import ListenerConfig, ListenerType
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.base import BasePlugin
from amqtt.plugins.manager import PluginManager
from amqtt.session import Session
from amqtt.utils import gen_client_id

from broker.mqtt.compat import check_amqtt_version
from broker.mqtt.handler import HOLD_DELAY, Gate, MqchatHandler
from broker.mqtt.plugins.acl import MqchatAclPlugin
from broker.mqtt.plugins.auth import MqchatAuthPlugin
from broker.mqtt.plugins.presence import MqchatPresencePlugin

__all__ = ["LISTEN_BACKLOG", "Gate", "MqchatBroker"]

log = logging.getLogger(__name__)


def _close_transport(writer: Any) -> None:
    """Close the socket under an amqtt writer adapter, whatever state the adapter is in."""
    stream = getattr(writer, "_writer", None)
    if isinstance(stream, asyncio.StreamWriter) and not stream.is_closing():
        stream.close()


_REFUSED = 0x80

_HOLD_SLACK = 0.001
"""Seconds early a held connection may be written, so that one timer serves the holds ending together."""

LISTEN_BACKLOG = 4096
"""Connections a listener queues before accepting them (the kernel caps it at its somaxconn)."""

_DIRECT = (MqchatAuthPlugin, MqchatAclPlugin, MqchatPresencePlugin)
"""mqchat's own plugins, which the broker calls in place rather than through amqtt's tasks."""

_DIRECT_EVENTS = (BrokerEvents.CLIENT_CONNECTED, BrokerEvents.CLIENT_DISCONNECTED)

Hook = Callable[..., Awaitable[Any]]


def _connected(session: Session) -> bool:
    state = getattr(session, "_state", None)  # a ConnectionState's, without building its view
    return bool(session.transitions.is_connected()) if state is None else state == "connected"


class MqchatBroker(Broker):
    def __init__(
        self,
        config: dict[str, Any],
        *,
        gate: Gate,
        keepalive_grace: float = 1.5,
        max_connections_per_user: int = 0,
        max_inflight: int = 1000,
        max_packet: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_amqtt_version()
        super().__init__(config, **kwargs)
        self._gate = gate
        self._max_packet = max_packet
        self._keepalive_grace = keepalive_grace
        self._connections: set[asyncio.Task[Any]] = set()
        self._max_per_user = max_connections_per_user
        self._max_inflight = max_inflight
        self._wildcards: set[str] = set()
        self._filters_of: dict[int, set[str]] = {}
        self._inflight: dict[int, int] = {}
        self._clients_of: dict[str, set[str]] = {}
        self._publishing: set[asyncio.Task[Any]] = set()
        self._holding: dict[MqchatHandler, float] = {}
        """Connections with packets held back (see ``hold``), each with the loop time by which
        they go out; in that order, since every hold is ``HOLD_DELAY`` long."""
        self._due: list[MqchatHandler] = []
        """Connections given deliveries in the current ``corked`` block, written at its end."""
        self._corked = False
        self._flush_timer: asyncio.TimerHandle | None = None
        self._hooks = self._take_direct_hooks()

    # -------------------------------------------------------------- mqchat's plugins, called in place
    def _take_direct_hooks(self) -> dict[str, list[Hook]]:
        """Take mqchat's plugins' connect and disconnect hooks out of amqtt's event table (which would
        run each call as a task) so that ``_fire`` awaits them in place; others stay with amqtt."""
        table: dict[str, list[Hook]] = self.plugins_manager._event_plugin_callbacks
        hooks: dict[str, list[Hook]] = {}
        for event in _DIRECT_EVENTS:
            callbacks = table.get(event, [])
            hooks[event] = [c for c in callbacks if isinstance(getattr(c, "__self__", None), _DIRECT)]
            rest = [c for c in callbacks if c not in hooks[event]]
            if rest:
                table[event] = rest
            else:
                table.pop(event, None)
        return hooks

    async def _fire(self, event: BrokerEvents, **kwargs: Any) -> None:
        """An event to the plugins: mqchat's awaited here (a failure is logged), others as amqtt does."""
        for hook in self._hooks.get(event, ()):
            try:
                await hook(**kwargs)
            except Exception:
                log.exception("the %s hook %s failed", event, hook)
        await self.plugins_manager.fire_event(event, **kwargs)

    async def _plugin_verdicts(self, plugins: list[BasePlugin[Any]], method: str, **kwargs: Any) -> list[Any]:
        """Each plugin's answer: mqchat's awaited in order, any others gathered as amqtt does."""
        verdicts = [await getattr(p, method)(**kwargs) for p in plugins if isinstance(p, _DIRECT)]
        others = [p for p in plugins if not isinstance(p, _DIRECT)]
        if others:
            verdicts += (await PluginManager._map_plugin_method(others, method, kwargs)).values()
        return verdicts

    async def _create_server_instance(
        self,
        listener_name: str,
        listener_type: ListenerType,
        address: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> Any:
        """As stock, with a listen backlog of ``LISTEN_BACKLOG`` (stock: asyncio's 100)."""
        if listener_type == ListenerType.TCP:
            return await asyncio.start_server(
                partial(self.stream_connected, listener_name=listener_name),
                address,
                port,
                reuse_address=True,
                ssl=ssl_context,
                backlog=LISTEN_BACKLOG,
            )
        if listener_type == ListenerType.WS:
            return await websockets.serve(
                partial(self.ws_connected, listener_name=listener_name),
                address,
                port,
                ssl=ssl_context,
                subprotocols=[websockets.Subprotocol("mqtt")],
                backlog=LISTEN_BACKLOG,
            )
        return await super()._create_server_instance(listener_name, listener_type, address, port, ssl_context)

    # -------------------------------------------------------------- publishing from the server
    def publish_nowait(self, topic: str, data: bytes, qos: int = QOS_1) -> None:
        """Route a server message to the topic's subscribers now, in call order (event loop only).

        Stock amqtt's broadcast queue cost a queue hop, a task and an ``asyncio.wait`` per message;
        here each subscriber's delivery task starts at once, and the task ends itself when done.
        """
        self._fan_out(topic, data, qos, self._track)

    @contextmanager
    def corked(self) -> Iterator[None]:
        """Hold the QoS 1 deliveries made in this block; at its end, write each connection's at once.

        A batch of events that gives a connection several packets then costs it one system call
        instead of one per packet, together with any PUBACKs held for it (``hold``). Nothing else
        writes to a connection inside such a block, so every connection's packets keep their
        order. Nested blocks belong to the outermost.
        """
        if self._corked:
            yield
            return
        self._corked = True
        try:
            yield
        finally:
            self._corked = False
            due, self._due = self._due, []
            for handler in due:
                handler.uncork()

    def hold(self, handler: MqchatHandler) -> None:
        """``handler`` started holding packets back: write them within ``HOLD_DELAY``, or at the end
        of the ``corked`` block that gives the connection a delivery (``due``), whichever is first.

        A connection holding only PUBACKs waits for its own deadline, not for the end of whatever
        batch of deliveries comes next: the answers to its commands are usually in a later batch
        (at 2,000 chat messages/s, batches end every 3 ms or so, and an answer takes 4-10 ms), and
        a PUBACK flushed alone costs the connection a system call of its own.
        """
        if self._corked:  # started by a delivery (or a read while a batch awaits): at its end
            self._due.append(handler)
            return
        loop = asyncio.get_running_loop()
        holding = self._holding
        holding.pop(handler, None)
        deadline = loop.time() + HOLD_DELAY
        holding[handler] = deadline
        if self._flush_timer is None:
            self._flush_timer = loop.call_at(deadline, self._flush_expired)

    def due(self, handler: MqchatHandler) -> None:
        """``handler`` got a delivery in the current ``corked`` block: write what it holds at its end."""
        self._due.append(handler)

    def _flush_expired(self) -> None:
        """Write what the connections whose hold has run out hold; wait for the next deadline."""
        self._flush_timer = None
        holding = self._holding
        loop = asyncio.get_running_loop()
        now = loop.time() + _HOLD_SLACK
        while holding:
            handler, deadline = next(iter(holding.items()))
            if deadline > now:
                self._flush_timer = loop.call_at(deadline, self._flush_expired)
                return
            del holding[handler]
            handler.uncork()  # nothing, when it was written since

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._publishing.add(task)
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[Any]) -> None:
        self._publishing.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.info("a delivery was not completed: %r", exc)

    def bound_port(self, listener: str) -> int | None:
        server: Server | None = self._servers.get(listener)
        if server is None or server.instance is None:
            return None
        sockets = list(getattr(server.instance, "sockets", ()) or ())
        return int(sockets[0].getsockname()[1]) if sockets else None

    def connected_sessions(self) -> list[Session]:
        return [s for s, _ in self._sessions.values() if _connected(s)]

    # -------------------------------------------------------------- connection lifecycle (fixed)
    async def _client_connected(self, listener_name: str, reader: Any, writer: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await super()._client_connected(listener_name, reader, writer)
        finally:
            if task is not None:
                self._connections.discard(task)
            _close_transport(writer)

    async def shutdown(self) -> None:
        await super().shutdown()
        for task in list(self._publishing):
            task.cancel()
        pending = [t for t in self._connections if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await MqchatHandler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError as exc:
            log.info("invalid CONNECT from %s:%s: %s", remote_address, remote_port, exc)
            await writer.close()
            raise
        except (AMQTTError, NoDataError) as exc:
            log.info("no CONNECT from %s:%s: %s", remote_address, remote_port, exc)
            await writer.close()  # stock amqtt left this transport open
            raise AMQTTError(exc) from exc
        handler.gate = self._gate
        handler.max_packet = self._max_packet
        handler.requests = self
        handler.holder = self
        session.clean_session = True
        session.parent = 0
        session.will_flag = False
        session.will_topic = None
        session.will_message = None
        if not session.client_id:
            session.client_id = gen_client_id()
        if session.keep_alive > 0:
            session.keep_alive = math.ceil(session.keep_alive * self._keepalive_grace)
        return handler, session

    async def _handle_client_session(
        self,
        reader: Any,
        writer: Any,
        client_session: Session,
        handler: BrokerProtocolHandler,
        server: Server,
        listener_name: str,
    ) -> None:
        authenticated = await self._authenticate(client_session, self.listeners_config[listener_name])
        handler.attach(client_session, reader, writer)
        client_id, user = client_session.client_id, client_session.username or ""
        # counted, not copied: a copy of the set lived as long as the connection (O(N²) memory with
        # one login for every client, as anonymous clients have)
        connected = self._clients_of.get(user, set())
        others = len(connected) - (client_id in connected)
        if self._max_per_user and others >= self._max_per_user:
            log.warning("refused %s: %s already has %d connections", client_id, user, others)
            authenticated = False
        if not authenticated or client_id is None:
            await handler.mqtt_connack_authorize(False)
            await writer.close()
            return
        await self._take_over(client_id)
        client_session.transitions.connect()
        self._sessions[client_id] = (client_session, handler)
        self._clients_of.setdefault(user, set()).add(client_id)
        try:
            await handler.mqtt_connack_authorize(True)
            event = BrokerEvents.CLIENT_CONNECTED
            await self._fire(event, client_id=client_id, client_session=client_session)
            await handler.start()
            await self._client_message_loop(client_session, handler)
        finally:
            current = self._sessions.get(client_id)
            if current is None or current[0] is client_session:  # not taken over by a newer one
                if current is not None:  # a clean session ends with its connection
                    del self._sessions[client_id]
                    await self._del_all_subscriptions(client_session)
                clients = self._clients_of.get(user)
                if clients is not None:
                    clients.discard(client_id)
                    if not clients:
                        del self._clients_of[user]

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        """As stock: accepted when every plugin that answers True or False answers True, and at least
        one answers; a plugin that fails refuses the login."""
        try:
            verdicts = await self._plugin_verdicts(
                self.plugins_manager._auth_plugins, "authenticate", session=session
            )
        except Exception:
            log.exception("authentication of %s failed with an error; refusing", session.client_id)
            return False
        answers = [v for v in verdicts if v is not None]
        return bool(answers) and all(answers)

    async def _topic_filtering(self, session: Session, topic: str, action: Any) -> bool:
        """As stock: allowed when topic filtering is off, or every topic plugin answers truthy."""
        if not self.plugins_manager.is_topic_filtering_enabled():
            return True
        plugins = self.plugins_manager._topic_plugins
        verdicts = await self._plugin_verdicts(
            plugins, "topic_filtering", session=session, topic=topic, action=action
        )
        return all(verdicts)

    async def _take_over(self, client_id: str) -> None:
        """Close the previous connection of ``client_id``, if any, and forget its session."""
        previous = self._sessions.pop(client_id, None)
        if previous is None:
            return
        old_session, old_handler = previous
        if _connected(old_session):
            log.info("%s connected again: closing its previous connection", client_id)
            await old_handler.handle_connection_closed()
        await self._del_all_subscriptions(old_session)
        old_session.clear_queues()

    async def _session_monitor(self) -> None:
        """Nothing to expire: a session is dropped when its connection ends (stock: a scan a second)."""
        return

    async def _client_message_loop(self, client_session: Session, handler: BrokerProtocolHandler) -> None:
        """Wait for the end of the connection; requests are handled as they come (see ``MqchatHandler``).

        Stock amqtt kept four waiting tasks per connection and logged the repr of every
        subscription of every session after each SUBSCRIBE (O(N) per connect, even with debug off).
        """
        try:
            await handler.wait_disconnect()
        except asyncio.CancelledError:
            return  # as stock: the broker is stopping and cleans up itself
        await self._stop_handler(handler)
        client_session.transitions.disconnect()
        event = BrokerEvents.CLIENT_DISCONNECTED
        await self._fire(event, client_id=client_session.client_id, client_session=client_session)

    async def on_subscribe(
        self, session: Session, handler: MqchatHandler, packet_id: int, topics: list[tuple[str, int]]
    ) -> None:
        codes = [await self.add_subscription(subscription, session) for subscription in topics]
        await handler.mqtt_acknowledge_subscription(packet_id, codes)
        for (topic_filter, qos), code in zip(topics, codes, strict=True):
            if code != _REFUSED:
                await self.plugins_manager.fire_event(
                    BrokerEvents.CLIENT_SUBSCRIBED, client_id=session.client_id, topic=topic_filter, qos=qos
                )
                await self._publish_retained_messages_for_subscription((topic_filter, code), session)

    async def on_unsubscribe(
        self, session: Session, handler: MqchatHandler, packet_id: int, topics: list[str]
    ) -> None:
        for topic_filter in topics:
            self._del_subscription(topic_filter, session)
            await self.plugins_manager.fire_event(
                BrokerEvents.CLIENT_UNSUBSCRIBED, client_id=session.client_id, topic=topic_filter
            )
        await handler.mqtt_acknowledge_unsubscription(packet_id)

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        """Send the retained messages matching a filter just granted to ``session`` (only to it).

        An exact filter (every presence topic) is one dict lookup; stock amqtt matched every
        retained message (one per user) against every new filter.
        """
        topic_filter, qos = subscription
        handler = self._get_handler(session)
        if handler is None:
            return
        if "+" in topic_filter or "#" in topic_filter:
            retained = [r for t, r in self._retained_messages.items() if self._matches(t, topic_filter)]
        else:
            exact = self._retained_messages.get(topic_filter)
            retained = [exact] if exact is not None else []
        publishes = [
            handler.mqtt_publish(r.topic, r.data, min(qos, r.qos or qos), retain=True) for r in retained
        ]
        for outcome in await asyncio.gather(*publishes, return_exceptions=True):
            if isinstance(outcome, Exception):
                log.info("retained message to %s not acknowledged: %s", session.client_id, outcome)

    # -------------------------------------------------------------- routing by index (fixed)
    async def add_subscription(self, subscription: tuple[str, int], session: Session) -> int:
        code = int(await super().add_subscription(subscription, session))
        if code != _REFUSED:
            topic_filter = subscription[0]
            self._filters_of.setdefault(id(session), set()).add(topic_filter)
            if "+" in topic_filter or "#" in topic_filter:
                self._wildcards.add(topic_filter)
        return code

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        deleted = int(super()._del_subscription(a_filter, session))
        filters = self._filters_of.get(id(session))
        if filters is not None:
            filters.discard(a_filter)
        if not self._subscriptions.get(a_filter):
            self._subscriptions.pop(a_filter, None)
            self._wildcards.discard(a_filter)
        return deleted

    async def _del_all_subscriptions(self, session: Session) -> None:
        for topic_filter in self._filters_of.pop(id(session), set()):
            self._del_subscription(topic_filter, session)
        self._inflight.pop(id(session), None)

    def _subscribers(self, topic: str) -> list[tuple[Session, int]]:
        targets = list(self._subscriptions.get(topic, ()))
        for topic_filter in self._wildcards:
            if self._matches(topic, topic_filter):
                targets += self._subscriptions.get(topic_filter, ())
        return targets

    async def _run_broadcast(self, running_tasks: Any) -> None:
        broadcast = await self._broadcast_queue.get()
        self._fan_out(broadcast["topic"], broadcast["data"], broadcast.get("qos"), running_tasks.append)

    def _fan_out(
        self, topic: str, data: bytes, qos: int | None, spawned: Callable[[asyncio.Task[Any]], None]
    ) -> None:
        """Start one delivery task per connected subscriber (``qos`` None: the subscription's)."""
        # Subscriptions were checked by the ACL when they were made, and every topic a granted
        # filter matches is one the subscriber may read, so no per-message RECEIVE check is needed.
        for session, sub_qos in self._subscribers(topic):
            if not _connected(session):
                continue
            handler = self._get_handler(session)
            if handler is None:
                continue
            key = id(session)
            inflight = self._inflight.get(key, 0)
            if inflight >= self._max_inflight:
                log.warning("%s has %d deliveries unacknowledged: closing it", session.client_id, inflight)
                self._inflight[key] = 0
                spawned(asyncio.ensure_future(handler.handle_connection_closed()))
                continue
            self._inflight[key] = inflight + 1
            qos_out = sub_qos if qos is None else qos
            if (
                qos_out in (QOS_0, QOS_1)
                and isinstance(handler, MqchatHandler)
                and handler.publish_now(
                    topic, data, partial(self._delivered, key, None), self._corked, qos_out
                )
            ):
                continue
            task = asyncio.ensure_future(handler.mqtt_publish(topic, data, qos_out, retain=False))
            task.add_done_callback(partial(self._delivered, key))
            spawned(task)

    def _delivered(self, key: int, _task: asyncio.Future[Any] | None) -> None:
        count = self._inflight.get(key)
        if count:
            self._inflight[key] = count - 1
