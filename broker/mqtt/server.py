"""The embedded broker: amqtt's Broker with the fixes mqchat needs (see broker/mqtt/compat.py for the pin).

What changes from stock amqtt 0.12.1, and why:

- **Ingest before PUBACK, keep-alive enforced, lighter connections**: see broker/mqtt/handler.py and
  broker/mqtt/connection_state.py (an acknowledged command is already in the ingest queue, which a clean
  stop drains).
- **No MQTT session state in the broker.** amqtt's offline queues and session persistence lose and
  replay messages, and the database is the source of truth (clients sync). A persistent session
  (clean session 0, or an MQTT 5 Session Expiry Interval) is kept in the store instead: the node's
  ``SessionKeeper`` (broker/mqtt/persistence.py) answers ``resume_session`` before CONNACK, and the
  broker restores the inbox subscription and hands the inbox deliveries to the session's
  ``Resumable``, which replays what the device missed from the store.
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
  only wildcard filters are matched, and each session's filters are indexed for its disconnect
  (``SubscriptionIndex``, broker/mqtt/subscriptions.py).
- **Bounded deliveries per connection.** A client that stops reading or acknowledging made the
  broker pile up publish tasks without end; past ``max_inflight`` unacknowledged deliveries the
  connection is closed, and the client catches up by sync when it reconnects.
- **A TCP (or TLS) connection is one asyncio protocol** (broker/mqtt/protocol.py), not asyncio's
  streams under amqtt's adapters, and has a task only while it connects and while it ends: stock
  amqtt's task waited for the disconnect for the connection's whole life (``_client_connected``).
- **Every connection's socket is closed when its handler ends**, and a stop waits for the handlers.
  Stock amqtt's writer ``close()`` marks itself closed before draining, so a peer that hung up
  first left the socket open for good.
- **A listen backlog for connect storms.** amqtt listened with asyncio's default backlog of 100: when
  hundreds of clients connect at once the kernel drops their SYNs, and each waits a second or more
  to retry. Listeners here queue up to ``LISTEN_BACKLOG`` connections (within the kernel's limit).
- **Fewer writes.** Deliveries and PUBACKs go out through one ``WriteScheduler``
  (broker/mqtt/writes.py): a connection's packets of a batch (``corked``) in one system call.
- **mqchat's own plugins are passed in and called directly.** Stock amqtt builds plugins from
  dotted names in its config and runs every plugin call of the connect path as a task of its own
  (authentication and topic filtering gathered, connect and disconnect events fired and forgotten).
  mqchat's plugins (``broker/mqtt/plugins``) are built by the node and given as ``plugins``; they
  are awaited in place, in that order, with stock's verdicts (``_authenticate``,
  ``_topic_filtering``). Any plugin named in amqtt's config still goes through amqtt's manager.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, cast

import websockets
from amqtt.broker import Broker, BrokerContext, Server
from amqtt.contexts import Action, ListenerConfig, ListenerType
from amqtt.errors import AMQTTError, BrokerError, MQTTError, NoDataError
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_0, QOS_1
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.plugins.manager import PluginManager
from amqtt.session import Session
from amqtt.utils import gen_client_id

from broker.members import add_member, count_members, has_member, remove_member
from broker.mqtt.compat import check_amqtt_version
from broker.mqtt.connection_state import ConnectionState
from broker.mqtt.handler import Gate, MqchatHandler
from broker.mqtt.handler5 import Mqtt5Handler, open_connection
from broker.mqtt.keepalive import KeepAliveWheel
from broker.mqtt.mqtt5 import Reason
from broker.mqtt.persistence import SessionKeeper
from broker.mqtt.plugins.base import Authenticator, BrokerPlugin, TopicFilter
from broker.mqtt.properties import PublishProps
from broker.mqtt.protocol import MqttProtocol, serve
from broker.mqtt.subscriptions import SubscriptionIndex, is_wildcard
from broker.mqtt.writes import WriteScheduler

__all__ = ["LISTEN_BACKLOG", "Gate", "MqchatBroker"]

log = logging.getLogger(__name__)


def _close_transport(writer: Any) -> None:
    """Close the socket under a connection's writer, whatever state the writer is in."""
    if isinstance(writer, MqttProtocol):
        writer.close_transport()
        return
    stream = getattr(writer, "_writer", None)
    if isinstance(stream, asyncio.StreamWriter) and not stream.is_closing():
        stream.close()


