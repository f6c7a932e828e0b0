"""Ingest: client commands from the broker's event loop to the node's command runner.

``accept`` runs on the event loop for each PUBLISH before it is acknowledged, so an acknowledged
command is never lost by a clean stop: it checks the topic, validates the payload (a bad one is
answered with an ``error`` event at once) and adds the command to a chunk that the event loop hands
over once per pass (one hand-over for all the commands read in that pass, instead of one each;
a chunk of receipts only waits a little longer, for the next command: see ``_add``):
batches of up to ``batch_size`` go to the runner (``workers/runners/``) while it has room, and the
rest waits for its ``on_room``. At most ``queue_size`` commands wait, here or in the runner's hands
before it has taken them (``runner.taken``); past that a command is refused with ``busy``.
``drain`` hands over everything accepted before returning.

An MQTT 5 command may name a Response Topic (``props``): its direct answer goes there, not to the
inbox (``broker/replies.py`` says which topics a user may name); the target rides in the command's
envelope (``"response"``) to the pipeline and comes back with the answer. ``accept`` returns the
PUBACK reason code of MQTT 5 (3.1.1 connections ignore it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

from broker.mqtt.properties import PublishProps
from broker.replies import RefusedReply, reply_target
from broker.throttle import RateLimiter
from broker.validation import InvalidCommand, parse_command
from client_sdk.contract import ErrorCode, Topics
from workers.answers import PublishOptions
from workers.events import error_event
from workers.metrics import COMMANDS, REFUSED

if TYPE_CHECKING:
    from workers.runners import Batch, CommandRunner

__all__ = ["ACCEPTED", "NOT_AUTHORIZED", "PAYLOAD_FORMAT_INVALID", "QUOTA_EXCEEDED", "Ingest"]

log = logging.getLogger(__name__)


@cache
def _counter(kind: str) -> Any:
    """The accepted-commands counter of one (validated) command type, looked up once: ``labels``
    on every command was a visible share of the event loop's time under load."""
    return COMMANDS.labels(type=kind)


Reply = Callable[[str, dict[str, Any], PublishOptions | None], None]
"""Publish a live event to a user's inbox on this node, or to the reply target given (called on
the event loop)."""

# What ``accept`` answers: the MQTT 5 PUBACK reason codes of its verdicts (MQTT 5.0, 3.4.2.1)
ACCEPTED = 0x00
NOT_AUTHORIZED = 0x87
"""Not the user's outbox, or a Response Topic that is not the user's."""
QUOTA_EXCEEDED = 0x97
"""``rate_limited`` or ``busy``: send it again later; or more User Properties than the contract
carries (``too_large``)."""
PAYLOAD_FORMAT_INVALID = 0x99
"""Not a command: not JSON, or not what the contract says."""
_REPLY_REFUSED = {ErrorCode.FORBIDDEN: NOT_AUTHORIZED, ErrorCode.TOO_LARGE: QUOTA_EXCEEDED}


