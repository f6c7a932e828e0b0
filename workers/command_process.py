"""Client commands in a child process of a single node (``workers.commands_process``).

Without it, a single node runs its broker on the event loop and the commands (validation done,
then store, answers, routing) on the ingest thread. Both share one GIL: on a machine with cores to
spare the event loop waits for the store's Python and the store waits for the event loop, and the
node never uses more than one core. ``CommandProcess`` runs the commands in a child process instead, with the
same ``Pipeline``, the same store and the same retry policy (``DirectCommands``), so that the
broker and the store each have a core.

The event loop itself writes batches to the child's socket and reads its answers (a transport on
the socket, framed as ``multiprocessing`` frames them): no thread between them, so a batch and its
answer wake only the process that has work to do, and never wait for the GIL behind the event
loop (the ingest and reader threads this replaced cost 27 ms at the median at 2,000 chat msg/s
on a 2-core machine, and at low rates a wake-up of each per batch). Ingest hands batches over
while fewer than ``max_in_flight`` are on their way; the node stops only once every batch handed
over is stored, so an acknowledged command is stored before the node stops.

The child sends, with each batch's "done", its events as the node's delivery hand-offs, routed
to the node that received the command (the child does not know who is online: an event for a
user who is not connected finds no subscriber and waits in the inbox log), the messages stored
for recipients, which go to the node's notifier on a thread of its own (it may ask the session
service and the store), and its count of commands answered with an error, for the node's metrics.
Batches that wait in the socket while the child stores one are stored together next, in one
transaction. A child that dies is started again (on a thread: starting one blocks) and sent every
unfinished batch again, in order: every command is idempotent. A child that is hung rather than
dead (it holds batches and has answered nothing for ``workers.commands_stall`` seconds) is killed
first; a child waiting to retry a batch (its store is unavailable) says so, and is not hung.
A command that takes down every child it is sent to would do so for ever: once the oldest batch
on its way has seen two children end, its commands go one at a time, each alone in its
transaction, and a command that ends two children on its own is refused (error ``internal``) so
that every other command goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import struct
import sys
import time
import types
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import TYPE_CHECKING, Any

from workers.direct import DirectCommands
from workers.fastjson import dumps
from workers.metrics import COMMAND_ERRORS, COMMANDS_PROCESS_RESTARTS
from workers.pipeline import internal_error
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

ISOLATE_AFTER = 2
"""Children that ended while the oldest batch was on its way before its commands go one at a time
(one ending can be chance: a kill from outside, memory running short)."""

_SIZE = struct.Struct("!i")
_LONG_SIZE = struct.Struct("!Q")


def shares_store(url: str) -> bool:
    """Whether two processes can open the store at ``url`` (not an in-memory SQLite database)."""
    if not url.startswith("sqlite"):
        return True
    from sqlalchemy.engine import make_url

    from workers.stores.sql.base import sqlite_in_memory

    return not sqlite_in_memory(make_url(url))


def frame(message: Any) -> bytes:
    """``message`` as ``multiprocessing.Connection.send`` writes it: a length, then the pickle."""
    payload = bytes(ForkingPickler.dumps(message))
    if len(payload) > 0x7FFFFFFF:
        return _SIZE.pack(-1) + _LONG_SIZE.pack(len(payload)) + payload
    return _SIZE.pack(len(payload)) + payload


class _Frames(asyncio.Protocol):
    """The parent's end of the child's socket: whole messages out of the bytes read."""

    def __init__(
        self, on_message: Callable[[Any], None], on_lost: Callable[[Exception | None], None]
    ) -> None:
        self._on_message = on_message
        self._on_lost = on_lost
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _SIZE.size:
            size = _SIZE.unpack_from(buffer, start)[0]
            head = _SIZE.size
            if size == -1:
                if len(buffer) - start < head + _LONG_SIZE.size:
                    break
                size = _LONG_SIZE.unpack_from(buffer, start + head)[0]
                head += _LONG_SIZE.size
            if len(buffer) - start < head + size:
                break
            message = ForkingPickler.loads(bytes(buffer[start + head : start + head + size]))
            start += head + size
            self._on_message(message)
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(exc)


class CommandProcess:
    """Runs command batches in a child process; driven from the event loop (see the module).

    ``start`` (blocking: call it on a thread) starts the child, ``attach`` (on the event loop)
    connects to it; then ``submit`` a batch whenever ``room()``; ``on_room`` is called when a batch
    is done; ``close`` waits for the batches on their way and stops the child.
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
        self._context = _context()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        """The child's socket until ``attach`` hands it to the transport."""
        self._transport: asyncio.Transport | None = None
        self._in_flight: deque[tuple[str, list[dict[str, Any]], bool]] = deque()
        """Batches sent and not yet done, oldest first: (node, commands, whether it goes alone)."""
        self._oldest_losses = 0
        """Children that ended while the oldest batch on its way was not done."""
        self._idle: asyncio.Event | None = None
        self._errors_seen: dict[str, float] = {}
        """The child's ``COMMAND_ERRORS`` totals already added here, by code."""
        self._notify: ThreadPoolExecutor | None = None
        self._restart: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._stall = settings.workers.commands_stall
        self._quiet_since = 0.0
        """Monotonic time of the child's last answer, or of the batch that ended an idle spell."""
        self._grace = 0.0
        """The wait before a retry that the child announced last (it is not hung meanwhile)."""
        self._killed = False
        """The child that ended was killed here as hung (for the restart's reason)."""
        self._closed = False
        self.on_room: Callable[[], None] = lambda: None
        """Called on the event loop when a batch is done (there is room for another)."""
        self.connected_here: Callable[[str], bool] = lambda user: False
        """Whether a user is connected to this node (event loop): the notifier, which would find the
        user online and do nothing, is not woken for their messages."""
        self.restarts = 0
        """Children started again after one died (or was killed as hung)."""
        self.hung = 0
        """Children killed because they held batches and answered nothing for too long."""
        self.joined = 0
        """Batches the child stored together with the one before them (they waited in the pipe)."""

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    # ------------------------------------------------------------------ starting
    def start(self) -> None:
        """Start the child and wait until its store is open (blocking; RuntimeError if it can't)."""
        self._spawn()

    async def attach(self) -> None:
        """Read and write the child's socket on this event loop (after ``start``)."""
        self._idle = asyncio.Event()
        self._idle.set()
        if self._waiting is not None and self._notify is None:
            self._notify = ThreadPoolExecutor(1, thread_name_prefix="mqchat-notify")
        await self._connect()
        if self._watch is None:
            self._watch = asyncio.get_running_loop().create_task(self._watchdog())

    def _spawn(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=_child_main,
            args=(self._settings, theirs, logging.getLogger().getEffectiveLevel()),
            name="mqchat-commands",
            daemon=True,
        )
        with _main_not_inherited():
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

    async def _connect(self) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        conn.close()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(lambda: _Frames(self._answer, self._lost), sock)
        self._transport = transport

    # ------------------------------------------------------------------ batches
    def room(self) -> bool:
        """Whether a batch can be submitted now (connected, fewer than ``max_in_flight`` on their way)."""
        transport = self._transport
        return (
            transport is not None
            and not transport.is_closing()
            and len(self._in_flight) < self._max_in_flight
            and not self._closed
        )

    def submit(self, node: str, batch: list[dict[str, Any]]) -> None:
        """Send ``batch`` to the child (on the event loop). A batch sent to a child that dies goes
        again to the next one."""
        if self._closed:
            log.error("stopped: a batch of %d commands is left unstored", len(batch))
            return
        if not self._in_flight:
            self._quiet_since = time.monotonic()
        self._in_flight.append((node, batch, False))
        if self._idle is not None:
            self._idle.clear()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(frame(("batch", node, batch, False)))

    def _answer(self, message: Any) -> None:
        """What the child says: a batch (or several stored together) is done, or it waits to retry."""
        self._quiet_since, self._grace = time.monotonic(), 0.0
        if message[0] == "retrying":
            self._grace = message[1]
            return
        _, batches, deliveries, stored, errors = message
        for node, items in deliveries:
            try:
                self._send_to_node(node, items)
            except Exception:
                log.exception("could not publish %d events", len(items))
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
        if stored and self._notify is not None:
            # a thread's wake-up per batch cost the event loop 5% at 2,000 chat messages/s, for
            # recipients who were nearly all online: only the others go to the notifier
            here = self.connected_here
            away = [note for note in stored if not here(note[0])]
            if away:
                self._notify.submit(self._note_waiting, away)
        for _ in range(min(batches, len(self._in_flight))):
            self._in_flight.popleft()
            self._oldest_losses = 0
        if not self._in_flight and self._idle is not None:
            self._idle.set()
        self.on_room()

    def _note_waiting(self, stored: list[tuple[str, str, str]]) -> None:
        """The notifier's part (on its thread: it may ask the session service and the store)."""
        assert self._waiting is not None
        for user, message_id, sender in stored:
            try:
                self._waiting(user, message_id, sender)
            except Exception:
                log.exception("could not note a message waiting for %s", user)

    # ------------------------------------------------------------------ a child that dies
    def _lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._closed:
            return
        if self._in_flight:
            self._oldest_losses += 1
        log.error("the commands process ended (%r); starting another", exc)
        self._restart = asyncio.get_running_loop().create_task(self._replace())

    async def _replace(self) -> None:
        """Start another child and send it every unfinished batch, in order."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await loop.run_in_executor(None, self._reap)
            try:
                await loop.run_in_executor(None, self._spawn)
                await self._connect()
            except (RuntimeError, OSError) as exc:
                log.error("could not start the commands process (%s); trying again", exc)
                await asyncio.sleep(RESTART_DELAY)
                continue
            self.restarts += 1
            COMMANDS_PROCESS_RESTARTS.labels(reason="hung" if self._killed else "died").inc()
            self._killed = False
            transport = self._transport
            assert transport is not None
            self._quiet_since = time.monotonic()
            self._isolate()
            for node, batch, alone in self._in_flight:
                transport.write(frame(("batch", node, batch, alone)))
            if not self._in_flight and self._idle is not None:
                self._idle.set()
            self.on_room()
            return

    def _isolate(self) -> None:
        """After ``ISOLATE_AFTER`` children ended with the oldest batch on its way: its commands go
        one at a time, each alone; if it already was one command alone, it is refused."""
        if self._oldest_losses < ISOLATE_AFTER or not self._in_flight:
            return
        self._oldest_losses = 0
        node, batch, alone = self._in_flight.popleft()
        if alone and len(batch) == 1:
            self._refuse(node, batch[0])
            return
        log.error(
            "%d children of the commands process ended with a batch of %d commands on its way;"
            " its commands go one at a time",
            ISOLATE_AFTER,
            len(batch),
        )
        self._in_flight.extendleft((node, [command], True) for command in reversed(batch))

    def _refuse(self, node: str, command: dict[str, Any]) -> None:
        """Answer a command that took down the commands process twice on its own with an error
        (commands reach here validated: a user, and a command whose ``id`` is its reference)."""
        user, cmd = command["user"], command["cmd"]
        log.error("a command of %s ended two commands processes on its own; refused: %.300r", user, cmd)
        self._send_to_node(node, [(user, dumps(internal_error(cmd.get("id"))), 1)])

    async def _watchdog(self) -> None:
        """Kill a child that holds batches and has answered nothing for ``stall`` seconds: hung, not
        dead. Its socket then closes, and ``_lost`` starts another child, which gets the batches."""
        while not self._closed:
            await asyncio.sleep(self._stall / 4)
            process, quiet = self._process, time.monotonic() - self._quiet_since
            if (
                not self._in_flight
                or self._transport is None
                or process is None
                or quiet <= self._stall + self._grace
            ):
                continue
            log.error(
                "the commands process (pid %s) has answered nothing for %.0f s with %d batches"
                " on their way; killing it",
                process.pid,
                quiet,
                len(self._in_flight),
            )
            self.hung += 1
            self._killed = True
            self._quiet_since = time.monotonic()
            process.kill()

    # ------------------------------------------------------------------ stopping
    async def close(self, timeout: float = 60.0) -> None:
        """Wait for the batches on their way, then stop the child (after ingest has drained)."""
        if self._idle is not None:
            try:
                await asyncio.wait_for(self._idle.wait(), timeout)
            except TimeoutError:
                log.error("%d batches of commands were not finished at stop", len(self._in_flight))
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        if self._restart is not None:
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restart
        transport, self._transport = self._transport, None
        if transport is not None and not transport.is_closing():
            transport.write(frame(("stop",)))
            transport.close()
        loop = asyncio.get_running_loop()
        process = self._process
        if process is not None:
            await loop.run_in_executor(None, process.join, 10)
        await loop.run_in_executor(None, self._reap)
        if self._notify is not None:
            await loop.run_in_executor(None, self._notify.shutdown)

    def _reap(self) -> None:
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is not None:
            _kill(process)


_CHILD_MODULES = [
    "config.settings",
    "workers.command_process",
    "workers.pipeline",
    "workers.routing",
    "workers.stores.sql",
]
"""What the fork server imports before its first fork (what a child needs to start)."""


@contextlib.contextmanager
def _main_not_inherited() -> Iterator[None]:
    """Start a child without the parent's ``__main__``: multiprocessing would run the main script
    again in it (all of the node's imports, a second or so, for nothing: the child's code is here).
    ``Process.start`` reads it synchronously, so it is hidden for that call only."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _context() -> multiprocessing.context.ForkServerContext:
    """Children come from a fork server that has imported the child's modules once: a new child
    (a node starting, or a child replaced after it died) is a fork of that single-threaded process,
    ready in milliseconds instead of a second of imports. A process with threads is never forked."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_CHILD_MODULES)
    return context


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
    # a wait to retry a batch (the store is unavailable) is not a hang: the node hears of it
    run = DirectCommands(pipeline.process_batch, on_retry=lambda delay: conn.send(("retrying", delay)))
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
            _, node, batch, alone = message
            batches = 1
            # batches that queued up while the last one was stored join this one: one transaction
            # and one answer for them all, so a busy child catches up instead of falling behind
            # (not one that must go alone: the node is finding the command that ends children)
            while not alone and len(batch) < MERGE_COMMANDS and conn.poll():
                try:
                    held = conn.recv()
                except EOFError:
                    break
                if held[0] != "batch" or held[1] != node or held[3]:
                    break
                batch, batches, held = batch + held[2], batches + 1, None
            here.node = node
            run(node, batch)
            done, notes.waiting = notes.waiting, []
            # one message for the batches: the node reads one answer, not one more for the events
            conn.send(("done", batches, deliveries.copy(), done, _error_totals()))
            deliveries.clear()
    finally:
        store.close()