_REFUSED = 0x80

LISTEN_BACKLOG = 4096
"""Connections a listener queues before accepting them (the kernel caps it at its somaxconn)."""

Hook = Callable[[Session], Awaitable[None]]


async def _amqtt_verdicts(plugins: list[Any], method: str, **kwargs: Any) -> list[Any]:
    """What plugins loaded by amqtt answer, gathered as amqtt gathers them (the node has none)."""
    if not plugins:
        return []
    return list((await PluginManager._map_plugin_method(plugins, method, kwargs)).values())


def _hooks(plugins: Sequence[BrokerPlugin], name: str) -> list[Hook]:
    """The plugins' ``name`` hooks, where a plugin overrides the no-op (the rest cost nothing)."""
    default = getattr(BrokerPlugin, name)
    return [getattr(p, name) for p in plugins if getattr(type(p), name) is not default]


def _connected(session: Session) -> bool:
    state = getattr(session, "_state", None)  # a ConnectionState's, without building its view
    return bool(session.transitions.is_connected()) if state is None else state == "connected"


class _EndOnDisconnect:
    """A detached connection's disconnect waiter (see ``MqchatBroker._client_connected``).

    amqtt's handler resolves its ``_disconnect_waiter`` on a DISCONNECT, a second CONNECT or its
    stop, with ``done()`` and ``set_result()`` only (``tests/unit/test_amqtt_pin.py`` pins that);
    this one starts the connection's end there and then. A future with a done callback in its place
    held ~0.4 KiB per idle connection (the future, a ``partial``, its arguments, a context)."""

    __slots__ = ("_broker", "_handler", "_listener", "_session")

    def __init__(
        self, broker: MqchatBroker, session: Session, handler: BrokerProtocolHandler, listener: str
    ) -> None:
        self._broker: MqchatBroker | None = broker
        self._session = session
        self._handler = handler
        self._listener = listener

    def done(self) -> bool:
        return self._broker is None

    def set_result(self, _result: object) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            broker._ending(self._session, self._handler, self._listener)


