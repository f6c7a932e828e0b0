"""Ingest on a real event loop: commands read in one pass of the loop reach the job queue together
and in order, the bound refuses with ``busy`` instead of growing, and a stop drains everything that
was acknowledged, including the chunk the loop has not handed over yet.

The job queue is reached as the node reaches it, through a runner whose thread hands batches over
(``workers/runners/threaded.py``)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from broker.ingest import ACCEPTED, NOT_AUTHORIZED, PAYLOAD_FORMAT_INVALID, QUOTA_EXCEEDED, Ingest
from client_sdk.contract import Topics
from workers.metrics import COMMANDS
from workers.retry import always
from workers.runners.threaded import ThreadedRunner

TOPICS = Topics()


class JobQueue:
    """Where ``Ingest`` enqueues: records each batch; ``hold`` makes enqueueing wait (a slow queue)."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.released = threading.Event()
        self.released.set()
        self.runner: ThreadedRunner | None = None

    def send(self, node: str, batch: list[dict[str, Any]]) -> None:
        assert node == "n1"
        self.released.wait(30)
        self.batches.append(batch)

    def ids(self) -> list[str]:
        return [item["cmd"]["id"] for batch in self.batches for item in batch]


def make(target: JobQueue | Sink, replies: list[tuple[str, dict[str, Any]]], **kw: float) -> Ingest:
    """Ingest enqueueing to a job queue (on a runner's thread), or handing batches to a sink (on the loop)."""
    runner: ThreadedRunner | Sink = target
    if isinstance(target, JobQueue):
        runner = target.runner = ThreadedRunner(
            target.send,
            name="test-enqueue",
            batch_size=int(kw.get("batch_size", 200)),
            linger=kw.get("linger", 0.0),
            when=always,
            min_backoff=0.1,
            max_backoff=5.0,
        )
        asyncio.run(runner.start())
    return Ingest(
        node_id="n1",
        topics=TOPICS,
        max_payload_bytes=64 * 1024,
        queue_size=int(kw.get("queue_size", 1000)),
        batch_size=int(kw.get("batch_size", 200)),
        runner=runner,  # type: ignore[arg-type]
        reply=lambda user, event, target: replies.append((user, event)),
        linger=kw.get("ingest_linger", 0.0),
        receipt_linger=kw.get("receipt_linger", 0.0),
    )


async def stop(ingest: Ingest, jobs: JobQueue, timeout: float = 30.0) -> None:
    """What the node's stop does: everything accepted goes to the runner, which enqueues it."""
    assert jobs.runner is not None
    await ingest.drain(timeout)
    await jobs.runner.drain(timeout)
    await jobs.runner.close()


def send(ingest: Ingest, user: str, cid: str) -> int:
    command = {"v": 1, "type": "send", "id": cid, "to": "bob", "text": "hi"}
    return ingest.accept(user, TOPICS.outbox(user), json.dumps(command).encode())


def receipt(ingest: Ingest, user: str, cid: str) -> int:
    command = {"v": 1, "type": "receipt", "id": cid, "status": "delivered", "messages": ["m1"]}
    return ingest.accept(user, TOPICS.outbox(user), json.dumps(command).encode())


def test_commands_of_one_loop_pass_go_out_together_in_order_split_by_batch_size() -> None:
    jobs, replies = JobQueue(), list[tuple[str, dict[str, Any]]]()
    ingest = make(jobs, replies, batch_size=20)

    async def main() -> None:
        for i in range(50):  # one pass of the loop: no await in between
            send(ingest, "alice", f"c{i}")
        await asyncio.sleep(0)  # the pass ends: the chunk is handed over
        await stop(ingest, jobs)

    asyncio.run(main())
    assert replies == []
    assert jobs.ids() == [f"c{i}" for i in range(50)]
    assert [len(b) for b in jobs.batches] == [20, 20, 10]
    assert ingest.accepted == 50 and ingest.pending == 0


def test_past_the_bound_commands_are_refused_busy_and_accepted_again_once_drained() -> None:
    jobs, replies = JobQueue(), list[tuple[str, dict[str, Any]]]()
    jobs.released.clear()  # the job queue is stuck
    ingest = make(jobs, replies, queue_size=10)

    async def main() -> None:
        codes = [send(ingest, "alice", f"a{i}") for i in range(15)]
        assert codes == [ACCEPTED] * 10 + [QUOTA_EXCEEDED] * 5  # MQTT 5's PUBACK: 0x97 when busy
        await asyncio.sleep(0.05)
        assert ingest.pending == 10
        busy = [event for _, event in replies]
        assert [e["ref"] for e in busy] == [f"a{i}" for i in range(10, 15)]
        assert {e["code"] for e in busy} == {"busy"} and all(e["type"] == "error" for e in busy)

        jobs.released.set()  # the queue recovers
        for _ in range(200):
            if ingest.pending == 0:
                break
            await asyncio.sleep(0.01)
        send(ingest, "bob", "b0")
        await asyncio.sleep(0)
        await stop(ingest, jobs)

    asyncio.run(main())
    assert jobs.ids() == [f"a{i}" for i in range(10)] + ["b0"]
    assert len(replies) == 5


