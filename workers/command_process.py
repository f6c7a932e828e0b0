"""Client commands in a child process of a single node (``workers.commands_process``).

A single node runs its broker on the event loop and the commands (validation done, then store,
answers, routing) on the ingest thread. Both share one GIL: on a machine with cores to spare the
event loop waits for the store's Python and the store waits for the event loop, and the node never
uses more than one core. ``CommandProcess`` runs the commands in a child process instead, with the
same ``Pipeline``, the same store and the same retry policy (``DirectCommands``), so that the
broker and the store each have a core.

The ingest thread hands batches over a pipe (a few at a time on their way, taken in order) and
a reader thread passes on the answers; the node stops only once every batch handed over is
stored, so an acknowledged command is stored before the node stops.

The child sends, with each batch's "done", its events as the node's delivery hand-offs, routed
to the node that received the command (the child does not know who is online: an event for a
user who is not connected finds no subscriber and waits in the inbox log), the messages stored
for recipients, which the node passes to its notifier (which does know who is online), and its
count of commands answered with an error, for the node's metrics. Batches that wait in the pipe
while the child stores one are stored together next, in one transaction. A child that
dies is started again and the batch run again: every command is idempotent.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from workers.direct import DirectCommands
from workers.metrics import COMMAND_ERRORS
from workers.routing import NodeSender

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from config.settings import Settings

__all__ = ["CommandProcess", "shares_store"]

log = logging.getLogger(__name__)

Waiting = Callable[[str, str, str], None]
"""A message (id, sender) was stored for a user (the notifier's ``message_waiting``)."""

MERGE_COMMANDS = 500
"""The child stores batches waiting in the pipe together, up to this many commands."""

RESTART_DELAY = 1.0
"""Seconds between two starts of a child that keeps dying."""


def shares_store(url: str) -> bool:
    """Whether two processes can open the store at ``url`` (not an in-memory SQLite database)."""
    if not url.startswith("sqlite"):
        return True
    from sqlalchemy.engine import make_url

    from workers.stores.sql_base import sqlite_in_memory

    return not sqlite_in_memory(make_url(url))


class CommandProcess:
    """Runs command batches in a child process; called on the ingest thread, like DirectCommands.

    Up to ``max_in_flight`` batches are on their way at once (the child takes them in order), so
    the ingest thread does not wait for each batch's round trip; a reader thread passes on what
    the child answers. Batches the child has not finished are kept, and sent again, in order, to
    the child that replaces one that died.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        send_to_node: NodeSender,
        waiting: Waiting | None = None,
        start_timeout: float = 60.0,
        max_in_flight: int = 4,
    ) -> None:
        if not shares_store(settings.store_url):
            raise ValueError("commands in a child process need a store both processes can open")
        self._settings = settings
        self._send_to_node = send_to_node
        self._waiting = waiting
        self._start_timeout = start_timeout
        self._max_in_flight = max_in_flight
        self._context = multiprocessing.get_context("spawn")  # never fork a process with threads
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._changes = threading.Condition()
        self._in_flight: deque[tuple[str, list[dict[str, Any]]]] = deque()
        """Batches sent and not yet done, oldest first (guarded by ``_changes``)."""
        self._reader: threading.Thread | None = None
        self._errors_seen: dict[str, float] = {}
        """The child's ``COMMAND_ERRORS`` totals already added here, by code."""
        self._closed = False
        self.restarts = 0
        """Children started again after one died."""
        self.joined = 0
        """Batches the child stored together with the one before them (they waited in the pipe)."""

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        """Start the child and wait until its store is open (blocking; RuntimeError if it can't)."""
        with self._changes:
            self._spawn()
        self._reader = threading.Thread(target=self._read, name="mqchat-commands-reader", daemon=True)
        self._reader.start()

    def _spawn(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(self._settings, theirs, logging.getLogger().getEffectiveLevel()),
            name="mqchat-commands",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._errors_seen = {}  # a new child counts from zero
        try:
            ready = ours.poll(self._start_timeout) and ours.recv() == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            ours.close()
            _kill(process)
            raise RuntimeError(f"the commands process did not start within {self._start_timeout:.0f} s")
        self._process, self._conn = process, ours

    def __call__(self, node: str, batch: list[dict[str, Any]]) -> None:
        """Send ``batch`` to the child (waiting while ``max_in_flight`` are on their way). Never raises:
        a batch sent to a child that dies goes again to the next one."""
        with self._changes:
            while len(self._in_flight) >= self._max_in_flight and not self._closed:
                self._changes.wait()
            if self._closed:
                log.error("stopped: a batch of %d commands is left unstored", len(batch))
                return
            self._in_flight.append((node, batch))
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(OSError):  # dead: the reader sends it to the next child
                    conn.send(("batch", node, batch))

    def _read(self) -> None:
        """Pass on what the child says; start another when it dies (the reader thread)."""
        while True:
            conn = self._conn
            try:
                if conn is None:
                    raise EOFError("no child")
                message = conn.recv()
            except (EOFError, OSError) as exc:
                if not self._replace(exc):
                    return
                continue
            _, batches, deliveries, stored, errors = message
            for node, items in deliveries:
                self._send_to_node(node, items)
            self._done(batches, stored, errors)

    def _done(self, batches: int, stored: list[tuple[str, str, str]], errors: dict[str, float]) -> None:
        """The oldest ``batches`` are stored: their messages go to the notifier, the child's count of
        commands answered with an error to this process's metrics."""
        for code, total in errors.items():
            added = total - self._errors_seen.get(code, 0.0)
            if added > 0:
                COMMAND_ERRORS.labels(code=code).inc(added)
        self._errors_seen = errors
        self.joined += batches - 1
        for user, message_id, sender in stored:
            if self._waiting is not None:
                try:
                    self._waiting(user, message_id, sender)
                except Exception:
                    log.exception("could not note a message waiting for %s", user)
        with self._changes:
            for _ in range(min(batches, len(self._in_flight))):
                self._in_flight.popleft()
            self._changes.notify_all()

    def _replace(self, exc: BaseException) -> bool:
        """The child is gone: start another and send it every unfinished batch. False: stopping."""
        with self._changes:
            self._reap()
            while not self._closed:
                log.error("the commands process ended (%r); starting another", exc)
                try:
                    self._spawn()
                except RuntimeError as failed:
                    exc = failed
                    self._changes.wait(RESTART_DELAY)
                    continue
                self.restarts += 1
                conn = self._conn
                assert conn is not None
                try:
                    for node, batch in self._in_flight:
                        conn.send(("batch", node, batch))
                except OSError as failed:  # died at once: the next one gets them all
                    exc = failed
                    self._reap()
                    continue
                return True
            return False

    def close(self, timeout: float = 60.0) -> None:
        """Wait for the batches on their way, then stop the child (call after ingest has drained)."""
        with self._changes:
            if not self._changes.wait_for(lambda: not self._in_flight, timeout):
                log.error("%d batches of commands were not finished at stop", len(self._in_flight))
            self._closed = True
            self._changes.notify_all()
            conn, process = self._conn, self._process
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(("stop",))
        if process is not None:
            process.join(10)
        if self._reader is not None:
            self._reader.join(10)
        with self._changes:
            self._reap()

    def _reap(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is not None:
            _kill(process)


def _kill(process: BaseProcess) -> None:
    if process.is_alive():
        process.kill()
    process.join(5)


class _Here:
    """The child's sessions: every user is routed to the node of the batch being processed."""

    node = ""

    def set_online(self, user: str, node: str, *, now: float) -> None:
        return None

    def set_offline(self, user: str, node: str, *, now: float) -> None:
        return None

    def touch(self, user: str, *, now: float) -> None:
        return None

    def nodes_of(self, user: str) -> set[str]:
        return {self.node}

    def last_action(self, user: str) -> float | None:
        return None

    def drop_node(self, node: str) -> list[str]:
        return []


class _Collect:
    """The child's notifier: the node's notifier gets each message once the batch is done (as
    plain strings: the message itself was a tenth of the node's unpickling of a batch's answer)."""

    def __init__(self) -> None:
        self.waiting: list[tuple[str, str, str]] = []

    def message_waiting(self, user: str, message_id: str, sender: str) -> None:
        self.waiting.append((user, message_id, sender))


def _error_totals() -> dict[str, float]:
    """This process's ``COMMAND_ERRORS`` so far, by code."""
    return {
        sample.labels["code"]: sample.value
        for metric in COMMAND_ERRORS.collect()
        for sample in metric.samples
        if sample.name.endswith("_total")
    }


def _child_main(settings: Settings, conn: Connection, log_level: int) -> None:
    """The child: open the store, then run each batch the node sends until it says stop."""
    from workers.pipeline import Pipeline
    from workers.routing import Router
    from workers.stores import open_store

    # Ctrl-C or a SIGTERM to the whole group stops the node, which finishes the batches handed over
    # and then stops this; a node that dies closes the pipe, which ends this too
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=log_level, format="%(asctime)s mqchat-commands %(levelname)s %(message)s")
    store = open_store(settings.store_url)
    here, notes = _Here(), _Collect()
    deliveries: list[tuple[str, list[Any]]] = []
    pipeline = Pipeline(
        store=store,
        sessions=here,
        router=Router(here, lambda node, items: deliveries.append((node, items))),
        sync_page_size=settings.limits.sync_page_size,
        max_group_members=settings.groups.max_members,
        notifier=notes,
    )
    run = DirectCommands(pipeline.process_batch)
    conn.send(("ready",))
    held: tuple[Any, ...] | None = None
    try:
        while True:
            try:
                message = held or conn.recv()
            except EOFError:  # the node is gone
                return
            held = None
            if message[0] == "stop":
                return
            _, node, batch = message
            batches = 1
            # batches that queued up while the last one was stored join this one: one transaction
            # and one answer for them all, so a busy child catches up instead of falling behind
            while len(batch) < MERGE_COMMANDS and conn.poll():
                try:
                    held = conn.recv()
                except EOFError:
                    break
                if held[0] != "batch" or held[1] != node:
                    break
                batch, batches, held = batch + held[2], batches + 1, None
            here.node = node
            run(node, batch)
            done, notes.waiting = notes.waiting, []
            # one message for the batches: the reader thread wakes once, not once more for the events
            conn.send(("done", batches, deliveries.copy(), done, _error_totals()))
            deliveries.clear()
    finally:
        store.close()
