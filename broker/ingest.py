"""Ingest: client commands from the broker's event loop into the job queue.

``accept`` runs on the event loop for each PUBLISH before it is acknowledged, so an acknowledged
command is never lost by a clean stop: it checks the topic, validates the payload (a bad one is
answered with an ``error`` event at once) and adds the command to a chunk that the event loop hands
over once per pass. With a job queue (or commands run in this process) a thread takes the chunk
(one queue operation and one thread wake-up for all the commands read in that pass, instead of one
each) and enqueues them as jobs of up to ``batch_size``, so the event loop never waits on the job
queue's I/O. With a ``Sink`` (the commands process, ``workers/command_process.py``) the event
loop hands batches of up to ``batch_size`` straight to it, whenever it has room, and keeps the
rest. At most ``queue_size`` commands wait; past that a command is refused with ``busy``. ``stop``
(``drain`` with a sink) hands over what was accepted before returning.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

from broker.throttle import RateLimiter
from broker.validation import InvalidCommand, parse_command
from client_sdk.contract import VERSION, ErrorCode, Topics
from workers.metrics import COMMANDS, REFUSED

__all__ = ["Ingest"]

log = logging.getLogger(__name__)

_STOP = object()


@cache
def _counter(kind: str) -> Any:
    """The accepted-commands counter of one (validated) command type: ``labels`` on every command
    was 4% of the event loop's samples at 2,000 messages/s."""
    return COMMANDS.labels(type=kind)


Reply = Callable[[str, dict[str, Any]], None]
"""Publish a live event to a user's inbox on this node (called on the event loop)."""
SendBatch = Callable[[str, list[dict[str, Any]]], None]
"""Enqueue one job with a batch of commands (called on the ingest thread; may block)."""


class Sink(Protocol):
    """Takes batches on the event loop, never blocking (``CommandProcess``)."""

    on_room: Callable[[], None]

    def room(self) -> bool: ...
    def submit(self, node: str, batch: list[dict[str, Any]]) -> None: ...


