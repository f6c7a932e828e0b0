"""The worker side of mqchat, assembled: what ``mqchat worker`` runs, and a single node runs inside.

It declares the job actors on the queue broker and returns the Dramatiq workers that consume
them: one thread for client commands (a connection's commands are handled in the order they were
sent) and a pool for the slow background jobs (media, notifications). A single node with the
in-process queue takes the commands' processing function instead of a commands worker
(``assemble(..., commands_on_queue=False)``) for its command runner (``workers/runners/``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import dramatiq

from config.settings import Settings
from workers.expiry import ExpirySweeper
from workers.jobs import BACKGROUND_QUEUES, COMMANDS_QUEUE, declare_commands_actor
from workers.locator import Locator
from workers.media.cleanup import send_cleanup_job
from workers.media.job import declare_media_job
from workers.notify.jobs import build_notifier
from workers.pipeline import Pipeline
from workers.routing import NodeSender, Router
from workers.stores import CommandStore

__all__ = ["Assembly", "assemble", "build_workers"]


@dataclass(frozen=True)
class Assembly:
    process_commands: Callable[[str, list[dict[str, Any]]], None]
    """Handle one batch of commands (what the commands actor runs)."""
    workers: list[dramatiq.Worker]
    """Unstarted; the commands worker is among them only with ``commands_on_queue``."""
    message_waiting: Callable[[str, str, str], None]
    """The notifier's: a message was stored for a user (for commands run in another process)."""
    discard_media: Callable[[Sequence[str]], None]
    """The cleanup job's: remove media objects of a message deleted by a user (blocking; for
    commands run in another process)."""
    expiry: ExpirySweeper
    """The sweeper of disappearing messages, unstarted: whoever runs the workers runs it."""


def build_workers(
    settings: Settings,
    *,
    store: CommandStore,
    locator: Locator,
    queue_broker: dramatiq.Broker,
    send_to_node: NodeSender,
) -> tuple[list[dramatiq.Worker], ExpirySweeper]:
    """Declare the worker actors on ``queue_broker``; the workers and the sweeper of expired
    messages are returned unstarted."""
    assembly = assemble(
        settings, store=store, locator=locator, queue_broker=queue_broker, send_to_node=send_to_node
    )
    return assembly.workers, assembly.expiry


def assemble(
    settings: Settings,
    *,
    store: CommandStore,
    locator: Locator,
    queue_broker: dramatiq.Broker,
    send_to_node: NodeSender,
    commands_on_queue: bool = True,
) -> Assembly:
    """Declare the worker actors on ``queue_broker``; without ``commands_on_queue`` no worker
    consumes the commands queue: the caller runs ``process_commands`` itself."""
    router = Router(locator, send_to_node)
    notifier = build_notifier(settings.push, store=store, locator=locator, broker=queue_broker)
    # the media of a message a user deletes goes to the cleanup job (declared with the media job),
    # which runs where the media queue is consumed and tries again while storage fails
    discard_media = partial(send_cleanup_job, queue_broker)
    pipeline = Pipeline(
        store=store,
        route=router.route,
        waiting=notifier.message_waiting,
        touch=locator.touch,
        discard=discard_media,
        sync_page_size=settings.limits.sync_page_size,
        max_group_members=settings.groups.max_members,
        profiles_public=settings.presence.visibility == "everyone",
        edit_window=settings.messages.edit_window,
        delete_window=settings.messages.delete_window,
        disappearing_timers=settings.messages.disappearing_timers,
    )
    declare_commands_actor(queue_broker, pipeline.process_batch)
    declare_media_job(
        settings, store=store, router=router, route_message=pipeline.route_message, queue_broker=queue_broker
    )
    for queue in BACKGROUND_QUEUES:
        queue_broker.declare_queue(queue)
    workers = [
        dramatiq.Worker(
            queue_broker,
            queues=set(BACKGROUND_QUEUES),
            worker_threads=settings.workers.threads,
            worker_timeout=100,
        )
    ]
    if commands_on_queue:
        workers.insert(
            0, dramatiq.Worker(queue_broker, queues={COMMANDS_QUEUE}, worker_threads=1, worker_timeout=100)
        )
    expiry = ExpirySweeper(
        store,
        route=router.route,
        discard=discard_media,
        period=settings.messages.expiry_sweep,
        batch=settings.messages.expiry_batch,
    )
    return Assembly(pipeline.process_batch, workers, notifier.message_waiting, discard_media, expiry)
