"""The embedded broker: amqtt's Broker with the fixes mqchat needs (see broker/compat.py for the pin).

What changes from stock amqtt 0.12.1, and why:

- **Ingest before PUBACK.** A client PUBLISH (QoS 0/1) goes to the ``Gate`` (ingest) before the
  PUBACK is sent and is not routed through amqtt's broadcast loop: clients only ever publish to
  their own outbox, which nobody subscribes to. An acknowledged command is thus already in the
  ingest queue, which a clean stop drains.
- **No MQTT session state.** Every connection starts clean: amqtt's offline queues and session
  persistence lose and replay messages, and the database is the source of truth (clients sync).
- **Authentication before anything else.** Stock amqtt deletes the old session of a client id and
  registers the new one *before* checking credentials, so a failed login with someone's client id
  cut them off (and leaked the rejected session). Here a refused client touches nothing; an
  accepted one takes over the old connection of its client id, which is closed.
- **Keep-alive enforced.** A connection silent for ``grace`` x its keep-alive is closed, so dead
  clients go offline (stock amqtt ignored the read timeout).
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
"""

from __future__ import annotations

import asyncio
import logging
import math
from functools import partial
from typing import Any, Protocol

from amqtt.broker import Broker, Server
from amqtt.contexts import ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.mqtt.puback import PubackPacket
from amqtt.mqtt.publish import PublishPacket
from amqtt.session import Session
from amqtt.utils import gen_client_id

from broker.compat import check_amqtt_version

__all__ = ["Gate", "MqchatBroker"]

log = logging.getLogger(__name__)


def _close_transport(writer: Any) -> None:
    """Close the socket under an amqtt writer adapter, whatever state the adapter is in."""
    stream = getattr(writer, "_writer", None)
    if isinstance(stream, asyncio.StreamWriter) and not stream.is_closing():
        stream.close()


_REFUSED = 0x80


class Gate(Protocol):
    def accept(self, user: str | None, topic: str, data: bytes | bytearray) -> None: ...


class _Handler(BrokerProtocolHandler):
    """amqtt's broker-side protocol handler with keep-alive enforcement and ingest before PUBACK."""

    gate: Gate | None = None
    _closing: asyncio.Future[None] | None = None

    def handle_read_timeout(self) -> None:
        if self.session is not None:
            log.info("%s silent past its keep-alive: closing", self.session.client_id)
        self._closing = asyncio.ensure_future(self.handle_connection_closed())

    async def handle_publish(self, publish_packet: PublishPacket) -> None:
        topic, data, qos = publish_packet.topic_name, publish_packet.data, publish_packet.qos
        if topic is None or data is None or self.session is None:
            return
        if self.gate is not None:
            try:
                self.gate.accept(self.session.username, topic, data)
            except Exception:
                log.exception("ingest failed on a PUBLISH of %s", self.session.client_id)
        if qos == QOS_0:
            return
        if qos == QOS_1:
            assert publish_packet.variable_header is not None
            await self._send_packet(PubackPacket.build(publish_packet.variable_header.packet_id))
            return
        # QoS 2 keeps amqtt's flow for its acknowledgements; the ACL plugin stops it from going
        # anywhere but the sender's own outbox, which nobody subscribes to.
        await super().handle_publish(publish_packet)