def test_stop_drains_the_chunk_the_loop_still_holds() -> None:
    jobs, replies = JobQueue(), list[tuple[str, dict[str, Any]]]()
    ingest = make(jobs, replies)

    async def main() -> None:
        for i in range(5):
            send(ingest, "alice", f"s{i}")
        # no pass of the loop has ended: the five are acknowledged but still in the loop's chunk
        await stop(ingest, jobs)

    asyncio.run(main())
    assert jobs.ids() == [f"s{i}" for i in range(5)]


def test_accept_off_the_event_loop_hands_over_at_once() -> None:
    jobs, replies = JobQueue(), list[tuple[str, dict[str, Any]]]()
    ingest = make(jobs, replies)
    send(ingest, "alice", "x1")
    asyncio.run(stop(ingest, jobs))
    assert jobs.ids() == ["x1"]


def test_under_load_commands_wait_for_each_other_and_after_a_quiet_spell_go_at_once() -> None:
    jobs, replies = JobQueue(), list[tuple[str, dict[str, Any]]]()
    ingest = make(jobs, replies, linger=1.0)

    async def main() -> None:
        # A and B come 50 ms apart, within the linger of the thread's start: one transaction
        send(ingest, "alice", "a")
        await asyncio.sleep(0.05)
        send(ingest, "alice", "b")
        await asyncio.sleep(2.5)  # quiet for longer than the linger
        # C comes after the quiet spell: it goes at once (well before the linger would let it go),
        # so D, sent then, is a batch of its own. Waiting for C, not a fixed 50 ms, keeps a busy
        # machine (a parallel test run, a slow CI host) from merging the two.
        send(ingest, "alice", "c")
        went_by = time.monotonic() + 0.9
        while len(jobs.batches) < 2:
            assert time.monotonic() < went_by, "c waited for the linger after a quiet spell"
            await asyncio.sleep(0.005)
        send(ingest, "alice", "d")
        await asyncio.sleep(0)

    asyncio.run(main())
    asyncio.run(stop(ingest, jobs, 10))
    assert [[item["cmd"]["id"] for item in batch] for batch in jobs.batches] == [["a", "b"], ["c"], ["d"]]


# ---------------------------------------------------------------- a sink on the event loop


