"""The Dramatiq side: the job queue broker, the queues and the actors bound to them.

Actors are declared on an explicit broker by functions, never at import time, so importing this
module configures nothing. Queues:

- ``mqchat.commands``: batches of client commands, consumed by one thread per worker process so
  that a connection's commands are handled in the order they were sent.
- ``mqchat.node.<node id>``: events for one node to publish to its local clients.
- ``mqchat.media`` and ``mqchat.notify``: slow work (image processing, push and SMS calls) on
  worker threads of their own, so it never holds up the commands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, ShutdownNotifications, TimeLimit

from workers.errors import Retryable, WorkerError
from workers.retry import MAX_BACKOFF_MS, MIN_BACKOFF_MS, retry_when
from workers.routing import NodeItem, NodeSender

__all__ = [
    "BACKGROUND_QUEUES",
    "COMMANDS_ACTOR",
    "COMMANDS_QUEUE",
    "DELIVER_ACTOR",
    "MEDIA_QUEUE",
    "NOTIFY_QUEUE",
    "QueueUnavailable",
    "declare_commands_actor",
    "declare_node_actors",
    "enqueue",
    "make_queue_broker",
    "node_queue",
    "send_commands",
    "send_presence",
    "send_privacy_changed",
    "send_sign_out",
    "send_to_node",
]

log = logging.getLogger(__name__)

COMMANDS_QUEUE = "mqchat.commands"
MEDIA_QUEUE = "mqchat.media"
NOTIFY_QUEUE = "mqchat.notify"
BACKGROUND_QUEUES = frozenset({MEDIA_QUEUE, NOTIFY_QUEUE})
COMMANDS_ACTOR = "mqchat_process_commands"
DELIVER_ACTOR = "mqchat_deliver"
PRESENCE_ACTOR = "mqchat_presence"
SIGN_OUT_ACTOR = "mqchat_sign_out"
PRIVACY_ACTOR = "mqchat_privacy"


def node_queue(node: str) -> str:
    return f"mqchat.node.{node}"


def make_queue_broker(url: str) -> dramatiq.Broker:
    """The Dramatiq broker for ``url``; ``memory://`` keeps the queues in this process."""
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=300_000),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS, retry_when=retry_when),
    ]
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        return StubBroker(middleware=middleware)
    if scheme in {"redis", "rediss"}:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, middleware=middleware)  # type: ignore[no-untyped-call]
    if scheme in {"amqp", "amqps"}:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    raise ValueError(f"no job queue for URL scheme {scheme!r} (use memory://, redis:// or amqp://)")


def declare_commands_actor(
    broker: dramatiq.Broker, process: Callable[[str, list[dict[str, Any]]], None]
) -> dramatiq.Actor[Any, Any]:
    return dramatiq.Actor(
        process, broker=broker, actor_name=COMMANDS_ACTOR, queue_name=COMMANDS_QUEUE, priority=0, options={}
    )


def declare_node_actors(
    broker: dramatiq.Broker,
    node: str,
    *,
    deliver: NodeSender,
    presence: Callable[[str, str], None],
    sign_out: Callable[[str, str, float], None] | None = None,
    privacy: Callable[[str], None] | None = None,
) -> None:
    """The node-side actors; their messages arrive on the node's own queue. ``deliver`` gets the
    events as ``send_to_node`` sent them; ``sign_out(user, device, at)`` a device signed out;
    ``privacy(user)`` a user changed their privacy settings."""

    def deliver_from_queue(node: str, items: list[list[Any]]) -> None:
        # the job's JSON made each (user, payload, qos, options) a list; a worker of the version
        # before options (a rolling upgrade) sends three
        deliver(node, [(str(i[0]), str(i[1]), int(i[2]), i[3] if len(i) > 3 else None) for i in items])

    broker.declare_queue(node_queue(node))
    actors: list[tuple[str, Callable[..., None]]] = [
        (DELIVER_ACTOR, deliver_from_queue),
        (PRESENCE_ACTOR, presence),
    ]
    if sign_out is not None:
        actors.append((SIGN_OUT_ACTOR, sign_out))
    if privacy is not None:
        actors.append((PRIVACY_ACTOR, privacy))
    for name, fn in actors:
        dramatiq.Actor(
            fn,
            broker=broker,
            actor_name=name,
            queue_name=node_queue(node),
            priority=0,
            options={"max_retries": 0},
        )


class QueueUnavailable(WorkerError, Retryable):
    """The job queue did not take a job; the job that tried is retried later."""


def enqueue(broker: dramatiq.Broker, message: dramatiq.Message[Any], delay: int | None = None) -> None:
    try:
        broker.enqueue(message, delay=delay)
    except Exception as exc:  # redis, pika and dramatiq each have their own connection errors
        raise QueueUnavailable(f"job queue unavailable: {exc}") from exc


def send_commands(broker: dramatiq.Broker, node: str, batch: list[dict[str, Any]]) -> None:
    enqueue(
        broker,
        dramatiq.Message(
            queue_name=COMMANDS_QUEUE, actor_name=COMMANDS_ACTOR, args=(node, batch), kwargs={}, options={}
        ),
    )


def _to_node(broker: dramatiq.Broker, node: str, actor: str, args: tuple[Any, ...]) -> None:
    """Enqueue one job for ``node``'s own queue (declared on first use; never retried)."""
    queue = node_queue(node)
    if queue not in broker.get_declared_queues():
        broker.declare_queue(queue)
    enqueue(
        broker,
        dramatiq.Message(
            queue_name=queue, actor_name=actor, args=args, kwargs={}, options={"max_retries": 0}
        ),
    )


def send_to_node(broker: dramatiq.Broker, node: str, items: list[NodeItem]) -> None:
    _to_node(broker, node, DELIVER_ACTOR, (node, [list(item) for item in items]))


def send_presence(broker: dramatiq.Broker, node: str, user: str, payload: str) -> None:
    """Ask ``node`` to retain and publish a presence change of ``user`` (from another node)."""
    _to_node(broker, node, PRESENCE_ACTOR, (user, payload))


def send_sign_out(broker: dramatiq.Broker, node: str, user: str, device: str, at: float) -> None:
    """Ask ``node`` to close the connection of ``<user>/<device>`` made before ``at`` (signed out)."""
    _to_node(broker, node, SIGN_OUT_ACTOR, (user, device, at))


def send_privacy_changed(broker: dramatiq.Broker, node: str, user: str) -> None:
    """Tell ``node`` that ``user`` changed their privacy settings (it cuts the presence
    subscriptions they no longer allow)."""
    _to_node(broker, node, PRIVACY_ACTOR, (user,))
