"""Commands enqueued on the shared job queue (several nodes): the workers run them.

A thread of the node enqueues each batch as one job on the commands queue (``workers/jobs.py``),
so the event loop never waits on the queue's I/O. While the job queue is down (a RabbitMQ or
Redis restart) the batch is kept, since its commands were acknowledged, and enqueued again until
the queue is back. The workers' events come back through the node's own queue.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from workers.jobs import send_commands
from workers.retry import always
from workers.runners.threaded import ThreadedRunner

if TYPE_CHECKING:
    import dramatiq

__all__ = ["QueueRunner"]

MIN_BACKOFF = 0.1
MAX_BACKOFF = 5.0
"""Seconds between tries to enqueue a batch while the job queue is down."""


class QueueRunner(ThreadedRunner):
    def __init__(self, queue_broker: dramatiq.Broker, *, batch_size: int, linger: float = 0.0) -> None:
        super().__init__(
            partial(send_commands, queue_broker),
            name="mqchat-enqueue",
            batch_size=batch_size,
            linger=linger,
            when=always,
            min_backoff=MIN_BACKOFF,
            max_backoff=MAX_BACKOFF,
        )