class Ingest:
    def __init__(
        self,
        *,
        node_id: str,
        topics: Topics,
        max_payload_bytes: int,
        queue_size: int,
        batch_size: int,
        runner: CommandRunner,
        reply: Reply,
        on_action: Callable[[str], None] = lambda user: None,
        rate: RateLimiter | None = None,
        on_platform: Callable[[str, str, str], None] | None = None,
        linger: float = 0.0,
        receipt_linger: float = 0.0,
    ) -> None:
        """``on_platform(user, device, platform)``: a device registered for push (see ``accept``).
        ``linger``: seconds the first command of a batch waits for others to join it (group commit
        for a runner that does not wait itself: the commands process); 0: the end of the loop pass.
        ``receipt_linger``: seconds a batch of receipts only waits for another command to join it
        (see ``_add``); 0: as any other batch."""
        self._node = node_id
        self._topics = topics
        self._max_bytes = max_payload_bytes
        self._batch_size = batch_size
        self._runner = runner
        runner.on_room = self._hand_over
        self._held: Batch = []
        """Commands accepted and not handed over yet (the runner had no room)."""
        self._reply = reply
        self._on_action = on_action
        self._rate = rate
        self._on_platform = on_platform
        self._linger = linger
        self._receipt_linger = receipt_linger
        self._waiting: asyncio.TimerHandle | None = None
        """The flush of a chunk of receipts only, waiting for another command (``receipt_linger``)."""
        self._limit = queue_size
        self._chunk: Batch = []
        self._counts: dict[str, int] = {}
        """Commands accepted by type since they were last added to ``COMMANDS`` (once per hand-over:
        a metric's increment takes a lock, dearer than a dict's)."""
        self.accepted = 0
        self.refused = 0

    def accept(
        self,
        user: str | None,
        topic: str,
        data: bytes | bytearray,
        client_id: str | None = None,
        props: PublishProps | None = None,
    ) -> int:
        """Take one PUBLISH of an authenticated ``user`` from client ``<user>/<device>``; never
        raises. Returns its MQTT 5 PUBACK reason code: ``ACCEPTED``, or that of the refusal, which
        is answered with an ``error`` event too (on the reply target if the command named a valid
        one, else on the inbox).

        A ``push_register`` also says which platform the device is: it goes to ``on_platform`` here,
        where the device is known (commands name no device), to be recorded with the device."""
        if user is None:
            return NOT_AUTHORIZED
        if topic != self._topics.outbox(user):
            self._refuse(
                user,
                ErrorCode.FORBIDDEN,
                f"you may publish only to {self._topics.outbox(user)}, not {topic}",
                None,
            )
            return NOT_AUTHORIZED
        self._on_action(user)
        reply: PublishOptions | None = None
        wrong_reply: RefusedReply | None = None
        if props is not None:
            try:
                reply = reply_target(self._topics, user, props)
            except RefusedReply as exc:
                wrong_reply = exc  # answered on the inbox, with the command's id if it has one
        try:
            command = parse_command(data, max_bytes=self._max_bytes)
        except InvalidCommand as exc:
            if wrong_reply is not None:
                self._refuse(user, wrong_reply.code, wrong_reply.message, exc.ref)
                return _REPLY_REFUSED[wrong_reply.code]
            self._refuse(user, exc.code, exc.message, exc.ref, reply)
            return PAYLOAD_FORMAT_INVALID
        ref = command["id"]
        if wrong_reply is not None:
            self._refuse(user, wrong_reply.code, wrong_reply.message, ref)
            return _REPLY_REFUSED[wrong_reply.code]
        if self._rate is not None and not self._rate.allow(user):
            self._refuse(
                user, ErrorCode.RATE_LIMITED, "too many commands; slow down and send it again", ref, reply
            )
            return QUOTA_EXCEEDED
        if self.pending >= self._limit:
            self._refuse(user, ErrorCode.BUSY, "the server is busy; send it again later", ref, reply)
            return QUOTA_EXCEEDED
        kind = command["type"]
        counts = self._counts
        counts[kind] = counts.get(kind, 0) + 1
        self._add(
            {"user": user, "cmd": command}
            if reply is None
            else {"user": user, "cmd": command, "response": reply},
            lingers=kind == "receipt",
        )
        self.accepted += 1
        if kind == "push_register" and client_id and self._on_platform is not None:
            self._on_platform(user, client_id.partition("/")[2], command["platform"])
        return ACCEPTED

    @property
    def pending(self) -> int:
        """Commands accepted and not yet taken by the runner."""
        return self.accepted - self._runner.taken

    def _add(self, item: dict[str, Any], *, lingers: bool = False) -> None:
        """Add ``item`` to the chunk, and see that the chunk is handed over.

        A receipt (``lingers``) comes back a few milliseconds after the message it acknowledges, and
        nobody waits for its answer the way a sender waits for ``sent``: at low rates a chunk of
        receipts only waits up to ``receipt_linger`` for the next command of any kind, so that both
        share one hand-over, one transaction and one answer (each batch wakes the runner and its
        answer wakes the event loop, which costs more than the batch's work at low rates). The first
        command that does not linger ends the wait."""
        waiting = self._waiting
        if not self._chunk:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on an event loop: hand it over at once
                self._held.append(item)
                self._hand_over()
                return
            if lingers and self._receipt_linger:
                self._waiting = loop.call_later(self._receipt_linger, self._flush)
            else:
                self._schedule(loop)
        elif waiting is not None and not lingers:
            waiting.cancel()
            self._waiting = None
            self._schedule(asyncio.get_running_loop())
        self._chunk.append(item)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._linger:
            loop.call_later(self._linger, self._flush)
        else:
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Hand the commands accepted in this pass of the event loop over, after any held back."""
        waiting, self._waiting = self._waiting, None
        if waiting is not None:  # handed over early (``drain``): the wait is over
            waiting.cancel()
        chunk, self._chunk = self._chunk, []
        if self._held:
            self._held += chunk
        else:
            self._held = chunk
        self._hand_over()

    def _hand_over(self) -> None:
        """Batches to the runner while it has room."""
        if self._counts:
            for kind, count in self._counts.items():
                _counter(kind).inc(count)
            self._counts.clear()
        held, size, runner = self._held, self._batch_size, self._runner
        while held and runner.room():
            if len(held) > size:
                batch, held = held[:size], held[size:]
            else:
                batch, held = held, []
            runner.submit(self._node, batch)
        self._held = held

    def _refuse(
        self,
        user: str,
        code: ErrorCode,
        message: str,
        ref: str | None,
        reply: PublishOptions | None = None,
    ) -> None:
        self.refused += 1
        REFUSED.labels(code=code.value).inc()
        log.info("refused a command of %s: %s %s", user, code.value, message)
        self._reply(user, error_event(ref, code, message), reply)

    async def drain(self, timeout: float = 30.0) -> None:
        """Hand over everything accepted so far (on the event loop)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._flush()
        while self._held or self._chunk:
            if loop.time() > deadline:
                log.error("ingest did not drain within %.0f s; %d commands left", timeout, self.pending)
                return
            await asyncio.sleep(0.01)
            self._flush()
