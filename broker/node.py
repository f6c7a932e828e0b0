"""A node: the embedded broker with its plugins, ingest, its command runner, and deliveries.

With the in-process job queue (``memory://``, the single-node default) the node also runs the
workers, so one process is the whole system. The runner (``workers/runners/``, picked from the
settings) runs or enqueues the commands ingest accepted; every event for this node's clients
comes back through one callback, ``_deliver``, whoever made it::

    async with Node(settings) as node:
        print(node.mqtt_port)
        await node.wait_closed()
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING, Any

import dramatiq
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from broker.admin_http import AdminApi
from broker.ingest import Ingest
from broker.media_http import MediaHttp
from broker.mqtt.listeners import amqtt_config
from broker.mqtt.plugins import AclPlugin, AuthPlugin, BrokerPlugin, PresencePlugin
from broker.mqtt.server import MqchatBroker
from broker.persistent import PersistentSessions
from broker.presence_privacy import PresencePrivacyChanges
from broker.replies import publish_props
from broker.throttle import LoginThrottle, RateLimiter
from broker.webapp import add_web_routes
from client_sdk.contract import Topics
from config.extras import check_extras
from config.settings import Settings, SettingsError
from workers.answers import PublishOptions
from workers.credentials import LoginCheck
from workers.credentials_jwt import JwtConfigError, JwtVerifier
from workers.events import encode
from workers.expiry import ExpirySweeper
from workers.jobs import (
    MEDIA_QUEUE,
    declare_node_actors,
    make_queue_broker,
    node_queue,
    send_presence,
    send_privacy_changed,
    send_sign_out,
    send_to_node,
)
from workers.locator import Locator, open_locator
from workers.media import Storage, storage_for
from workers.media.cleanup import send_cleanup_job
from workers.media.job import send_media_job
from workers.metrics import observe_deliveries, watch_job_queues, watch_node
from workers.moderation import ADMIN, delete_for_everyone
from workers.retention import Pruner
from workers.routing import CONTROL_QOS, PRESENCE_CUT, NodeItem, Router
from workers.runners import CommandRunner, RunnerError, runner_for, shares_store
from workers.runners.child import ChildRunner
from workers.service import Assembly, assemble
from workers.stores import Deletion, Store, open_store

if TYPE_CHECKING:  # only with several nodes: the redis extra, imported where locator.url chooses it
    from workers.locator.redis import RedisLocator

__all__ = ["Node", "NodeError"]

log = logging.getLogger(__name__)


class NodeError(Exception):
    """The node could not start (a port is taken, a setting is unusable...)."""


def max_packet_bytes(max_payload: int) -> int:
    """The largest packet a client may announce: room for a payload well over the limit (answered
    ``too_large``), but no buffering of hundreds of megabytes (the connection is closed)."""
    return max(4 * max_payload, 1024 * 1024)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_free(host: str, port: int | None, flag: str) -> None:
    """Fail with one clear line when a port is taken (the broker would log a traceback first). It
    names the ``mqchat run``/``mqchat node`` flag that picks another: a taken 1883 is common."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NodeError(
                f"cannot listen on {_bind(host, port)}: {exc.strerror or exc}"
                f" (another port: {flag} {port + 1 if port < 65535 else 1024})"
            ) from None


def _preflight(settings: Settings) -> None:
    """What can be checked before anything opens: each fails with one line that says what to do."""
    try:
        check_extras(settings)
    except SettingsError as exc:
        raise NodeError(str(exc)) from None
    _check_free(settings.broker.host, settings.broker.mqtt_port, "--port")
    _check_free(settings.broker.host, settings.broker.ws_port, "--ws-port")
    _check_free(settings.broker.host, settings.media.http_port, "--http-port")
    if not shares_store(settings.store_url):
        raise NodeError(
            "store.url: an in-memory SQLite database is one per connection, too little for a node;"
            " use a file (sqlite:///path/to/mqchat.db)"
        )