class Ingest:
    def __init__(
        self,
        *,
        node_id: str,
        topics: Topics,
        max_payload_bytes: int,
        queue_size: int,
        batch_size: int,
        send_batch: SendBatch | None = None,
        sink: Sink | None = None,
        linger: float = 0.0,
        reply: Reply,
        on_action: Callable[[str], None] = lambda user: None,
        rate: RateLimiter | None = None,
    ) -> None:
        self._node = node_id
        self._topics = topics
        self._max_bytes = max_payload_bytes
        self._batch_size = batch_size
        self._linger = linger
        if (send_batch is None) == (sink is None):
            raise ValueError("ingest needs either send_batch or a sink")
        self._send_batch = send_batch
        self._sink = sink
        self._held: list[dict[str, Any]] = []
        """With a sink: commands accepted and not handed over yet (the sink had no room)."""
        self._reply = reply
        self._on_action = on_action
        self._rate = rate
        self._limit = queue_size
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._chunk: list[dict[str, Any]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._taken = 0
        """Commands the thread has taken (written by the thread only; ``accepted`` by the loop only)."""
        self._thread: threading.Thread | None = None
        self.accepted = 0
        self.refused = 0

    # ------------------------------------------------------------ event loop side
    def accept(self, user: str | None, topic: str, data: bytes | bytearray) -> None:
        """Take one PUBLISH of an authenticated ``user``; never raises."""
        if user is None:
            return
        if topic != self._topics.outbox(user):
            self._refuse(
                user,
                ErrorCode.FORBIDDEN,
                f"you may publish only to {self._topics.outbox(user)}, not {topic}",
                None,
            )
            return
        self._on_action(user)
        try:
            command = parse_command(data, max_bytes=self._max_bytes)
        except InvalidCommand as exc:
            self._refuse(user, exc.code, exc.message, exc.ref)
            return
        if self._rate is not None and not self._rate.allow(user):
            self._refuse(
                user, ErrorCode.RATE_LIMITED, "too many commands; slow down and send it again", command["id"]
            )
            return
        if self.pending >= self._limit:
            self._refuse(user, ErrorCode.BUSY, "the server is busy; send it again later", command["id"])
            return
        self._add({"user": user, "cmd": command})
        self.accepted += 1
        _counter(command["type"]).inc()

    def _add(self, item: dict[str, Any]) -> None:
        if not self._chunk:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:  # not on an event loop: hand it over at once
                if self._sink is not None:
                    self._held.append(item)
                else:
                    self._queue.put([item])
                return
            loop.call_soon(self._flush)
        self._chunk.append(item)

    def _flush(self) -> None:
        """Hand the commands accepted in this pass of the event loop over (with a sink: as many
        batches as it has room for, with any held back before)."""
        if self._sink is not None:
            self._held.extend(self._chunk)
            self._chunk = []
            self._hand_over()
        elif self._chunk:
            self._queue.put(self._chunk)
            self._chunk = []

    def _hand_over(self) -> None:
        """Batches to the sink while it has room (on the event loop)."""
        sink = self._sink
        assert sink is not None
        while self._held and sink.room():
            batch, self._held = self._held[: self._batch_size], self._held[self._batch_size :]
            sink.submit(self._node, batch)
            self._taken += len(batch)

    def _refuse(self, user: str, code: ErrorCode, message: str, ref: str | None) -> None:
        self.refused += 1
        REFUSED.labels(code=code.value).inc()
        log.info("refused a command of %s: %s %s", user, code.value, message)
        self._reply(user, {"v": VERSION, "type": "error", "ref": ref, "code": code.value, "message": message})

    # ------------------------------------------------------------ thread side
    def start(self) -> None:
        if self._sink is not None:
            self._sink.on_room = self._hand_over
            return
        if self._thread is not None:
            raise RuntimeError("ingest already started")
        self._thread = threading.Thread(target=self._run, name="mqchat-ingest", daemon=True)
        self._thread.start()

    async def drain(self, timeout: float = 30.0) -> None:
        """With a sink: hand over everything accepted so far (on the event loop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._flush()
        while self._held or self._chunk:
            if loop.time() > deadline:
                log.error("ingest did not drain within %.0f s; %d commands left", timeout, self.pending)
                return
            await asyncio.sleep(0.01)
            self._flush()

    def stop(self, timeout: float = 30.0) -> None:
        """Enqueue everything accepted so far, then stop the thread (call it off the event loop)."""
        if self._thread is None:
            return
        self._flush_from_thread(timeout)
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("ingest did not drain within %.0f s; %d commands left", timeout, self._queue.qsize())
        self._thread = None

    def _flush_from_thread(self, timeout: float) -> None:
        """Have the event loop hand over its last chunk (it may hold one until its next pass)."""
        loop = self._loop
        if loop is None or not self._chunk:
            return
        if loop.is_closed() or not loop.is_running():
            self._flush()  # nothing else touches the chunk any more
            return
        done = threading.Event()

        def flush() -> None:
            self._flush()
            done.set()

        try:
            loop.call_soon_threadsafe(flush)
        except RuntimeError:  # closed in the meantime
            self._flush()
            return
        if not done.wait(timeout):
            log.error("the event loop did not hand over its last %d commands", len(self._chunk))

    @property
    def pending(self) -> int:
        """Commands accepted and not yet taken by the thread."""
        return self.accepted - self._taken

    def _run(self) -> None:
        stopping = False
        batch: list[dict[str, Any]] = []
        while not stopping:
            free_since = time.monotonic()
            chunk = self._queue.get()
            if chunk is _STOP:
                break
            batch.extend(chunk)
            # Group commit under load: when this chunk came within ``linger`` of the last batch,
            # it waits up to ``linger`` for others to join it (one transaction for all); when the
            # thread was idle longer than that, the load is light and the command goes at once.
            now = time.monotonic()
            until = now + self._linger if now - free_since < self._linger else now
            while len(batch) < self._batch_size:
                try:
                    left = until - time.monotonic()
                    chunk = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if chunk is _STOP:
                    stopping = True
                    break
                batch.extend(chunk)
            while batch:
                head, batch = batch[: self._batch_size], batch[self._batch_size :]
                self._enqueue(head)
                self._taken += len(head)

    def _enqueue(self, batch: list[dict[str, Any]]) -> None:
        assert self._send_batch is not None
        delay = 0.1
        while True:
            try:
                self._send_batch(self._node, batch)
                return
            except Exception:
                # the job queue is down: keep the batch (it was acknowledged) and try again
                log.exception("cannot enqueue %d commands; retrying in %.1f s", len(batch), delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