class MqchatBroker(Broker):
    def __init__(
        self,
        config: dict[str, Any],
        *,
        gate: Gate,
        keepalive_grace: float = 1.5,
        max_connections_per_user: int = 0,
        max_inflight: int = 1000,
        **kwargs: Any,
    ) -> None:
        check_amqtt_version()
        super().__init__(config, **kwargs)
        self._gate = gate
        self._keepalive_grace = keepalive_grace
        self._connections: set[asyncio.Task[Any]] = set()
        self._max_per_user = max_connections_per_user
        self._max_inflight = max_inflight
        self._wildcards: set[str] = set()
        self._filters_of: dict[int, set[str]] = {}
        self._inflight: dict[int, int] = {}
        self._clients_of: dict[str, set[str]] = {}

    # -------------------------------------------------------------- publishing from the server
    def publish_nowait(self, topic: str, data: bytes, qos: int = QOS_1) -> None:
        """Route a server message to the topic's subscribers, in call order (event loop only)."""
        self._broadcast_queue.put_nowait({"session": None, "topic": topic, "data": data, "qos": qos})

    def bound_port(self, listener: str) -> int | None:
        server: Server | None = self._servers.get(listener)
        if server is None or server.instance is None:
            return None
        sockets = list(getattr(server.instance, "sockets", ()) or ())
        return int(sockets[0].getsockname()[1]) if sockets else None

    def connected_sessions(self) -> list[Session]:
        return [s for s, _ in self._sessions.values() if s.transitions.is_connected()]

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
        pending = [t for t in self._connections if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, session = await _Handler.init_from_connect(reader, writer, self.plugins_manager)
        except MQTTError as exc:
            log.info("invalid CONNECT from %s:%s: %s", remote_address, remote_port, exc)
            await writer.close()
            raise
        except (AMQTTError, NoDataError) as exc:
            log.info("no CONNECT from %s:%s: %s", remote_address, remote_port, exc)
            await writer.close()  # stock amqtt left this transport open
            raise AMQTTError(exc) from exc
        handler.gate = self._gate
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
        others = self._clients_of.get(user, set()) - {client_id}
        if self._max_per_user and len(others) >= self._max_per_user:
            log.warning("refused %s: %s already has %d connections", client_id, user, len(others))
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
            await self.plugins_manager.fire_event(
                BrokerEvents.CLIENT_CONNECTED, client_id=client_id, client_session=client_session
            )
            await handler.start()
            await self._client_message_loop(client_session, handler)
        finally:
            current = self._sessions.get(client_id)
            if current is None or current[0] is client_session:  # not taken over by a newer one
                clients = self._clients_of.get(user)
                if clients is not None:
                    clients.discard(client_id)
                    if not clients:
                        del self._clients_of[user]

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        try:
            return bool(await super()._authenticate(session, listener))
        except Exception:
            log.exception("authentication of %s failed with an error; refusing", session.client_id)
            return False

    async def _take_over(self, client_id: str) -> None:
        """Close the previous connection of ``client_id``, if any, and forget its session."""
        previous = self._sessions.pop(client_id, None)
        if previous is None:
            return
        old_session, old_handler = previous
        if old_session.transitions.is_connected():
            log.info("%s connected again: closing its previous connection", client_id)
            await old_handler.handle_connection_closed()
        await self._del_all_subscriptions(old_session)
        old_session.clear_queues()

    async def _publish_retained_messages_for_subscription(
        self, subscription: tuple[str, int], session: Session
    ) -> None:
        topic_filter = subscription[0]
        if not any(s is session for s, _ in self._subscriptions.get(topic_filter, ())):
            return  # only to sessions that really subscribed to this filter
        await super()._publish_retained_messages_for_subscription(subscription, session)

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
        topic, data = broadcast["topic"], broadcast["data"]
        # Subscriptions were checked by the ACL when they were made, and every topic a granted
        # filter matches is one the subscriber may read, so no per-message RECEIVE check is needed.
        for session, sub_qos in self._subscribers(topic):
            if session.transitions.state != "connected":
                continue
            handler = self._get_handler(session)
            if handler is None:
                continue
            key = id(session)
            inflight = self._inflight.get(key, 0)
            if inflight >= self._max_inflight:
                log.warning("%s has %d deliveries unacknowledged: closing it", session.client_id, inflight)
                self._inflight[key] = 0
                running_tasks.append(asyncio.ensure_future(handler.handle_connection_closed()))
                continue
            self._inflight[key] = inflight + 1
            task = asyncio.ensure_future(
                handler.mqtt_publish(topic, data, broadcast.get("qos", sub_qos), retain=False)
            )
            task.add_done_callback(partial(self._delivered, key))
            running_tasks.append(task)

    def _delivered(self, key: int, _task: asyncio.Future[Any]) -> None:
        count = self._inflight.get(key)
        if count:
            self._inflight[key] = count - 1
