"""The node's side of its commands process: start it, hand it batches, replace it when it ends.

A single node runs its broker on the event loop; run on a thread of the node (``inline``), the
commands (store, answers) would share the one GIL with it: on a machine with cores to spare the
event loop would wait for the store's Python and the store for the event loop. ``ChildRunner``
runs them in a child process instead (``main.py``), with the same ``Pipeline``, store and retry
policy, so that the broker and the store each have a core.

The event loop itself writes batches to the child's socket and reads its answers (``framing.py``):
no thread between them, so a batch and its answer wake only the process that has work to do, and
never wait for the GIL behind the event loop. Ingest hands batches over while fewer than
``max_in_flight`` are on their way; ``drain`` waits until every batch handed over is stored, so an
acknowledged command is stored before the node stops.

The child answers each batch with its events, which go to the node's delivery callback; the
messages stored for users not connected to the node go to the node's notifier, on a thread of its
own (it may ask the locator and the store); its count of commands answered with an error
goes to the node's metrics. A child that dies is started again (on a thread: starting one blocks)
and sent every unfinished batch again, in order: every command is idempotent. A child that is hung
rather than dead (it holds batches and has answered nothing for ``workers.commands_stall``
seconds) is killed first; a child waiting to retry a batch (its store is unavailable) says so, and
is not hung. A command that takes down every child it is sent to would do so for ever: once the
oldest batch on its way has seen two children end, its commands go one at a time, each alone in
its transaction, and a command that ends two children on its own is refused (error ``internal``)
so that every other command goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from workers.errors import RunnerError
from workers.events import dumps, internal_error
from workers.metrics import COMMAND_ERRORS, COMMANDS_PROCESS_RESTARTS
from workers.runners import shares_store
from workers.runners.base import Batch, CommandRunner
from workers.runners.child.forkserver import context, kill, main_not_inherited
from workers.runners.child.framing import Frames, frame, loads
from workers.runners.child.main import child_main

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from config.settings import Settings
    from workers.pipeline import Discard, Waiting
    from workers.routing import NodeSender

__all__ = ["ISOLATE_AFTER", "RESTART_DELAY", "ChildRunner"]

log = logging.getLogger(__name__)

RESTART_DELAY = 1.0
"""Seconds between two starts of a child that keeps dying."""

ISOLATE_AFTER = 2
"""Children that ended while the oldest batch was on its way before its commands go one at a time
(one ending can be chance: a kill from outside, memory running short)."""


def _nobody(user: str) -> bool:
    return False


class ChildRunner(CommandRunner):
    """Runs command batches in a child process; driven from the event loop (see the module)."""

    def __init__(
        self,
        settings: Settings,
        *,
        deliver: NodeSender,
        waiting: Waiting | None = None,
        discard: Discard | None = None,
        connected_here: Callable[[str], bool] = _nobody,
        start_timeout: float = 60.0,
        max_in_flight: int = 4,
    ) -> None:
        """``deliver`` publishes the child's events (on the event loop); ``waiting`` is the node's
        notifier, told of the messages stored for users not ``connected_here`` (the notifier, which
        would find the user online and do nothing, is not woken for the others); ``discard`` is the
        node's cleanup job, given the media objects of messages users deleted (on a thread)."""
        super().__init__()
        if not shares_store(settings.store_url):
            raise RunnerError("commands in a child process need a store both processes can open")
        self._settings = settings
        self._deliver = deliver
        self._waiting = waiting
        self._discard = discard
        self._connected_here = connected_here
        self._start_timeout = start_timeout
        self._max_in_flight = max_in_flight
        self._context = context()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        """The child's socket until ``_connect`` hands it to the transport."""
        self._transport: asyncio.Transport | None = None
        self._in_flight: deque[tuple[str, Batch, bool]] = deque()
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
    async def start(self) -> None:
        """Start the child, wait until its store is open, then read and write its socket on this
        event loop (RunnerError if it does not start)."""
        loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        if (self._waiting is not None or self._discard is not None) and self._notify is None:
            self._notify = ThreadPoolExecutor(1, thread_name_prefix="mqchat-notify")
        try:
            await loop.run_in_executor(None, self._spawn)
            await self._connect()
        except OSError as exc:
            await loop.run_in_executor(None, self._reap)
            raise RunnerError(f"cannot start the commands process: {exc}") from exc
        if self._watch is None:
            self._watch = loop.create_task(self._watchdog())

    def _spawn(self) -> None:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=child_main,
            args=(self._settings, theirs, logging.getLogger().getEffectiveLevel()),
            name="mqchat-commands",
            daemon=True,
        )
        with main_not_inherited():
            process.start()
        theirs.close()
        self._errors_seen = {}  # a new child counts from zero
        try:
            ready = ours.poll(self._start_timeout) and loads(ours.recv_bytes()) == ("ready",)
        except (EOFError, OSError):
            ready = False
        if not ready:
            ours.close()
            kill(process)
            raise RunnerError(f"the commands process did not start within {self._start_timeout:.0f} s")
        self._process, self._conn = process, ours

    async def _connect(self) -> None:
        conn, self._conn = self._conn, None
        assert conn is not None
        sock = socket.socket(fileno=os.dup(conn.fileno()))
        conn.close()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.connect_accepted_socket(lambda: Frames(self._answer, self._lost), sock)
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

    def submit(self, node: str, batch: Batch) -> None:
        """Send ``batch`` to the child (on the event loop). A batch sent to a child that dies goes
        again to the next one."""
        if self._closed:
            log.error("stopped: a batch of %d commands is left unstored", len(batch))
            return
        if not self._in_flight:
            self._quiet_since = time.monotonic()
        self._in_flight.append((node, batch, False))
        self.taken += len(batch)
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
        _, batches, node, events, waiting, errors, discarded = message
        if events:
            try:
                self._deliver(node, events)
            except Exception:
                log.exception("could not publish %d events", len(events))
        if discarded and self._discard is not None and self._notify is not None:
            self._notify.submit(self._discard_media, discarded)
        self._done(batches, waiting, errors)

    def _done(
        self, batches: int, waiting: list[tuple[str, str, str]], errors: dict[str, float] | None
    ) -> None:
        """The oldest ``batches`` are stored: their messages go to the notifier, the child's count of
        commands answered with an error to this process's metrics (None: unchanged)."""
        if errors is not None:
            for code, total in errors.items():
                added = total - self._errors_seen.get(code, 0.0)
                if added > 0:
                    COMMAND_ERRORS.labels(code=code).inc(added)
            self._errors_seen = errors
        self.joined += batches - 1
        if waiting and self._notify is not None:
            # waking a thread for every batch costs the event loop, for recipients who are nearly
            # all online (the notifier would do nothing for them): only the others go to it
            here = self._connected_here
            away = [note for note in waiting if not here(note[0])]
            if away:
                self._notify.submit(self._note_waiting, away)
        for _ in range(min(batches, len(self._in_flight))):
            self._in_flight.popleft()
            self._oldest_losses = 0
        if not self._in_flight and self._idle is not None:
            self._idle.set()
        self.on_room()

    def _discard_media(self, keys: list[str]) -> None:
        """The cleanup job's part (on the notifier's thread: enqueueing a job blocks)."""
        assert self._discard is not None
        try:
            self._discard(keys)
        except Exception:
            log.exception("could not hand media objects %s to the cleanup job", keys)

    def _note_waiting(self, waiting: list[tuple[str, str, str]]) -> None:
        """The notifier's part (on its thread: it may ask the locator and the store)."""
        assert self._waiting is not None
        for user, message_id, sender in waiting:
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
            except (RunnerError, OSError) as exc:
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
        self._deliver(node, [(user, dumps(internal_error(cmd.get("id"))), 1, command.get("response"))])

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
    async def drain(self, timeout: float) -> None:
        """Wait for the batches on their way (after ingest has handed over the last ones)."""
        if self._idle is None:
            return
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            log.error("%d batches of commands were not finished at stop", len(self._in_flight))

    async def close(self) -> None:
        """Stop the child (and the notifier's thread, once it has noted what it was given)."""
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
            kill(process)
