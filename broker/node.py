"""A node: the embedded broker with its plugins, ingest, and the node's delivery consumer.

With the in-process job queue (``memory://``, the single-node default) the node also runs the
workers, so one process is the whole system::

    async with Node(settings) as node:
        print(node.mqtt_port)
        await node.wait_closed()
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

import dramatiq

from broker.ingest import Ingest
from broker.plugins.acl import MqchatAclPlugin
from broker.plugins.auth import MqchatAuthPlugin
from broker.plugins.presence import MqchatPresencePlugin
from broker.server import MqchatBroker
from client_sdk.contract import Topics
from config.settings import Settings
from workers.credentials import verify
from workers.jobs import (
    BACKGROUND_QUEUES,
    COMMANDS_QUEUE,
    declare_commands_actor,
    make_queue_broker,
    send_commands,
)
from workers.notify.jobs import build_notifier
from workers.pipeline import Pipeline
from workers.routing import Router
from workers.sessions import MemorySessions, SessionStore
from workers.stores import Store, open_store

__all__ = ["Node", "NodeError"]

log = logging.getLogger(__name__)


class NodeError(Exception):
    """The node could not start (a port is taken, a setting is unusable...)."""


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_free(host: str, port: int | None) -> None:
    """Fail with one clear line when a port is taken (amqtt would log a traceback first)."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise NodeError(f"cannot listen on {_bind(host, port)}: {exc.strerror or exc}") from None