class Node:
    """One node. An async context manager: reusable after stop, not reentrant."""

    def __init__(self, settings: Settings, *, run_workers: bool = True) -> None:
        """``run_workers=False`` is ``mqchat node``: broker, ingest and deliveries only."""
        self.settings = settings
        self._run_workers = run_workers
        self._cluster_task: asyncio.Task[None] | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self._expiry: ExpirySweeper | None = None
        """The sweeper of disappearing messages, where this node runs the workers."""
        self._retention_task: asyncio.Task[None] | None = None
        self._pruner: Pruner | None = None
        self._retention_calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqchat-retention")
        self._cluster_calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqchat-cluster")
        self.node_id = settings.node_id
        self.topics = Topics(settings.topics.prefix, settings.topics.presence_prefix)
        self._state = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._closed: asyncio.Event | None = None
        self._workers: list[dramatiq.Worker] = []
        self.store: Store | None = None
        self.locator: Locator | None = None
        self._cluster: RedisLocator | None = None
        """The locator shared with other nodes (None: a single node)."""
        self.broker: MqchatBroker | None = None
        self.ingest: Ingest | None = None
        self.runner: CommandRunner | None = None
        self.presence: PresencePlugin | None = None
        self.sessions: PersistentSessions | None = None
        """Persistent MQTT sessions, kept in the store (see broker/persistent.py)."""
        self.privacy: PresencePrivacyChanges | None = None
        """Applies a user's privacy change to presence on this node (see broker/presence_privacy.py)."""
        self._acl: AclPlugin | None = None
        self.queue_broker: dramatiq.Broker | None = None
        self._local_queue = settings.workers.queue_url.startswith("memory:")
        """The job queue is this process's (``memory://``): this node runs the workers."""
        self.http: MediaHttp | None = None
        self._login_throttle: LoginThrottle | None = None
        self._logins: LoginCheck | None = None
        self._media_storage: Storage | None = None

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self._state == "running":
            raise RuntimeError("node already running")
        settings = self.settings
        _preflight(settings)
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._closed = asyncio.Event()
        if self._local_queue and not self._run_workers:
            raise NodeError(
                "a node without workers needs a shared job queue (workers.queue_url redis:// or amqp://)"
            )
        try:  # the JWKS is read and checked once, here
            jwt = await asyncio.to_thread(JwtVerifier.from_settings, settings.auth)
        except JwtConfigError as exc:
            raise NodeError(str(exc)) from None
        store = self.store = open_store(settings.store_url)
        await asyncio.to_thread(store.create_schema)
        # devices recorded connected here before a crash are not; nothing is connected yet
        await asyncio.to_thread(store.devices_offline_on, self.node_id)
        self._logins = LoginCheck(store, jwt=jwt, create_users=settings.auth.jwt_create_users)
        locator = self.locator = open_locator(settings)
        self._cluster = _cluster_of(settings, locator)
        queue_broker = self.queue_broker = make_queue_broker(settings.workers.queue_url)
        runner, workers = await self._start_runner(store, locator, queue_broker)
        ingest = self.ingest = Ingest(
            node_id=self.node_id,
            topics=self.topics,
            max_payload_bytes=settings.limits.max_payload_bytes,
            queue_size=settings.workers.ingest_queue,
            batch_size=settings.workers.ingest_batch,
            runner=runner,
            reply=self._reply,
            on_action=self._touch,
            rate=RateLimiter(rate=settings.limits.commands_per_second, burst=settings.limits.commands_burst),
            on_platform=self._platform,
            # the commands process takes each batch as it comes: the wait is ingest's (the
            # threaded runners wait themselves)
            linger=settings.workers.ingest_linger_ms / 1000 if isinstance(runner, ChildRunner) else 0.0,
            receipt_linger=settings.workers.receipt_linger_ms / 1000,
        )
        sessions = self.sessions = PersistentSessions(store, topics=self.topics, settings=settings.sessions)
        broker = self.broker = MqchatBroker(
            amqtt_config(settings.broker),
            gate=ingest,
            sessions=sessions,
            plugins=self._build_plugins(store, locator),
            keepalive_grace=settings.presence.keepalive_grace,
            max_connections_per_user=settings.limits.max_connections_per_user,
            max_inflight=settings.limits.max_inflight_per_connection,
            connect_timeout=settings.limits.connect_timeout,
            max_packet=max_packet_bytes(settings.limits.max_payload_bytes),
        )
        try:
            await broker.start()
        except Exception as exc:
            store.close()
            raise NodeError(f"cannot start the broker: {exc.__cause__ or exc}") from exc
        assert self.presence is not None
        await self.presence.restore(await asyncio.to_thread(store.last_seen_all))
        try:
            await self._start_media(store, queue_broker)
        except Exception as exc:
            await broker.shutdown()
            store.close()
            raise NodeError(f"cannot start the media endpoint: {exc}") from exc

        sessions.start()
        self._workers = workers
        await self._start_background(store, queue_broker, broker, ingest)
        self._state = "running"
        log.info("node %s running", self.node_id)

    async def _start_background(
        self, store: Store, queue_broker: dramatiq.Broker, broker: MqchatBroker, ingest: Ingest
    ) -> None:
        """What runs beside the connections: the workers, the expiry and retention sweeps, the
        metrics, the cluster heartbeat and the sign-out sweep."""
        settings = self.settings
        for worker in self._workers:
            worker.start()
        if self._expiry is not None:
            self._expiry.start()
        watch_node(
            connections=lambda: len(broker.connected_sessions()),
            online=lambda: self.presence.online_users if self.presence else 0,
            ingest=lambda: ingest.pending,
        )
        watch_job_queues(queue_broker, sorted(queue_broker.get_declared_queues()))
        if self._cluster is not None:
            await asyncio.to_thread(self._cluster.heartbeat, self.node_id)
            self._cluster_task = asyncio.create_task(self._cluster_loop(self._cluster))
        self._sweep_task = asyncio.create_task(self._sign_out_sweep(store))
        if self._run_workers:  # a node without workers leaves retention to ``mqchat worker``
            pruner = Pruner(
                store,
                settings.retention,
                holder=self.node_id,
                discard=partial(send_cleanup_job, queue_broker),
                sessions=store,
            )
            self._pruner = pruner
            self._retention_task = asyncio.create_task(self._retention_loop(pruner))

    async def stop(self) -> None:
        """Stop without losing an acknowledged command: drain ingest and the command runner."""
        if self._state != "running":
            return
        self._state = "stopping"
        assert self.broker is not None
        assert self.ingest is not None
        assert self.runner is not None
        assert self.queue_broker is not None
        assert self.store is not None
        if self._pruner is not None:
            self._pruner.close()
        for task in (self._cluster_task, self._sweep_task, self._retention_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._cluster_task = self._sweep_task = self._retention_task = None
        if self._pruner is not None:  # a sweep in progress ends after its current step
            await asyncio.to_thread(self._retention_calls.shutdown, wait=True)
            await asyncio.to_thread(self._pruner.release)
            self._retention_calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mqchat-retention")
            self._pruner = None
        if self.http is not None:
            await self.http.stop()  # no new uploads; those accepted are processed below
        try:
            # amqtt's reader loop can survive its cancellation (a WebSocket client still
            # connected): don't let that hang the stop, the ingest must still be drained
            await asyncio.wait_for(self.broker.shutdown(), timeout=20)
        except TimeoutError:
            log.error("the broker did not shut down within 20 s; going on with the stop")
        if self.sessions is not None:  # the devices' last acknowledged cursors
            try:
                await self.sessions.close()
            except Exception:
                log.exception("persistent sessions not all saved at stop")
        # every command accepted goes to the runner, which finishes them: stores them (a store
        # outage can make it slow) or puts them on the job queue
        await self.ingest.drain(60.0)
        await self.runner.drain(60.0)
        await self.runner.close()
        if self._local_queue:  # the media jobs this process runs
            try:
                await asyncio.to_thread(self.queue_broker.join, MEDIA_QUEUE, timeout=60_000)
            except Exception:
                log.exception("media uploads still queued at stop")
        if self._expiry is not None:
            await asyncio.to_thread(self._expiry.stop)
        for worker in self._workers:
            await asyncio.to_thread(worker.stop, 10_000)
        self._workers = []
        self.queue_broker.close()
        self.store.close()
        if self._media_storage is not None:
            self._media_storage.close()
        self._state = "stopped"
        if self._closed is not None:
            self._closed.set()
        log.info("node %s stopped", self.node_id)

    async def wait_closed(self) -> None:
        assert self._closed is not None
        await self._closed.wait()

    @property
    def running(self) -> bool:
        return self._state == "running"

    @property
    def http_port(self) -> int:
        """The port of the media endpoint (HTTP, or HTTPS with the broker's certificate)."""
        assert self.http is not None
        return self.http.port

    @property
    def mqtt_port(self) -> int:
        assert self.broker is not None
        port = self.broker.bound_port("default")
        assert port is not None
        return port

    @property
    def ws_port(self) -> int | None:
        return self.broker.bound_port("ws") if self.broker else None

    # ------------------------------------------------------------------ wiring
    async def _start_runner(
        self, store: Store, locator: Locator, queue_broker: dramatiq.Broker
    ) -> tuple[CommandRunner, list[dramatiq.Worker]]:
        """The command runner, started, and the workers this node runs (unstarted)."""
        local: Assembly | None = None
        if self._run_workers:
            local = assemble(
                self.settings,
                store=store,
                locator=locator,
                queue_broker=queue_broker,
                send_to_node=self._deliver if self._local_queue else partial(send_to_node, queue_broker),
                commands_on_queue=not self._local_queue,  # else the runner runs them
            )
        try:
            runner = self.runner = runner_for(
                self.settings,
                queue_broker=queue_broker,
                local=local,
                deliver=self._deliver,
                connected_here=self._connected_here,
            )
            await runner.start()
        except RunnerError as exc:
            store.close()
            raise NodeError(str(exc)) from exc
        workers = local.workers if local is not None else []
        self._expiry = local.expiry if local is not None else None
        if not self._local_queue:  # the workers' events for this node come back on its own queue
            declare_node_actors(
                queue_broker,
                self.node_id,
                deliver=self._deliver,
                presence=self._presence_from_queue,
                sign_out=self._sign_out_from_queue,
                privacy=self._privacy_from_queue,
            )
            workers.append(
                dramatiq.Worker(
                    queue_broker, queues={node_queue(self.node_id)}, worker_threads=2, worker_timeout=100
                )
            )
        return runner, workers

    def _build_plugins(self, store: Store, locator: Locator) -> list[BrokerPlugin]:
        """The broker's plugins, each with the services it needs: authentication, ACL, presence."""
        settings, topics = self.settings, self.topics
        limits = settings.limits
        throttle = LoginThrottle(
            user_free=limits.login_failures_free,
            max_delay=limits.login_max_delay,
            address_limit=limits.address_failures_max,
            lockout=limits.address_lockout,
        )
        self._login_throttle = throttle  # the media endpoint's logins count too
        auth = AuthPlugin(check=self._credentials_ok, check_many=self._credentials_many, throttle=throttle)
        everyone = settings.presence.visibility == "everyone"  # the ceiling of users' settings
        hiding = partial(store.hiding_last_seen, everyone=everyone)
        acl = AclPlugin(
            AclPlugin.Config(
                prefix=topics.prefix,
                presence_prefix=topics.presence_prefix,
                visibility=settings.presence.visibility,
            ),
            can_see_presence=partial(store.may_watch_presence, everyone=everyone),
        )
        presence = PresencePlugin(
            PresencePlugin.Config(
                prefix=topics.prefix,
                presence_prefix=topics.presence_prefix,
                min_interval=settings.presence.min_interval,
            ),
            node_id=self.node_id,
            locator=locator,
            save_last_seen=store.set_last_seen,
            on_change=self._presence_changed if self._cluster is not None else None,
            save_devices=store.record_devices,
            hiding_last_seen=hiding,
        )
        self.presence = presence
        self.privacy = PresencePrivacyChanges(
            topics=topics,
            broker=lambda: self.broker,
            acl=acl,
            presence=presence,
            hiding_last_seen=hiding,
            tell_other_nodes=self._privacy_changed if self._cluster is not None else None,
        )
        self._acl = acl
        return [auth, acl, presence]

    def _credentials_ok(self, user: str, secret: str, device: str | None = None) -> bool:
        """The credential check of MQTT (for a ``device``) and of the media endpoint (blocking: call
        it on a thread): a token or password of the user, or a JWT for it (``auth.jwt_*``)."""
        assert self._logins is not None
        return self._logins(user, secret, device)

    def _credentials_many(self, logins: list[tuple[str, str, str | None]]) -> list[bool]:
        """``_credentials_ok`` of each of a batch of logins, the store asked once for them all."""
        assert self._logins is not None
        return self._logins.many(logins)

    async def _start_media(self, store: Store, queue_broker: dramatiq.Broker) -> None:
        """The HTTP endpoint for images and videos; its jobs run wherever the media queue is consumed."""
        settings = self.settings
        self._media_storage = await asyncio.to_thread(storage_for, settings)
        tls = None
        if settings.broker.tls:
            assert settings.broker.certfile is not None
            assert settings.broker.keyfile is not None
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(settings.broker.certfile, settings.broker.keyfile)
        self.http = MediaHttp(
            node_id=self.node_id,
            settings=settings.media,
            host=settings.broker.host,
            tls=tls,
            storage=self._media_storage,
            store=store,
            check_credentials=self._credentials_ok,
            submit=lambda job: send_media_job(queue_broker, job),
            on_action=self._touch,
            throttle=self._login_throttle,
            add_routes=self._add_routes,
            limits=settings.limits,
            profiles_public=settings.presence.visibility == "everyone",
        )
        await self.http.start()

    # ------------------------------------------------------------------ moderation
    async def delete_message(self, message_id: str, *, by: str = ADMIN) -> Deletion:
        """Delete a message for everyone (``workers.moderation.delete_for_everyone``): the store
        change, the ``deleted`` events published to the devices connected to any node, the media
        objects removed (what storage fails to remove goes to the cleanup job). CommandError
        ``not_found`` for an unknown id. For the admin API and tests."""
        store, locator, queue_broker = self.store, self.locator, self.queue_broker
        if self._state != "running" or store is None or locator is None or queue_broker is None:
            raise RuntimeError("the node is not running")
        to_node = self._deliver if self._local_queue else partial(send_to_node, queue_broker)
        return await asyncio.to_thread(
            delete_for_everyone,
            store,
            message_id=message_id,
            by=by,
            deliver=Router(locator, to_node).deliver,
            storage=self._media_storage,
            retry_media=partial(send_cleanup_job, queue_broker),
        )

    # ------------------------------------------------------------------ health and metrics
    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        add_web_routes(app, self)
        if self.settings.admin.key is not None:  # else the admin API is off: /admin/ is 404
            assert self.store is not None
            AdminApi(
                key=self.settings.admin.key,
                store=self.store,
                throttle=self._login_throttle,
                sign_out=self.sign_out,
                delete_message=self.delete_message,
            ).mount(app)

    async def _healthz(self, request: web.Request) -> web.Response:
        if self._state != "running" or self.broker is None:
            return web.json_response({"status": "unavailable", "node": self.node_id}, status=503)
        body = {
            "status": "ok",
            "node": self.node_id,
            "connections": len(self.broker.connected_sessions()),
            "users_online": self.presence.online_users if self.presence else 0,
        }
        return web.json_response(body)

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    # ------------------------------------------------------------------ event loop callbacks
    def _reply(self, user: str, event: dict[str, Any], target: PublishOptions | None = None) -> None:
        """Ingest's answer to a refused command: on the command's reply target, else the inbox."""
        if self.broker is None:
            return
        if target is None:
            self.broker.publish_nowait(self.topics.inbox(user), encode(event), 1)
        else:
            self.broker.publish_nowait(target["topic"], encode(event), 1, props=publish_props(target))

    def _touch(self, user: str) -> None:
        if self.presence is not None:
            self.presence.touch(user)

    def _platform(self, user: str, device: str, platform: str) -> None:
        if self.presence is not None:
            self.presence.note_platform(user, device, platform)

    def _connected_here(self, user: str) -> bool:
        presence = self.presence
        return presence is not None and presence.is_online(user)

    # ------------------------------------------------------------------ delivery
    def _deliver(self, node: str, items: list[NodeItem]) -> None:
        """Publish events ``[(user, payload, qos, options), ...]`` meant for ``node`` to this node's clients:
        the one way back of every event (the runner's, the workers' through this node's queue, the
        in-process workers'). Called on the event loop, it publishes them at once; on another
        thread, it hands them to the event loop."""
        if node != self.node_id:
            return  # not ours: the events are in the inbox log; the clients sync them
        if threading.get_ident() == self._loop_thread:
            self._publish_items(items)  # which publishes nothing once the node is stopping
            return
        loop = self._loop
        if loop is None or self._state != "running":
            return
        try:
            loop.call_soon_threadsafe(self._publish_items, items)
        except RuntimeError:
            log.debug("event loop closed; %d live events left to sync", len(items))

    def _publish_items(self, items: list[NodeItem]) -> None:
        if self.broker is None or self._state != "running":
            return
        broker, inbox = self.broker, self.topics.inbox
        controls = 0
        with broker.corked():  # a connection's events of the batch in one write
            for user, payload, qos, options in items:
                if qos == CONTROL_QOS:
                    controls += 1
                    self._control(user, payload)
                elif options is None:
                    broker.publish_nowait(inbox(user), payload.encode(), int(qos))
                else:  # an answer on a response topic, or a live event with an expiry (MQTT 5)
                    topic = options.get("topic") or inbox(user)
                    broker.publish_nowait(topic, payload.encode(), int(qos), props=publish_props(options))
        published = (
            [p for _, p, qos, _ in items if qos != CONTROL_QOS] if controls else [p for _, p, _, _ in items]
        )
        observe_deliveries(published, time.time())
        if self.privacy is not None:
            self.privacy.seen_events(items)  # a prefix test per event: privacy changes to apply

    def _control(self, user: str, payload: str) -> None:
        """Carry out an order a worker sent with the events (``workers.routing.CONTROL_QOS``)."""
        order = json.loads(payload)
        if order.get("type") == PRESENCE_CUT and self.broker is not None:
            blocker = str(order["user"])
            if self._acl is not None:
                self._acl.forget_pair(user, blocker)
            cut = self.broker.drop_subscriptions(user, self.topics.presence(blocker))
            log.info("%s blocked %s: %d presence subscription(s) ended here", blocker, user, cut)

    # ------------------------------------------------------------------ signing a device out
    async def sign_out(self, user: str, device: str) -> int:
        """Sign ``<user>/<device>`` out: revoke its own tokens and record the sign-out (a JWT
        issued before is refused for it from now on), close its connection here at once, and
        tell every other live node to close it too. Returns the number of tokens revoked; raises
        UnknownUser or UnknownDevice (``workers.errors``). The user's other devices and its
        user-wide tokens and password are not touched."""
        store = self.store
        if store is None or self._state != "running":
            raise RuntimeError("the node is not running")
        now = time.time()
        removed = await asyncio.to_thread(store.sign_out_device, user, device=device, now=now)
        await self._close_signed_out(user, device, now)
        cluster, queue_broker = self._cluster, self.queue_broker
        if cluster is not None and queue_broker is not None:

            def fan_out() -> None:
                for node in cluster.live_nodes() - {self.node_id}:
                    send_sign_out(queue_broker, node, user, device, now)

            await asyncio.get_running_loop().run_in_executor(self._cluster_calls, fan_out)
        log.info("signed out %s/%s (%d tokens revoked)", user, device, removed)
        return removed

    async def _close_signed_out(self, user: str, device: str, at: float) -> None:
        """Close the connection of ``<user>/<device>`` here if it was made before its sign-out at
        ``at`` (one made later logged in with a credential the sign-out left valid)."""
        if self.broker is None or self.presence is None:
            return
        client_id = f"{user}/{device}"
        since = self.presence.connected_at(client_id)
        if since is not None and since <= at:
            await self.broker.disconnect(client_id)

    def _sign_out_from_queue(self, user: str, device: str, at: float) -> None:
        """Another node signed a device out (worker thread of this node's queue)."""
        loop = self._loop
        if loop is None or self._state != "running":
            return
        asyncio.run_coroutine_threadsafe(self._close_signed_out(str(user), str(device), float(at)), loop)

    async def _sign_out_sweep(self, store: Store) -> None:
        """Close the connections of devices signed out by another process (``mqchat users
        signout``): one query every ``presence.sign_out_sweep`` seconds for the sign-outs since the
        last one (looking back one more period for clocks a little apart)."""
        period = self.settings.presence.sign_out_sweep
        since = time.time() - 2 * period
        while True:
            await asyncio.sleep(period)
            started = time.time()
            try:
                signed_out = await asyncio.to_thread(store.signed_out_since, since)
            except Exception:
                log.warning("could not read the recent sign-outs", exc_info=True)
                continue
            since = started - period
            for user, device, at in signed_out:
                await self._close_signed_out(user, device, at)

    async def _retention_loop(self, pruner: Pruner) -> None:
        """Retention's sweep at start and every ``retention.interval`` seconds, on a thread of its
        own (``stop`` waits for the step in progress)."""
        loop = asyncio.get_running_loop()
        while pruner.active:
            try:
                await loop.run_in_executor(self._retention_calls, pruner.sweep)
            except Exception:
                log.warning("retention sweep failed; trying again at the next one", exc_info=True)
            await asyncio.sleep(self.settings.retention.interval)

    # ------------------------------------------------------------------ privacy (presence)
    def _privacy_changed(self, user: str) -> None:
        """Tell every other live node that ``user`` changed their privacy (event loop, not blocking)."""
        cluster, queue_broker, loop = self._cluster, self.queue_broker, self._loop
        if cluster is None or queue_broker is None or loop is None:
            return

        def fan_out() -> None:
            for node in cluster.live_nodes() - {self.node_id}:
                send_privacy_changed(queue_broker, node, user)

        loop.run_in_executor(self._cluster_calls, fan_out)

    def _privacy_from_queue(self, user: str) -> None:
        """Another node saw ``user`` change their privacy (worker thread of this node's queue)."""
        loop, privacy = self._loop, self.privacy
        if loop is None or privacy is None or self._state != "running":
            return
        loop.call_soon_threadsafe(partial(privacy.start, str(user), tell=False))

    # ------------------------------------------------------------------ several nodes
    def _presence_from_queue(self, user: str, payload: str) -> None:
        """Another node's presence change, from this node's queue (worker thread)."""
        loop, presence = self._loop, self.presence
        if loop is None or presence is None or self._state != "running":
            return
        asyncio.run_coroutine_threadsafe(presence.apply_remote(user, payload.encode()), loop)

    def _presence_changed(self, user: str, data: bytes) -> None:
        """Pass a presence change made here to every other live node (event loop, not blocking)."""
        locator, queue_broker, loop = self._cluster, self.queue_broker, self._loop
        if locator is None or queue_broker is None or loop is None:
            return

        def fan_out() -> None:
            for node in locator.live_nodes() - {self.node_id}:
                send_presence(queue_broker, node, user, data.decode())

        loop.run_in_executor(self._cluster_calls, fan_out)

    async def _cluster_loop(self, locator: RedisLocator) -> None:
        """Keep this node alive in the locator and take the users of dead nodes offline."""
        period = max(locator.node_ttl / 3, 0.5)
        while True:
            await asyncio.sleep(period)
            try:
                if await asyncio.to_thread(locator.heartbeat, self.node_id) and self.presence is not None:
                    # the locator lost its data (a Redis restart): say again who is here
                    users = self.presence.local_users()
                    log.warning(
                        "locator forgot node %s; registering its %d users again",
                        self.node_id,
                        len(users),
                    )
                    now = time.time()
                    for user in users:
                        await asyncio.to_thread(locator.set_online, user, self.node_id, now=now)
                reaped = await asyncio.to_thread(locator.reap)
                for node, users in reaped.items():
                    log.warning("node %s is gone; %d of its users go offline", node, len(users))
                    for user in users:
                        if not await asyncio.to_thread(locator.nodes_of, user) and self.presence is not None:
                            await self.presence.announce_offline(user, time.time())
            except Exception:
                log.warning("locator heartbeat failed", exc_info=True)


def _cluster_of(settings: Settings, locator: Locator) -> RedisLocator | None:
    """The locator shared with other nodes, when there is one (``locator.url``); Redis's module is
    imported only then."""
    if not settings.locator.url:
        return None
    from workers.locator.redis import RedisLocator

    return locator if isinstance(locator, RedisLocator) else None
