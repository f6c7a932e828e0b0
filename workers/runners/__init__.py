"""The ways to run the client commands a node accepted, behind one interface (``base.py``).

- ``child/``: a child process of the node runs them (a single node: the default).
- ``inline.py``: a thread of the node runs them (a single node, ``workers.commands_process``
  false).
- ``queue.py``: a thread of the node enqueues them on the shared job queue (several nodes); the
  workers run them.

``runner_for`` picks one from the settings; the node calls it once and never asks which it got.
Each runner's modules are imported only when it is chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from workers.errors import RunnerError
from workers.runners.base import Batch, CommandRunner

if TYPE_CHECKING:
    import dramatiq

    from config.settings import Settings
    from workers.routing import NodeSender
    from workers.service import Assembly

__all__ = ["Batch", "CommandRunner", "RunnerError", "commands_in_child", "runner_for", "shares_store"]


def shares_store(url: str) -> bool:
    """Whether two processes can open the store at ``url`` (not an in-memory SQLite database)."""
    if not url.startswith("sqlite"):
        return True
    from sqlalchemy.engine import make_url

    from workers.stores.sql.base import sqlite_in_memory

    return not sqlite_in_memory(make_url(url))


def commands_in_child(settings: Settings) -> bool:
    """Whether a single node runs its commands in a child process (``workers.commands_process``;
    unset: whenever the store can be shared with one)."""
    wanted, url = settings.workers.commands_process, settings.store_url
    if wanted and not shares_store(url):
        raise RunnerError("workers.commands_process needs a store two processes can open")
    return shares_store(url) if wanted is None else wanted


def runner_for(
    settings: Settings,
    *,
    queue_broker: dramatiq.Broker,
    local: Assembly | None,
    deliver: NodeSender,
    connected_here: Callable[[str], bool],
) -> CommandRunner:
    """The runner the settings ask for, unstarted.

    With a shared job queue (``workers.queue_url`` redis:// or amqp://) the commands go on it; with
    the in-process one (``memory://``) this node runs them with ``local``, the workers it runs.
    ``deliver`` publishes events on this node (from any thread); ``connected_here`` tells whether
    a user is connected to this node (on the event loop).
    """
    workers = settings.workers
    batch_size, linger = workers.ingest_batch, workers.ingest_linger_ms / 1000
    if not workers.queue_url.startswith("memory:"):
        from workers.runners.queue import QueueRunner

        return QueueRunner(queue_broker, batch_size=batch_size, linger=linger)
    if local is None:
        raise RunnerError(
            "a node without workers needs a shared job queue (workers.queue_url redis:// or amqp://)"
        )
    if commands_in_child(settings):
        from workers.runners.child import ChildRunner

        return ChildRunner(
            settings,
            deliver=deliver,
            waiting=local.message_waiting,
            discard=local.discard_media,
            connected_here=connected_here,
        )
    from workers.runners.inline import InlineRunner

    return InlineRunner(local.process_commands, batch_size=batch_size, linger=linger)