class Node:
    """One node. An async context manager: reusable after stop, not reentrant."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node_id = settings.node_id
        self.topics = Topics(settings.topics.prefix, settings.topics.presence_prefix)
        self._state = "new"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed: asyncio.Event | None = None
        self._workers: list[dramatiq.Worker] = []
        self.store: Store | None = None
        self.sessions: SessionStore | None = None
        self.broker: MqchatBroker | None = None
        self.ingest: Ingest | None = None
        self.presence: MqchatPresencePlugin | None = None
        self.queue_broker: dramatiq.Broker | None = None
        self._deliveries = threading.Lock()

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
        _check_free(settings.broker.host, settings.broker.mqtt_port)
        _check_free(settings.broker.host, settings.broker.ws_port)
        self._loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        store = self.store = open_store(settings.store_url)
        await asyncio.to_thread(store.create_schema)
        sessions = self.sessions = MemorySessions()
        queue_broker = self.queue_broker = make_queue_broker(settings.workers.queue_url)
        router = Router(sessions, self._deliver)
        notifier = build_notifier(settings.push, store=store, sessions=sessions, broker=queue_broker)
        pipeline = Pipeline(
            store=store,
            sessions=sessions,
            router=router,
            sync_page_size=settings.limits.sync_page_size,
            max_group_members=settings.groups.max_members,
            notifier=notifier,
        )
        declare_commands_actor(queue_broker, pipeline.process_batch)

        ingest = self.ingest = Ingest(
            node_id=self.node_id,
            topics=self.topics,
            max_payload_bytes=settings.limits.max_payload_bytes,
            queue_size=settings.workers.ingest_queue,
            batch_size=settings.workers.ingest_batch,
            send_batch=lambda node, batch: send_commands(queue_broker, node, batch),
            reply=self._reply,
            on_action=self._touch,
        )
        broker = self.broker = MqchatBroker(
            self._amqtt_config(), gate=ingest, keepalive_grace=settings.presence.keepalive_grace
        )
        self._bind_plugins(broker, store, sessions)
        try:
            await broker.start()
        except Exception as exc:
            store.close()
            raise NodeError(f"cannot start the broker: {exc.__cause__ or exc}") from exc
        assert self.presence is not None
        await self.presence.restore(await asyncio.to_thread(store.last_seen_all))

        for queue in BACKGROUND_QUEUES:
            queue_broker.declare_queue(queue)
        self._workers = [
            # one thread: a connection's commands are handled in the order they were sent
            dramatiq.Worker(queue_broker, queues={COMMANDS_QUEUE}, worker_threads=1, worker_timeout=100),
            dramatiq.Worker(
                queue_broker,
                queues=set(BACKGROUND_QUEUES),
                worker_threads=settings.workers.threads,
                worker_timeout=100,
            ),
        ]
        for worker in self._workers:
            worker.start()
        ingest.start()
        self._state = "running"
        log.info("node %s running", self.node_id)

    async def stop(self) -> None:
        """Stop without losing an acknowledged command: drain ingest and the command queue."""
        if self._state != "running":
            return
        self._state = "stopping"
        assert self.broker is not None
        assert self.ingest is not None
        assert self.queue_broker is not None
        assert self.store is not None
        await self.broker.shutdown()
        await asyncio.to_thread(self.ingest.stop)
        try:
            await asyncio.to_thread(self.queue_broker.join, COMMANDS_QUEUE, timeout=60_000)
        except Exception:
            log.exception("commands still queued at stop")
        for worker in self._workers:
            await asyncio.to_thread(worker.stop, 10_000)
        self._workers = []
        self.queue_broker.close()
        self.store.close()
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
    def mqtt_port(self) -> int:
        assert self.broker is not None
        port = self.broker.bound_port("default")
        assert port is not None
        return port

    @property
    def ws_port(self) -> int | None:
        return self.broker.bound_port("ws") if self.broker else None

    # ------------------------------------------------------------------ wiring
    def _amqtt_config(self) -> dict[str, Any]:
        b = self.settings.broker
        tls: dict[str, Any] = (
            {"ssl": True, "certfile": str(b.certfile), "keyfile": str(b.keyfile)} if b.tls else {}
        )
        listeners: dict[str, Any] = {
            "default": {
                "type": "tcp",
                "bind": _bind(b.host, b.mqtt_port),
                "max_connections": b.max_connections,
                **tls,
            }
        }
        if b.ws_port is not None:
            listeners["ws"] = {
                "type": "ws",
                "bind": _bind(b.host, b.ws_port),
                "max_connections": b.max_connections,
                **tls,
            }
        topics = {"prefix": self.topics.prefix, "presence_prefix": self.topics.presence_prefix}
        return {
            "listeners": listeners,
            "timeout_disconnect_delay": 0,
            "plugins": {
                "broker.plugins.auth.MqchatAuthPlugin": {},
                "broker.plugins.acl.MqchatAclPlugin": topics,
                "broker.plugins.presence.MqchatPresencePlugin": {
                    **topics,
                    "min_interval": self.settings.presence.min_interval,
                },
            },
        }

    def _bind_plugins(self, broker: MqchatBroker, store: Store, sessions: SessionStore) -> None:
        manager = broker.plugins_manager
        auth = manager.get_plugin("MqchatAuthPlugin")
        presence = manager.get_plugin("MqchatPresencePlugin")
        if not isinstance(auth, MqchatAuthPlugin) or not isinstance(presence, MqchatPresencePlugin):
            raise NodeError("mqchat's broker plugins did not load")
        if not isinstance(manager.get_plugin("MqchatAclPlugin"), MqchatAclPlugin):
            raise NodeError("mqchat's ACL plugin did not load")
        auth.bind(lambda user, secret: verify(secret, store.credential_hashes(user)))
        presence.bind(node_id=self.node_id, sessions=sessions, save_last_seen=store.set_last_seen)
        self.presence = presence

    # ------------------------------------------------------------------ event loop callbacks
    def _reply(self, user: str, event: dict[str, Any]) -> None:
        from client_sdk.contract import encode

        if self.broker is not None:
            self.broker.publish_nowait(self.topics.inbox(user), encode(event), 1)

    def _touch(self, user: str) -> None:
        if self.presence is not None:
            self.presence.touch(user)

    # ------------------------------------------------------------------ delivery (worker thread)
    def _deliver(self, node: str, items: list[tuple[str, str, int]]) -> None:
        """Hand events to ``node``; in one process, the event loop's queue is the node's queue."""
        loop = self._loop
        if node != self.node_id or loop is None or self._state != "running":
            return  # the events are in the inbox log; the clients sync them
        try:
            loop.call_soon_threadsafe(self._publish_items, items)
        except RuntimeError:
            log.debug("event loop closed; %d live events left to sync", len(items))

    def _publish_items(self, items: list[tuple[str, str, int]]) -> None:
        if self.broker is None or self._state != "running":
            return
        for user, payload, qos in items:
            self.broker.publish_nowait(self.topics.inbox(user), payload.encode(), int(qos))