class Sink:
    """Where ``Ingest`` hands batches on the event loop (as the commands process): room for
    ``slots`` batches at once; ``finish`` frees one, as a batch done does."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.batches: list[list[dict[str, Any]]] = []
        self.on_room: Any = lambda: None
        self.on_loop: list[bool] = []
        self.taken = 0

    def room(self) -> bool:
        return self.slots > 0

    def submit(self, node: str, batch: list[dict[str, Any]]) -> None:
        assert node == "n1" and self.slots > 0
        self.on_loop.append(asyncio.get_running_loop() is not None)
        self.slots -= 1
        self.batches.append(batch)
        self.taken += len(batch)

    def finish(self) -> None:
        self.slots += 1
        self.on_room()

    def ids(self) -> list[str]:
        return [item["cmd"]["id"] for batch in self.batches for item in batch]


def test_with_a_sink_the_loop_hands_batches_over_itself_and_keeps_the_rest_until_there_is_room() -> None:
    sink, replies = Sink(slots=2), list[tuple[str, dict[str, Any]]]()
    ingest = make(sink, replies, batch_size=10, queue_size=35)

    async def main() -> list[int]:
        for i in range(40):  # one pass: 40 commands, 5 past the bound
            send(ingest, "alice", f"c{i}")
        await asyncio.sleep(0)  # the pass ends: two batches of 10 go, 15 wait
        seen = [len(sink.batches), ingest.pending]
        sink.finish()  # a batch done: the next 10 go
        seen += [len(sink.batches), ingest.pending]
        sink.finish()
        sink.finish()
        await ingest.drain(5)
        return seen

    seen = asyncio.run(main())
    assert seen == [2, 15, 3, 5]
    assert sink.ids() == [f"c{i}" for i in range(35)]  # in order, nothing lost, no thread
    assert all(sink.on_loop)
    assert [event["code"] for _, event in replies] == ["busy"] * 5
    assert not any(t.name == "mqchat-ingest" for t in threading.enumerate())


def test_accept_answers_the_mqtt5_puback_reason_of_its_verdict() -> None:
    jobs, replies = JobQueue(), list[tuple[str, dict[str, Any]]]()
    ingest = make(jobs, replies)

    async def main() -> None:
        assert send(ingest, "alice", "ok") == ACCEPTED
        assert ingest.accept("alice", TOPICS.outbox("bob"), b"{}") == NOT_AUTHORIZED
        assert ingest.accept(None, TOPICS.outbox("alice"), b"{}") == NOT_AUTHORIZED
        assert ingest.accept("alice", TOPICS.outbox("alice"), b"not json") == PAYLOAD_FORMAT_INVALID
        assert ingest.accept("alice", TOPICS.outbox("alice"), b'{"v":1,"type":"nope","id":"x"}') == (
            PAYLOAD_FORMAT_INVALID
        )
        await stop(ingest, jobs)

    asyncio.run(main())
    assert (ACCEPTED, NOT_AUTHORIZED, QUOTA_EXCEEDED, PAYLOAD_FORMAT_INVALID) == (0, 0x87, 0x97, 0x99)
    assert [event["code"] for _, event in replies] == ["forbidden", "bad_json", "unknown_type"]


def test_with_a_linger_commands_of_several_loop_passes_go_to_the_sink_as_one_batch() -> None:
    sink, replies = Sink(slots=4), list[tuple[str, dict[str, Any]]]()
    ingest = make(sink, replies, ingest_linger=0.05)

    async def main() -> list[int]:
        send(ingest, "alice", "c0")
        await asyncio.sleep(0.01)  # later passes of the loop, within the linger
        send(ingest, "bob", "c1")
        await asyncio.sleep(0)
        send(ingest, "alice", "c2")
        waited = len(sink.batches)
        await asyncio.sleep(0.1)  # the linger is over: one batch for the three
        after = len(sink.batches)
        send(ingest, "bob", "c3")  # the next batch waits again
        await ingest.drain(5)  # a stop does not wait for the linger
        return [waited, after, len(sink.batches)]

    assert asyncio.run(main()) == [0, 1, 2]
    assert [len(batch) for batch in sink.batches] == [3, 1]
    assert sink.ids() == ["c0", "c1", "c2", "c3"]
    assert replies == []


def test_receipts_wait_for_the_next_command_and_go_in_its_batch_and_a_stop_takes_them_at_once() -> None:
    sink, replies = Sink(slots=4), list[tuple[str, dict[str, Any]]]()
    ingest = make(sink, replies, receipt_linger=30.0)

    async def main() -> list[int]:
        receipt(ingest, "bob", "r0")
        await asyncio.sleep(0.01)  # later passes of the loop: the receipts wait
        receipt(ingest, "carol", "r1")
        await asyncio.sleep(0.01)
        waited = len(sink.batches)
        send(ingest, "alice", "s0")  # a send ends the wait, in the same pass as it comes
        await asyncio.sleep(0)
        joined = len(sink.batches)
        send(ingest, "alice", "s1")  # a send alone goes at the end of its pass, as ever
        await asyncio.sleep(0)
        receipt(ingest, "bob", "r2")
        await ingest.drain(5)  # a stop does not wait for the receipts' linger
        return [waited, joined, len(sink.batches)]

    assert asyncio.run(main()) == [0, 1, 3]
    assert [[item["cmd"]["id"] for item in batch] for batch in sink.batches] == [
        ["r0", "r1", "s0"],
        ["s1"],
        ["r2"],
    ]
    assert replies == []


def test_accepted_commands_are_counted_by_type_once_the_loop_hands_them_over() -> None:
    sink, replies = Sink(slots=1), list[tuple[str, dict[str, Any]]]()
    ingest = make(sink, replies, batch_size=10)
    sends, receipts = COMMANDS.labels(type="send"), COMMANDS.labels(type="receipt")
    before = sends._value.get(), receipts._value.get()
    receipt = {"v": 1, "type": "receipt", "id": "r1", "status": "delivered", "messages": ["m1"]}

    async def main() -> list[float]:
        for i in range(3):
            send(ingest, "alice", f"c{i}")
        ingest.accept("bob", TOPICS.outbox("bob"), json.dumps(receipt).encode())
        send(ingest, "alice", "bad\x00")  # refused: not counted as accepted
        await asyncio.sleep(0)
        return [sends._value.get() - before[0], receipts._value.get() - before[1]]

    assert asyncio.run(main()) == [3, 1]
    assert [event["code"] for _, event in replies] == ["bad_request"]
