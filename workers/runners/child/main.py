"""The commands process: open the store, then run each batch the node sends until it says stop.

Messages from the node: ``("batch", node, commands, alone)`` and ``("stop",)``. To the node:
``("ready",)`` once the store is open; ``("retrying", delay)`` before each wait to retry a batch
(the store is unavailable: not a hang); and for each batch, or several stored together,
``("done", batches, node, events, waiting, errors, discarded)``: the events to publish, as ``(user,
payload, qos, options)``, for the node that received the commands (which publishes them to whoever of the
users is connected there: this process does not know who is online), the messages stored for
users, as ``(user, message id, sender)``, for the node's notifier, this process's count of commands
answered with an error so far, by code, for the node's metrics (None: unchanged since the last
answer), and the media object keys of messages users deleted for everyone, for the node's cleanup
job (this process has no job queue).
"""

from __future__ import annotations

import logging
import select
import signal
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from workers.events import dumps
from workers.gc_pacing import GcPacing
from workers.metrics import COMMAND_ERROR_TOTALS
from workers.pipeline import Pipeline
from workers.retry import Retrying
from workers.runners.child import framing
from workers.stores import open_store

if TYPE_CHECKING:
    from config.settings import Settings
    from workers.routing import Delivery

__all__ = ["MERGE_COMMANDS", "child_main"]

MERGE_COMMANDS = 500
"""The child stores batches waiting in the pipe together, up to this many commands."""


def _error_totals() -> dict[str, float]:
    """This process's ``COMMAND_ERRORS`` so far, by code (kept beside the metric by
    ``command_error``: reading the metric itself was a fixed cost of every batch)."""
    return {code: float(total) for code, total in COMMAND_ERROR_TOTALS.items()}


def _send(conn: Connection, message: tuple[Any, ...]) -> None:
    """``conn.send`` in ``framing.dumps``'s form (the node reads it the same way)."""
    conn.send_bytes(framing.dumps(message))


def _recv(conn: Connection) -> Any:
    """``conn.recv``, what the node wrote (``framing.frame``)."""
    return framing.loads(conn.recv_bytes())


def child_main(settings: Settings, conn: Connection, log_level: int) -> None:
    """The child's main (see the module)."""
    # Ctrl-C or a SIGTERM to the whole group stops the node, which finishes the batches handed over
    # and then stops this; a node that dies closes the pipe, which ends this too
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s mqchat-commands %(levelname)s %(message)s")
    store = open_store(settings.store_url)
    routed: list[Delivery] = []
    waiting: list[tuple[str, str, str]] = []
    discarded: list[str] = []
    pipeline = Pipeline(
        store=store,
        route=routed.extend,
        # the node's notifier gets each message once the batch is done, as plain strings (the
        # message itself was a tenth of the node's unpickling of a batch's answer)
        waiting=lambda user, message_id, sender: waiting.append((user, message_id, sender)),
        discard=discarded.extend,
        sync_page_size=settings.limits.sync_page_size,
        max_group_members=settings.groups.max_members,
        profiles_public=settings.presence.visibility == "everyone",
        edit_window=settings.messages.edit_window,
        delete_window=settings.messages.delete_window,
        disappearing_timers=settings.messages.disappearing_timers,
    )
    # a wait to retry a batch (the store is unavailable) is not a hang: the node hears of it
    run = Retrying(pipeline.process_batch, on_retry=lambda delay: _send(conn, ("retrying", delay)))
    # whether more batches wait, asked after each one: one poll object for good (``conn.poll``
    # builds and registers a selector every time, a fixed cost of every batch)
    waiting_batches = select.poll()
    waiting_batches.register(conn.fileno(), select.POLLIN)
    last_errors: dict[str, float] | None = None
    # what the store and SQLAlchemy built lives as long as the process: frozen, as on the node, so
    # that the full collections the batches' objects bring about no longer walk it every time
    pacing = GcPacing()
    pacing.start()
    _send(conn, ("ready",))
    held: tuple[Any, ...] | None = None
    try:
        while True:
            try:
                message = held or _recv(conn)
            except EOFError:  # the node is gone
                return
            held = None
            if message[0] == "stop":
                return
            _, node, batch, alone = message
            batches = 1
            # batches that queued up while the last one was stored join this one: one transaction
            # and one answer for them all, so a busy child catches up instead of falling behind
            # (not one that must go alone: the node is finding the command that ends children)
            while not alone and len(batch) < MERGE_COMMANDS and waiting_batches.poll(0):
                try:
                    held = _recv(conn)
                except EOFError:
                    break
                if held[0] != "batch" or held[1] != node or held[3]:
                    break
                batch, batches, held = batch + held[2], batches + 1, None
            run(node, batch)
            # every event goes to the node of the batch, the only node there is: whoever is connected
            # gets it there, the others find it in their inbox log
            events = [(user, dumps(event), qos, options) for user, event, _, qos, options in routed]
            # one message for the batches: the node reads one answer, not one more for the events
            # the error totals only when they changed (reading the metric is a fixed cost per batch)
            errors = _error_totals()
            changed = errors if errors != last_errors else None
            last_errors = errors
            _send(conn, ("done", batches, node, events, waiting.copy(), changed, discarded.copy()))
            routed.clear()
            waiting.clear()
            discarded.clear()
    finally:
        pacing.stop()
        store.close()
