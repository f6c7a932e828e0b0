"""When each connection's packets are written: corked batches, held PUBACKs and the flush timer.

A socket write is a system call, and writing each packet alone was a large part of the node's
time. So the broker owns one ``WriteScheduler`` and every connection's handler writes through it:

- **Corked batches.** Inside ``corked()`` (a batch of events from the workers) a connection's
  deliveries are held, and written at the end of the block in one write per connection.
- **Held PUBACKs.** The PUBACKs of one read wait up to ``HOLD_DELAY`` to share that write: the
  answer to the command they acknowledge usually follows within milliseconds. Each connection
  waits for its own deadline; a batch that gives the connection nothing does not cut it short.
  One timer writes the holds whose deadline has come, firing at most once per ``_HOLD_TICK``.
- **Order.** A packet written outside a batch takes what is held with it, and the reader flushes
  what is held before it handles a packet whose answer must follow the held ones.

The per-connection part (what is held, and whether the connection is on this batch's list) lives
on the connection itself, as two attributes only this module touches: one attribute access per
packet, not a dict lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["HOLD_DELAY", "Corkable", "WriteScheduler"]

HOLD_DELAY = 0.015
"""Seconds a PUBACK may wait to share a write with the packets that follow it.

Long enough for a command's answer to catch up with its PUBACK at the benchmarked rates, short
enough that a PUBACK with no answer coming costs a client little (benchmarks/RESULTS.md has the
figures behind the choice). A client limited to 20 unacknowledged publishes can still send
20 / (``HOLD_DELAY`` + ``_HOLD_TICK``) a second."""

_HOLD_SLACK = 0.001
"""Seconds early a held connection may be written, so that one timer serves the holds ending together."""

_HOLD_TICK = 0.004
"""Least seconds between two firings of the flush timer: the holds that end in between are written
together at the next firing, up to this late. With many connections holding, their deadlines are
fractions of a millisecond apart, and each firing makes a new timer handle and runs a loop callback,
which cost as much as several holds; a PUBACK written a few milliseconds after its deadline costs
its client nothing it would notice."""


class Corkable(Protocol):
    """A connection whose writes the scheduler holds back (``MqchatHandler``)."""

    held: bytearray | None
    """The packets held back, in order; None when nothing is (set by the scheduler only)."""
    due: bool
    """On the list of connections written at the end of the current batch (the scheduler's)."""
    writer: Any
    """amqtt's writer adapter, None once the connection is detached."""


class WriteScheduler:
    """Corks, holds and flushes the connections' writes (event loop only)."""

    __slots__ = ("_corked", "_due", "_holding", "_loop", "_timer")

    def __init__(self) -> None:
        self._corked = False
        self._due: list[Corkable] = []
        """Connections given something in the current ``corked`` block, written at its end."""
        self._holding: dict[Corkable, float] = {}
        """Connections holding PUBACKs outside a batch, each with the loop time by which they are
        written; in that order, since every hold is ``HOLD_DELAY`` long."""
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop, from the first hold on: ``get_running_loop()`` makes a getpid system call."""

    @contextmanager
    def corked(self) -> Iterator[None]:
        """Hold the deliveries made in this block; at its end, write each connection's at once.

        A batch of events that gives a connection several packets then costs it one system call
        instead of one per packet, together with the PUBACKs held for it. Nothing else writes to a
        connection inside such a block, so every connection's packets keep their order. Nested
        blocks belong to the outermost.
        """
        if self._corked:
            yield
            return
        self._corked = True
        try:
            yield
        finally:
            self._corked = False
            due, self._due = self._due, []
            flush = self.flush
            for connection in due:
                flush(connection)

    def send(self, connection: Corkable, packet: bytes) -> None:
        """A delivery: at the end of the current batch, if one is being made; else now, with what
        the connection holds."""
        held = connection.held
        if self._corked:
            if held is None:
                connection.held = bytearray(packet)
            else:
                held += packet
            if not connection.due:
                connection.due = True
                self._due.append(connection)
        elif held is not None:
            held += packet
            self.flush(connection)
        else:
            connection.writer.write(packet)

    def hold(self, connection: Corkable, data: bytes) -> None:
        """PUBACKs: written with the connection's next delivery (at the end of the batch that gives
        it one), with the next packet written outside a batch, or after ``HOLD_DELAY`` (and up to
        ``_HOLD_TICK`` more), whichever comes first.

        A connection holding only PUBACKs waits for its own deadline, not for the end of whatever
        batch of deliveries comes next: the answers to its commands are usually in a later batch,
        and a PUBACK flushed alone costs the connection a system call of its own.
        """
        held = connection.held
        if held is not None:  # already due at a batch's end or a deadline
            held += data
            return
        connection.held = bytearray(data)
        if self._corked:  # a read while a batch awaits: at its end
            connection.due = True
            self._due.append(connection)
            return
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        holding = self._holding
        holding.pop(connection, None)  # an earlier hold since written: its deadline goes
        deadline = loop.time() + HOLD_DELAY
        holding[connection] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._flush_expired)

    def flush(self, connection: Corkable) -> None:
        """Write what ``connection`` holds, in one go (nothing when it holds nothing)."""
        held, connection.held = connection.held, None
        connection.due = False
        holding = self._holding
        # written before its deadline (the usual case: the answer came): the deadline goes, and
        # with the last one the timer, which would otherwise wake the loop for nothing, once per
        # command at low rates
        if holding and holding.pop(connection, None) is not None and not holding and self._timer is not None:
            self._timer.cancel()
            self._timer = None
        writer = connection.writer
        if held and writer is not None:
            writer.write(held)  # nothing when closed: the deliveries end with the connection

    def _flush_expired(self) -> None:
        """Write what the connections whose hold has run out hold; wait for the next deadline."""
        self._timer = None
        holding = self._holding
        loop = asyncio.get_running_loop() if self._loop is None else self._loop
        now = loop.time()
        due = now + _HOLD_SLACK
        while holding:
            connection, deadline = next(iter(holding.items()))
            if deadline > due:
                self._timer = loop.call_at(max(deadline, now + _HOLD_TICK), self._flush_expired)
                return
            del holding[connection]
            self.flush(connection)  # nothing, when it was written since