class MqchatBroker(Broker):
    def __init__(
        self,
        config: dict[str, Any],
        *,
        gate: Gate,
        plugins: Sequence[BrokerPlugin] = (),
        keepalive_grace: float = 1.5,
        max_connections_per_user: int = 0,
        max_inflight: int = 1000,
        max_packet: int | None = None,
        connect_timeout: float | None = None,
        sessions: SessionKeeper | None = None,
        **kwargs: Any,
    ) -> None:
        """``plugins``: mqchat's, called in place in this order (see broker/mqtt/plugins/base.py);
        ``config``: amqtt's, whose own ``plugins`` (none in the node) amqtt loads and calls;
        ``connect_timeout``: seconds a new connection has to send its CONNECT (None: for ever, as
        stock amqtt waits); ``sessions``: the keeper of persistent sessions (None: every connection
        starts clean, CONNACK session present 0)."""
        check_amqtt_version()
        super().__init__(config, **kwargs)
        self._gate = gate
        self._keeper = sessions
        self._max_packet = max_packet
        self._connect_timeout = connect_timeout
        self._keepalive_grace = keepalive_grace
        self._connections: set[asyncio.Task[Any]] = set()
        self._max_per_user = max_connections_per_user
        self._max_inflight = max_inflight
        self._index = SubscriptionIndex(self._subscriptions, matches=self._matches)
        self._inflight: dict[int, int] = {}
        """Each connected session's deliveries not yet done (by ``id(session)``)."""
        self._done_of: dict[int, Callable[[], None]] = {}
        """Each session's ``done`` of a delivery, which counts it off ``_inflight`` (made once)."""
        self._clients_of: dict[str, str | set[str]] = {}
        """Each user's connected client ids (one: the id itself; broker/members.py)."""
        self._publishing: set[asyncio.Task[Any]] = set()
        self.writes = WriteScheduler()
        self.keepalives = KeepAliveWheel()
        """The keep-alive deadlines of every connection, on one timer (broker/mqtt/keepalive.py)."""
        """When each connection's deliveries and PUBACKs are written (its handler writes through it)."""
        self._plugins = tuple(plugins)
        self._authenticators = [p for p in self._plugins if isinstance(p, Authenticator)]
        self._topic_filters = [p for p in self._plugins if isinstance(p, TopicFilter)]
        self._on_connected = _hooks(self._plugins, "client_connected")
        self._on_disconnected = _hooks(self._plugins, "client_disconnected")
        context = BrokerContext(self)
        for plugin in self._plugins:
            plugin.attach(context)

    # -------------------------------------------------------------- mqchat's plugins, called in place
    async def _fire(self, hooks: list[Hook], event: BrokerEvents, session: Session) -> None:
        """A connect or disconnect to the plugins: mqchat's awaited here (a failure is logged), then
        amqtt's as amqtt does."""
        for hook in hooks:
            try:
                await hook(session)
            except Exception:
                log.exception("the %s hook %s failed", event, hook)
        await self.plugins_manager.fire_event(event, client_id=session.client_id, client_session=session)

    async def _close_plugins(self) -> None:
        for plugin in self._plugins:
            try:
                await plugin.close()
            except Exception:
                log.exception("closing the plugin %s failed", plugin)

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
            return await serve(  # a protocol per connection, no streams (broker/mqtt/protocol.py)
                partial(self._tcp_connected, listener_name),
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
    def publish_nowait(
        self, topic: str, data: bytes, qos: int = QOS_1, props: PublishProps | None = None
    ) -> None:
        """Route a server message to the topic's subscribers now, in call order (event loop only).

        Stock amqtt's broadcast queue cost a queue hop, a task and an ``asyncio.wait`` per message;
        here each subscriber's delivery task starts at once, and the task ends itself when done.
        ``props``: MQTT 5 properties, sent to MQTT 5 subscribers (3.1.1 has no room for them).
        """
        self._fan_out(topic, data, qos, self._track, props)

    def corked(self) -> AbstractContextManager[None]:
        """Deliveries made in this block go out at its end, a connection's in one write
        (``WriteScheduler.corked``)."""
        return self.writes.corked()

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
    async def _tcp_connected(self, listener_name: str, connection: MqttProtocol) -> None:
        """A TCP (or TLS) connection: its connect sequence, in the task the connection started; the
        task ends once the connection is up (see ``_client_connected``)."""
        await self._client_connected(listener_name, connection, connection, detach=True)

    async def _client_connected(
        self, listener_name: str, reader: Any, writer: Any, *, detach: bool = False
    ) -> None:
        """A connection, from its first byte to its end: stock amqtt's ``_client_connected``, with
        the task tracked for ``shutdown`` and the socket always closed at the end.

        ``detach``: the connection's end need not be awaited here (TCP: its bytes come by callbacks,
        broker/mqtt/protocol.py). This task then ends once the connection is up, and its end runs as
        a task of its own (``_ending``): an idle connection holds no task or frame. Else
        (WebSocket, whose library closes the socket when this returns) it is awaited here.
        """
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        detached = False
        try:
            server = self._servers.get(listener_name)
            if not server:
                raise BrokerError(f"Invalid listener name '{listener_name}'")
            await server.acquire_connection()
            remote_info = writer.get_peer_info()
            if remote_info is None:
                log.warning("Remote info could not be retrieved from peer info")
                server.release_connection()
                return
            remote_address, remote_port = remote_info
            log.debug("Connection from %s:%s on listener %r", remote_address, remote_port, listener_name)
            try:
                handler, client_session = await self._initialize_client_session(
                    reader, writer, remote_address, remote_port
                )
            except (AMQTTError, MQTTError, NoDataError) as exc:
                log.warning("Failed to initialize client session: %s", exc)
                server.release_connection()
                return
            try:
                detached = await self._handle_client_session(
                    reader, writer, client_session, handler, server, listener_name, detach=detach
                )
            except (AMQTTError, MQTTError, NoDataError) as exc:
                log.warning("Error while handling client session: %s", exc)
            finally:
                if not detached:
                    server.release_connection()
        finally:
            if task is not None:
                self._connections.discard(task)
            if not detached:
                _close_transport(writer)

    async def shutdown(self) -> None:
        await super().shutdown()  # amqtt's plugins are closed at its end
        await self._close_plugins()
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
            # a deadline on this task, not ``wait_for``'s task, future and timer more per connection
            async with asyncio.timeout(self._connect_timeout):
                handler, session = await open_connection(reader, writer, self.plugins_manager)
        except TimeoutError as exc:
            # stock amqtt waits for ever, and each such socket holds one of the listener's
            # ``max_connections`` slots: enough of them lock every user out
            log.info("no CONNECT from %s:%s within %ss", remote_address, remote_port, self._connect_timeout)
            await writer.close()
            raise AMQTTError("no CONNECT in time") from exc
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
        handler.writes = self.writes
        handler.keepalives = self.keepalives
        session.clean_session = True
        session.parent = 0
        session.will_flag = False
        session.will_topic = None
        session.will_message = None
        if not session.client_id:
            session.client_id = gen_client_id()
            if isinstance(session, ConnectionState):
                session.assigned_client_id = True
        if isinstance(handler, Mqtt5Handler):
            handler.keep_alive_announced = session.keep_alive
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
        *,
        detach: bool = False,
    ) -> bool:
        """Log the client in and serve it; True when the connection is up and its end is left to
        the disconnect (``detach``: see ``_client_connected``), False when it is over."""
        authenticated = await self._authenticate(client_session, self.listeners_config[listener_name])
        client_session.password = None  # checked: the secret is not kept for the connection's life
        handler.attach(client_session, reader, writer)
        client_id, user = client_session.client_id, client_session.username or ""
        # counted, not copied: a copy of the set lived as long as the connection (O(N²) memory with
        # one login for every client, as anonymous clients have)
        clients = self._clients_of
        others = count_members(clients, user) - has_member(clients, user, client_id or "")
        refusal = getattr(client_session, "refusal", None) or Reason.NOT_AUTHORIZED
        if self._max_per_user and others >= self._max_per_user:
            log.warning("refused %s: %s already has %d connections", client_id, user, others)
            authenticated, refusal = False, Reason.QUOTA_EXCEEDED
        if client_id is None:
            authenticated, refusal = False, Reason.CLIENT_ID_NOT_VALID
        if not authenticated or client_id is None or not isinstance(handler, MqchatHandler):
            if isinstance(handler, MqchatHandler):
                await handler.send_connack(refusal, False)
            await writer.close()
            return False
        await self._take_over(client_id)
        client_session.transitions.connect()
        self._sessions[client_id] = (client_session, handler)
        add_member(self._clients_of, user, client_id)
        detached = False
        try:
            present = isinstance(client_session, ConnectionState) and await self.resume_session(
                client_session
            )
            await handler.send_connack(0, present)
            await self._fire(self._on_connected, BrokerEvents.CLIENT_CONNECTED, client_session)
            await handler.start()
            await self._restore(client_session, handler)
            waiter = getattr(handler, "_disconnect_waiter", None)
            if detach and isinstance(waiter, asyncio.Future) and not waiter.done():
                ending = _EndOnDisconnect(self, client_session, handler, listener_name)
                handler._disconnect_waiter = cast("asyncio.Future[Any]", ending)  # as much as amqtt uses
                detached = True
                return True
            await self._client_message_loop(client_session, handler)  # (one frame: see there)
        finally:
            if not detached:
                self._forget(client_session)
        return False

    def _ending(self, session: Session, handler: BrokerProtocolHandler, listener_name: str) -> None:
        """A detached connection's disconnect came: its end, as a task (tracked for ``shutdown``)."""
        task = asyncio.ensure_future(self._disconnected(session, handler))
        self._connections.add(task)
        task.add_done_callback(partial(self._ended, session, handler.writer, listener_name))

    def _ended(self, session: Session, writer: Any, listener_name: str, task: asyncio.Task[Any]) -> None:
        """What ``_client_connected`` does when the connection ends (also when its end was cancelled
        by a stop before it ran)."""
        self._connections.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("Error while handling client session: %s", task.exception())
        self._forget(session)
        server = self._servers.get(listener_name)
        if server is not None:
            server.release_connection()
        _close_transport(writer)

    def _forget(self, session: Session) -> None:
        """The connection of ``session`` ended: its session goes, unless a newer connection of its
        client id took over."""
        resumable = getattr(session, "resumable", None)
        if resumable is not None:
            resumable.ended()
        client_id = session.client_id or ""
        current = self._sessions.get(client_id)
        if current is None or current[0] is session:  # not taken over by a newer one
            if current is not None:  # a clean session ends with its connection
                del self._sessions[client_id]
                self._drop_subscriptions(session)
            remove_member(self._clients_of, session.username or "", client_id)

    # -------------------------------------------------------------- persistent sessions (the store's)
    async def resume_session(self, state: Session) -> bool:
        """CONNACK's session-present flag: whether the keeper resumes a stored session of this
        connection (False without a keeper; a keeper that fails resumes nothing)."""
        keeper = self._keeper
        if keeper is None or not isinstance(state, ConnectionState):
            return False
        try:
            return await keeper.resume(state)
        except Exception:
            log.exception("%s: its persistent session could not be resumed", state.client_id)
            state.resumable = None
            return False

    async def _restore(self, session: Session, handler: BrokerProtocolHandler) -> None:
        """A persistent session's inbox subscription, made without a SUBSCRIBE (the ACL still
        asked), then its replay started."""
        resumable = getattr(session, "resumable", None)
        if resumable is None or not isinstance(handler, MqchatHandler):
            return
        topic = resumable.topic
        if await self.add_subscription((topic, QOS_1), session) == _REFUSED:
            log.warning("%s: its inbox %s refused by the ACL; not resumed", session.client_id, topic)
            session.resumable = None
            resumable.ended()
            return

        def send(
            data: bytes,
            *,
            dup: bool,
            acked: Callable[[], None],
            done: Callable[[], None],
            props: PublishProps | None = None,
        ) -> bool:
            return handler.publish_tracked(topic, data, dup=dup, acked=acked, done=done, props=props)

        resumable.start(send)

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        """As stock: accepted when every plugin that answers True or False answers True, and at least
        one answers; a plugin that fails refuses the login."""
        try:
            verdicts = [await p.authenticate(session) for p in self._authenticators]
            others = self.plugins_manager._auth_plugins
            verdicts += await _amqtt_verdicts(others, "authenticate", session=session)
        except Exception:
            log.exception("authentication of %s failed with an error; refusing", session.client_id)
            if isinstance(session, ConnectionState):
                session.refusal = Reason.SERVER_BUSY
            return False
        answers = [v for v in verdicts if v is not None]
        return bool(answers) and all(answers)

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        """As stock: allowed when every plugin answers truthy. mqchat's plugins are always asked;
        amqtt's when its topic filtering is on (as stock: else they allow everything)."""
        verdicts = [await p.topic_filtering(session, topic, action) for p in self._topic_filters]
        manager = self.plugins_manager
        if manager.is_topic_filtering_enabled():
            others = manager._topic_plugins
            verdicts += await _amqtt_verdicts(
                others, "topic_filtering", session=session, topic=topic, action=action
            )
        return all(verdicts)

    async def disconnect(self, client_id: str) -> bool:
        """Close the connection of ``client_id`` now, if it has one here (a signed-out device)."""
        current = self._sessions.get(client_id)
        if current is None or not _connected(current[0]):
            return False
        log.info("%s: closing its connection (signed out)", client_id)
        handler = current[1]
        if isinstance(handler, MqchatHandler):
            await handler.close_with(Reason.ADMINISTRATIVE_ACTION)
        else:
            await handler.handle_connection_closed()
        return True

    def subscribers_of(self, topic_filter: str) -> list[Session]:
        """The sessions subscribed to exactly ``topic_filter`` (a presence topic), connected or not."""
        return [session for session, _qos in self._subscriptions.get(topic_filter, ())]

    def cut_subscription(self, topic_filter: str, session: Session) -> None:
        """Drop ``session``'s subscription to ``topic_filter`` as an UNSUBSCRIBE would, without
        telling the client (MQTT has no server-side unsubscribe): nothing more of it reaches the
        session, and subscribing again asks the ACL again (privacy: see broker/presence_privacy.py)."""
        self._del_subscription(topic_filter, session)
        log.info("%s: subscription to %s cut", session.client_id, topic_filter)

    async def _take_over(self, client_id: str) -> None:
        """Close the previous connection of ``client_id``, if any, and forget its session."""
        previous = self._sessions.pop(client_id, None)
        if previous is None:
            return
        old_session, old_handler = previous
        if _connected(old_session):
            log.info("%s connected again: closing its previous connection", client_id)
            if isinstance(old_handler, MqchatHandler):
                await old_handler.close_with(Reason.SESSION_TAKEN_OVER)
            else:
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
        waiter = getattr(handler, "_disconnect_waiter", None)  # wait_disconnect's, awaited here: a
        try:  # frame less for the life of every connection
            if waiter is not None:
                await waiter
        except asyncio.CancelledError:
            return  # as stock: the broker is stopping and cleans up itself
        await self._disconnected(client_session, handler)

    async def _disconnected(self, client_session: Session, handler: BrokerProtocolHandler) -> None:
        """What follows the disconnect (stock's ``_client_message_loop`` after its wait)."""
        await self._stop_handler(handler)
        client_session.transitions.disconnect()
        await self._fire(self._on_disconnected, BrokerEvents.CLIENT_DISCONNECTED, client_session)

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
        codes: list[int] = []
        for topic_filter in topics:
            deleted = self._del_subscription(topic_filter, session)
            codes.append(Reason.SUCCESS if deleted else Reason.NO_SUBSCRIPTION_EXISTED)
            await self.plugins_manager.fire_event(
                BrokerEvents.CLIENT_UNSUBSCRIBED, client_id=session.client_id, topic=topic_filter
            )
        await handler.acknowledge_unsubscribe(packet_id, codes)

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
        if is_wildcard(topic_filter):
            retained = [r for t, r in self._retained_messages.items() if self._matches(t, topic_filter)]
        else:
            exact = self._retained_messages.get(topic_filter)
            if exact is None:  # an inbox: nothing retained, and no gather to wait on
                return
            retained = [exact]
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
            self._index.added(subscription[0], session)
        return code

    def _del_subscription(self, a_filter: str, session: Session) -> int:
        deleted = int(super()._del_subscription(a_filter, session))
        self._index.removed(a_filter, session)
        return deleted

    def drop_subscriptions(self, user: str, topic: str) -> int:
        """End every subscription of ``user``'s sessions to exactly ``topic`` (a block cuts the
        blocked user off the blocker's presence): the client is not told, it just hears no more.
        Returns how many were ended."""
        sessions = [s for s, _qos in self._index.subscribers(topic) if s.username == user]
        for session in sessions:
            self._del_subscription(topic, session)
        return len(sessions)

    async def _del_all_subscriptions(self, session: Session) -> None:
        self._drop_subscriptions(session)

    def _drop_subscriptions(self, session: Session) -> None:
        for topic_filter in self._index.forget(session):
            self._del_subscription(topic_filter, session)
        self._inflight.pop(id(session), None)
        self._done_of.pop(id(session), None)

    async def _run_broadcast(self, running_tasks: Any) -> None:
        broadcast = await self._broadcast_queue.get()
        self._fan_out(broadcast["topic"], broadcast["data"], broadcast.get("qos"), running_tasks.append)

    def _fan_out(
        self,
        topic: str,
        data: bytes,
        qos: int | None,
        spawned: Callable[[asyncio.Task[Any]], None],
        props: PublishProps | None = None,
    ) -> None:
        """Start one delivery task per connected subscriber (``qos`` None: the subscription's)."""
        # Subscriptions were checked by the ACL when they were made, and every topic a granted
        # filter matches is one the subscriber may read, so no per-message RECEIVE check is needed.
        # one ``done`` per session, made once (``_done_of``): this runs for every message relayed
        inflights, done_of = self._inflight, self._done_of
        for session, sub_qos in self._index.subscribers(topic):
            if not _connected(session):
                continue
            handler = self._get_handler(session)
            if handler is None:
                continue
            resumable = getattr(session, "resumable", None)
            if resumable is not None and resumable.topic == topic:
                resumable.offer(data, props)  # the session's order, dedupe and acknowledgements
                continue
            key = id(session)
            inflight = inflights.get(key, 0)
            if inflight >= self._max_inflight:
                log.warning("%s has %d deliveries unacknowledged: closing it", session.client_id, inflight)
                self._inflight[key] = 0
                closing = (
                    handler.close_with(Reason.QUOTA_EXCEEDED)
                    if isinstance(handler, MqchatHandler)
                    else handler.handle_connection_closed()
                )
                spawned(asyncio.ensure_future(closing))
                continue
            inflights[key] = inflight + 1
            qos_out = sub_qos if qos is None else qos
            if qos_out in (QOS_0, QOS_1) and isinstance(handler, MqchatHandler):
                done = done_of.get(key)
                if done is None:
                    done = done_of[key] = partial(self._delivered, key, None)
                if handler.publish_now(topic, data, done, qos_out, props):
                    continue
            task = asyncio.ensure_future(handler.mqtt_publish(topic, data, qos_out, retain=False))
            task.add_done_callback(partial(self._delivered, key))
            spawned(task)

    def _delivered(self, key: int, _task: asyncio.Future[Any] | None) -> None:
        count = self._inflight.get(key)
        if count:
            self._inflight[key] = count - 1
