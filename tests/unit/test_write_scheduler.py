"""The WriteScheduler (broker/mqtt/writes.py): a connection's packets of a batch in one write, in
order; held PUBACKs go out with the next delivery, or alone after ``HOLD_DELAY``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.mqtt.writes import _HOLD_TICK, HOLD_DELAY, WriteScheduler


class Writer:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def write(self, data: bytes | bytearray) -> None:
        self.writes.append(bytes(data))


class Connection:
    def __init__(self) -> None:
        self.held: bytearray | None = None
        self.due = False
        self.writer: Any = Writer()

    @property
    def written(self) -> list[bytes]:
        return self.writer.writes  # type: ignore[no-any-return]


def test_a_batch_writes_each_connection_once_at_its_end_in_order() -> None:
    writes, a, b = WriteScheduler(), Connection(), Connection()
    with writes.corked():
        writes.send(a, b"a1")
        writes.send(b, b"b1")
        with writes.corked():  # nested: belongs to the outer block
            writes.send(a, b"a2")
        assert a.written == b.written == []
    assert a.written == [b"a1a2"]
    assert b.written == [b"b1"]


def test_outside_a_batch_a_delivery_is_written_at_once() -> None:
    writes, a = WriteScheduler(), Connection()
    writes.send(a, b"now")
    assert a.written == [b"now"]


def test_a_held_puback_goes_out_first_with_the_next_delivery() -> None:
    async def scenario() -> tuple[Connection, Connection]:
        writes, in_batch, alone = WriteScheduler(), Connection(), Connection()
        writes.hold(in_batch, b"ack1")
        writes.hold(alone, b"ack2")
        with writes.corked():
            writes.send(in_batch, b"answer")
        writes.send(alone, b"later")  # outside a batch: takes what is held with it
        return in_batch, alone

    in_batch, alone = asyncio.run(scenario())
    assert in_batch.written == [b"ack1answer"]
    assert alone.written == [b"ack2later"]


def test_a_held_puback_with_nothing_after_it_goes_out_after_the_hold_delay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("broker.mqtt.writes.HOLD_DELAY", 0.05)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
        writes, a = WriteScheduler(), Connection()
        writes.hold(a, b"ack")
        writes.hold(a, b"ack2")  # the same read's follow-up joins the first hold
        with writes.corked():  # a batch that gives this connection nothing does not flush it
            pass
        before = list(a.written)
        await asyncio.sleep(0.2)
        return before, a.written

    before, after = asyncio.run(scenario())
    assert before == []
    assert after == [b"ackack2"]


def test_a_flush_writes_what_is_held_and_nothing_twice() -> None:
    async def scenario() -> Connection:
        writes, a = WriteScheduler(), Connection()
        writes.hold(a, b"ack")
        writes.flush(a)
        writes.flush(a)
        await asyncio.sleep(0.05)  # the hold's timer finds nothing left
        return a

    assert asyncio.run(scenario()).written == [b"ack"]


def test_a_connection_detached_meanwhile_gets_nothing_written() -> None:
    writes, a = WriteScheduler(), Connection()
    with writes.corked():
        writes.send(a, b"lost")
        a.writer = None
    assert a.held is None


def test_a_hold_written_before_its_deadline_leaves_no_timer_to_wake_the_loop() -> None:
    async def scenario() -> tuple[bool, bool, Connection, Connection]:
        writes, a, b = WriteScheduler(), Connection(), Connection()
        writes.hold(a, b"ack-a")
        writes.hold(b, b"ack-b")
        with writes.corked():
            writes.send(a, b"answer-a")
        b_waits = writes._timer is not None  # b still waits for its deadline
        writes.send(b, b"answer-b")
        none_left = writes._timer is None  # nothing held any more: no wake-up scheduled
        return b_waits, none_left, a, b

    b_waits, none_left, a, b = asyncio.run(scenario())
    assert b_waits and none_left
    assert a.written == [b"ack-aanswer-a"]
    assert b.written == [b"ack-banswer-b"]


def test_holds_ending_within_a_tick_of_a_firing_are_written_at_the_next() -> None:
    """The flush timer fires at most once per ``_HOLD_TICK``: a hold that ends just after a firing
    waits for the next, no later than ``HOLD_DELAY`` + ``_HOLD_TICK`` after it began."""

    async def scenario() -> tuple[list[bytes], list[bytes], list[bytes], list[bytes], list[bytes]]:
        loop = asyncio.get_running_loop()
        now = [loop.time()]
        loop.time = lambda: now[0]  # type: ignore[method-assign]  # a clock that moves when told

        async def at(seconds: float) -> None:
            now[0] = start + seconds
            for _ in range(3):  # what fell due runs in the next passes
                await asyncio.sleep(0)

        start = now[0]
        try:
            writes, a, b = WriteScheduler(), Connection(), Connection()
            writes.hold(a, b"ack-a")
            await at(0.002)
            writes.hold(b, b"ack-b")  # ends 2 ms after a's, past the timer's slack
            await at(HOLD_DELAY + 0.0001)
            first = list(a.written), list(b.written)
            await at(HOLD_DELAY + 0.0021)  # b's deadline has passed, the next firing has not come
            second = list(b.written)
            await at(HOLD_DELAY + 0.0001 + _HOLD_TICK)
            return *first, second, a.written, b.written
        finally:
            del loop.time

    a_first, b_first, b_second, a_last, b_last = asyncio.run(scenario())
    assert a_first == [b"ack-a"] and b_first == []
    assert b_second == []
    assert a_last == [b"ack-a"] and b_last == [b"ack-b"]
