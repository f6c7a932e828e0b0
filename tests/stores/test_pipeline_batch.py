"""The pipeline stores a command batch in one store batch, and announces it only once it is stored.

The real pipeline, router and Dramatiq (in-memory broker: the node's delivery queue is read back),
on SQLite, PostgreSQL and MongoDB.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from tests.stores.conftest import users
from workers.errors import StoreUnavailable
from workers.jobs import node_queue, send_to_node
from workers.locator import MemoryLocator
from workers.pipeline import Pipeline, _plan
from workers.routing import Router
from workers.stores import Store, open_store

NODE = "n1"


class LocatorWithAFault(MemoryLocator):
    """An in-memory locator that runs ``fault`` once, when the ``at``-th command is about to be handled."""

    def __init__(self, at: int, fault: Callable[[], None]) -> None:
        super().__init__()
        self._at = at
        self._fault = fault
        self._touched = 0

    def touch(self, user: str, *, now: float) -> None:
        super().touch(user, now=now)
        self._touched += 1
        if self._touched == self._at:
            self._fault()


@pytest.fixture
def queue() -> Iterator[StubBroker]:
    broker = StubBroker()
    broker.declare_queue(node_queue(NODE))
    yield broker
    broker.close()


def pipeline(store: Store, queue: StubBroker, locator: MemoryLocator, *online: str) -> Pipeline:
    for user in online:
        locator.set_online(user, NODE, now=1.0)
    router = Router(locator, lambda node, items: send_to_node(queue, node, items))
    return Pipeline(store=store, route=router.route, touch=locator.touch)


def published(queue: StubBroker) -> list[tuple[str, dict[str, Any]]]:
    """Everything the node was asked to publish so far: ``(user, event)`` in order."""
    out = []
    pending = queue.queues[node_queue(NODE)]
    while not pending.empty():
        message = dramatiq.Message.decode(pending.get_nowait())
        out += [(user, json.loads(payload)) for user, payload, _qos, _options in message.args[1]]
    return out


def send(sender: str, command_id: str, to: str) -> dict[str, Any]:
    return {"user": sender, "cmd": {"v": 1, "type": "send", "id": command_id, "to": to, "text": command_id}}


def receipt(user: str, command_id: str, status: str, ids: list[str]) -> dict[str, Any]:
    cmd = {"v": 1, "type": "receipt", "id": command_id, "status": status, "messages": ids}
    return {"user": user, "cmd": cmd}


def brief(event: dict[str, Any]) -> tuple[Any, ...]:
    kind = event["type"]
    if kind == "sent":
        return (kind, event["ref"], event["cursor"])
    if kind == "message":
        return (kind, event["message"]["text"], event["cursor"])
    if kind == "receipt":
        return (kind, event["message_id"], event["status"], event["cursor"])
    return (kind, event["ref"], event.get("code"))


def test_a_refused_command_in_the_middle_of_a_batch_does_not_lose_the_others(
    store: Store, queue: StubBroker
) -> None:
    alice, bob = users(store, "alice", "bob")
    nobody = f"nobody-{uuid.uuid4().hex[:8]}"
    work = pipeline(store, queue, MemoryLocator(), alice, bob)

    work.process_batch(
        NODE,
        [
            send(alice, "c1", bob),
            send(alice, "c2", nobody),
            receipt(bob, "r1", "read", ["no-such-message"]),
            send(alice, "c3", "g:no-such-group"),
            send(alice, "c4", bob),
        ],
    )

    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [
        ("sent", "c1", 1),
        ("error", "c2", "unknown_user"),
        ("error", "c3", "unknown_group"),
        ("sent", "c4", 2),
    ]
    assert [brief(e) for user, e in got if user == bob] == [
        ("message", "c1", 1),
        ("error", "r1", "not_recipient"),
        ("message", "c4", 2),
    ]
    inbox, _ = store.sync(user=bob, after=0, limit=10)
    assert [(e.cursor, e.payload["message"]["text"], e.payload["message"]["seq"]) for e in inbox] == [
        (1, "c1", 1),
        (2, "c4", 2),
    ]


def test_a_failure_mid_batch_announces_nothing_and_the_retry_stores_each_message_once(
    store: Store, queue: StubBroker
) -> None:
    alice, bob = users(store, "alice", "bob")

    def locator_down() -> None:
        raise StoreUnavailable("locator unavailable: connection refused")

    work = pipeline(store, queue, LocatorWithAFault(3, locator_down), alice, bob)
    batch = [send(alice, f"c{i}", bob) for i in range(1, 5)]

    with pytest.raises(StoreUnavailable):
        work.process_batch(NODE, batch)
    assert published(queue) == []  # not even the `sent` of the two handled before the failure
    work.process_batch(NODE, batch)  # Dramatiq's retry

    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [("sent", f"c{i}", i) for i in range(1, 5)]
    inbox, more = store.sync(user=bob, after=0, limit=10)
    assert not more
    assert [(e.cursor, e.payload["message"]["text"]) for e in inbox] == [(i, f"c{i}") for i in range(1, 5)]


@pytest.mark.postgres
def test_a_database_connection_lost_mid_batch_rolls_it_all_back_and_the_retry_stores_it_once(
    postgres_url: str, queue: StubBroker
) -> None:
    name = f"mqchat-test-{uuid.uuid4().hex[:12]}"
    store = open_store(f"{postgres_url}?application_name={name}")
    store.create_schema()
    admin = create_engine(postgres_url)
    try:
        alice, bob = users(store, "alice", "bob")

        def kill_the_store_connections() -> None:
            with admin.begin() as conn:
                killed = conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :n"
                    ),
                    {"n": name},
                ).scalar_one()
            assert killed >= 1

        work = pipeline(store, queue, LocatorWithAFault(3, kill_the_store_connections), alice, bob)
        batch = [send(alice, f"c{i}", bob) for i in range(1, 5)]

        with pytest.raises(StoreUnavailable):
            work.process_batch(NODE, batch)
        assert published(queue) == []
        assert store.sync(user=bob, after=0, limit=10) == ([], False)  # the two before the failure too
        work.process_batch(NODE, batch)

        got = published(queue)
        assert [brief(e) for user, e in got if user == alice] == [("sent", f"c{i}", i) for i in range(1, 5)]
        assert [brief(e) for user, e in got if user == bob] == [("message", f"c{i}", i) for i in range(1, 5)]
        inbox, _ = store.sync(user=bob, after=0, limit=10)
        assert [e.payload["message"]["seq"] for e in inbox] == [1, 2, 3, 4]
    finally:
        store.close()
        admin.dispose()


def test_receipts_in_a_batch_reach_the_sender_in_order_and_only_move_forward(
    store: Store, queue: StubBroker
) -> None:
    alice, bob = users(store, "alice", "bob")
    work = pipeline(store, queue, MemoryLocator(), alice, bob)
    work.process_batch(NODE, [send(alice, f"c{i}", bob) for i in range(1, 4)])
    ids = [e["message"]["id"] for user, e in published(queue) if user == bob]

    work.process_batch(
        NODE,
        [
            receipt(bob, "r1", "delivered", [ids[2], ids[0]]),
            receipt(bob, "r2", "read", [ids[0]]),
            receipt(bob, "r3", "delivered", ids),  # only ids[1] is still below delivered
            receipt(bob, "r4", "delivered", [ids[0]]),  # late: changes nothing, not forwarded
        ],
    )

    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [
        ("receipt", ids[2], "delivered", 4),
        ("receipt", ids[0], "delivered", 5),
        ("receipt", ids[0], "read", 6),
        ("receipt", ids[1], "delivered", 7),
    ]
    assert [brief(e) for user, e in got if user == bob and e["type"] != "read"] == [
        ("ok", f"r{i}", None) for i in range(1, 5)
    ]
    assert [e["read_seq"] for user, e in got if user == bob and e["type"] == "read"] == [
        1
    ]  # r2: bob's devices


def test_a_batch_reaches_the_node_as_one_delivery_job_with_every_event_in_order(
    store: Store, queue: StubBroker
) -> None:
    alice, bob = users(store, "alice", "bob")
    work = pipeline(store, queue, MemoryLocator(), alice, bob)

    work.process_batch(NODE, [send(alice, f"c{i}", bob) for i in range(1, 6)])

    assert queue.queues[node_queue(NODE)].qsize() == 1  # one hand-off, not one per command
    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [("sent", f"c{i}", i) for i in range(1, 6)]
    assert [brief(e) for user, e in got if user == bob] == [("message", f"c{i}", i) for i in range(1, 6)]


def three_chatting(store: Store, queue: StubBroker) -> tuple[Pipeline, str, str, str, dict[str, Any]]:
    """Alice and carol each sent bob a first message (c1, k1); bob's copy of c1 is returned."""
    alice, bob, carol = users(store, "alice", "bob", "carol")
    work = pipeline(store, queue, MemoryLocator(), alice, bob, carol)
    work.process_batch(NODE, [send(alice, "c1", bob), send(carol, "k1", bob)])
    first = next(e for user, e in published(queue) if user == bob and e["type"] == "message")
    return work, alice, bob, carol, first


def test_runs_of_sends_are_answered_as_one_by_one_and_a_resend_among_them_is_stored_once(
    store: Store, queue: StubBroker
) -> None:
    work, alice, bob, carol, _ = three_chatting(store, queue)

    # a run of sends in two conversations, then a receipt, then a run with a resend in the middle
    work.process_batch(
        NODE,
        [send(alice, "c2", bob), send(bob, "b1", alice), send(carol, "k2", bob), send(alice, "c3", bob)],
    )
    work.process_batch(NODE, [send(alice, "c4", bob), send(alice, "c2", bob), send(alice, "c5", bob)])

    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [
        ("sent", "c2", 2),
        ("message", "b1", 3),
        ("sent", "c3", 4),
        ("sent", "c4", 5),
        ("sent", "c2", 2),  # the resend: its first answer again
        ("sent", "c5", 6),
    ]
    assert [brief(e) for user, e in got if user == bob] == [
        ("message", "c2", 3),
        ("sent", "b1", 4),
        ("message", "k2", 5),
        ("message", "c3", 6),
        ("message", "c4", 7),
        ("message", "c5", 8),
    ]
    inbox, _ = store.sync(user=alice, after=0, limit=20)
    seqs = {e.payload["message"]["text"]: e.payload["message"]["seq"] for e in inbox}
    assert seqs == {"c1": 1, "c2": 2, "b1": 3, "c3": 4, "c4": 5, "c5": 6}


def test_a_batch_is_planned_so_that_every_users_commands_keep_their_order() -> None:
    def cmd(user: str, kind: str, to: str = "") -> dict[str, Any]:
        return {"user": user, "cmd": {"type": kind, "to": to, "id": f"{user}-{kind}-{to}"}}

    batch = [
        cmd("a", "send", "b"),
        cmd("b", "receipt"),
        cmd("b", "send", "a"),  # after b's receipt: stays after it
        cmd("c", "send", "b"),
        cmd("d", "typing", "a"),
        cmd("d", "receipt"),  # after d's typing: stays after it
        cmd("a", "send", "g:team"),  # a group message: one by one
        cmd("a", "send", "b"),  # after a's group message: stays after it
        cmd("a", "receipt"),
        cmd("c", "sync"),  # nothing passes it
        cmd("c", "receipt"),
        cmd("c", "send", "b"),  # after c's receipt: stays after it
    ]

    def ids(items: list[dict[str, Any]]) -> list[str]:
        return [i["cmd"]["id"] for i in items]

    assert [tuple(ids(part) for part in step) for step in _plan(batch)] == [
        (["a-send-b", "c-send-b"], ["b-receipt-"], ["d-typing-a", "a-send-g:team"]),
        (["b-send-a", "a-send-b"], ["d-receipt-", "a-receipt-"], []),
        ([], [], ["c-sync-"]),
        ([], ["c-receipt-"], []),
        (["c-send-b"], [], []),
    ]


_KINDS = [
    ("send", "b"),
    ("send", "g:team"),
    ("receipt", ""),
    ("typing", "b"),
    ("sync", ""),
    ("group_add", ""),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.sampled_from(_KINDS)), max_size=40))
def test_any_plan_keeps_every_users_order_and_groups_only_what_can_be_stored_together(
    commands: list[tuple[str, tuple[str, str]]],
) -> None:
    batch = [
        {"user": user, "cmd": {"type": kind, "to": to, "id": f"{i}"}}
        for i, (user, (kind, to)) in enumerate(commands)
    ]
    steps = list(_plan(batch))
    ran = [item for step in steps for part in step for item in part]
    assert sorted(int(i["cmd"]["id"]) for i in ran) == list(range(len(batch)))  # each once
    for user in "abcd":
        assert [i for i in ran if i["user"] == user] == [i for i in batch if i["user"] == user]
    for texts, receipts, others in steps:
        assert texts or receipts or others
        assert all(i["cmd"]["type"] == "send" and i["cmd"]["to"] == "b" for i in texts)
        assert all(i["cmd"]["type"] == "receipt" for i in receipts)
        unordered = [i for i in others if i["cmd"]["type"] in ("sync", "group_add")]
        if unordered:  # nothing passes them: alone in their step
            assert (texts, receipts, others) == ([], [], unordered)
    # every command ahead of a sync ran before it
    for step_index, (_, _, others) in enumerate(steps):
        if others and others[0]["cmd"]["type"] in ("sync", "group_add"):
            at = int(others[0]["cmd"]["id"])
            before = [int(i["cmd"]["id"]) for s in steps[:step_index] for p in s for i in p]
            assert sorted(before) == list(range(at))


def test_sends_that_follow_their_senders_receipts_are_stored_together(
    store: Store, queue: StubBroker
) -> None:
    work, alice, bob, _, first = three_chatting(store, queue)
    calls: list[int] = []
    accept_texts = store.accept_texts

    def counted(sends: Any, *, now: float) -> Any:
        calls.append(len(sends))
        return accept_texts(sends, now=now)

    store.accept_texts = counted  # type: ignore[method-assign]
    work.process_batch(NODE, [send(bob, "b0", alice)])
    b0 = next(e for user, e in published(queue) if user == alice and e["type"] == "message")
    assert calls == [1]  # a lone send takes the multi-row path too
    calls.clear()
    work.process_batch(
        NODE,
        [
            receipt(bob, "r1", "delivered", [first["message"]["id"]]),
            send(bob, "b1", alice),  # after bob's receipt
            receipt(alice, "r2", "delivered", [b0["message"]["id"]]),
            send(alice, "c2", bob),  # after alice's receipt
        ],
    )
    assert calls == [2]  # bob's and alice's messages together, not one by one
    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [
        ("receipt", first["message"]["id"], "delivered", 3),  # the receipts' step first
        ("ok", "r2", None),
        ("message", "b1", 4),  # then the sends' step, in their order
        ("sent", "c2", 5),
    ]


def test_messages_stored_together_keep_each_senders_order_around_their_other_commands(
    store: Store, queue: StubBroker
) -> None:
    work, alice, bob, carol, first = three_chatting(store, queue)

    work.process_batch(
        NODE,
        [
            receipt(bob, "r1", "delivered", [first["message"]["id"]]),
            send(bob, "b1", alice),
            send(alice, "c2", bob),
            send(carol, "k2", bob),
            send(alice, "c3", bob),
        ],
    )

    got = published(queue)
    assert [brief(e) for user, e in got if user == bob] == [
        ("message", "c2", 3),  # alice's and carol's messages were stored together, first
        ("message", "k2", 4),
        ("message", "c3", 5),
        ("ok", "r1", None),  # then bob's commands, in his order
        ("sent", "b1", 6),
    ]
    assert [brief(e) for user, e in got if user == alice] == [
        ("sent", "c2", 2),
        ("sent", "c3", 3),
        ("receipt", first["message"]["id"], "delivered", 4),
        ("message", "b1", 5),
    ]


def test_receipts_of_several_users_in_a_batch_are_answered_in_each_users_order(
    store: Store, queue: StubBroker
) -> None:
    work, alice, bob, carol, first = three_chatting(store, queue)
    work.process_batch(NODE, [send(bob, "b1", carol), send(alice, "c2", bob)])
    got = published(queue)
    c1 = first["message"]["id"]
    b1 = next(e for user, e in got if user == carol and e["type"] == "message")["message"]["id"]
    c2 = next(e for user, e in got if user == bob and e["type"] == "message")["message"]["id"]

    # together: two users' receipts; then one by one: bob names c1 twice in one batch
    work.process_batch(NODE, [receipt(bob, "r1", "delivered", [c1]), receipt(carol, "r2", "read", [b1])])
    work.process_batch(
        NODE,
        [
            receipt(bob, "r3", "delivered", [c2]),
            receipt(carol, "r4", "read", [b1]),
            receipt(bob, "r5", "read", [c1, c2]),
        ],
    )

    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [
        ("receipt", c1, "delivered", 3),
        ("receipt", c2, "delivered", 4),
        ("receipt", c1, "read", 5),
        ("receipt", c2, "read", 6),
    ]
    assert [brief(e) for user, e in got if user == bob and e["type"] != "read"] == [
        ("ok", "r1", None),
        ("receipt", b1, "read", 5),
        ("ok", "r3", None),
        ("ok", "r5", None),
    ]
    assert [brief(e) for user, e in got if user == carol and e["type"] != "read"] == [
        ("ok", "r2", None),
        ("ok", "r4", None),
    ]


def test_when_storing_together_fails_unexpectedly_each_command_is_stored_on_its_own(
    store: Store, queue: StubBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    work, alice, bob, carol, first = three_chatting(store, queue)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug in the bulk path")

    monkeypatch.setattr(store, "accept_texts", broken)
    monkeypatch.setattr(store, "apply_receipts_of", broken)
    work.process_batch(
        NODE,
        [
            send(alice, "c2", bob),
            send(carol, "k2", bob),
            receipt(bob, "r1", "delivered", [first["message"]["id"]]),
            receipt(carol, "r2", "read", ["not-a-message"]),
        ],
    )

    got = published(queue)
    assert [brief(e) for user, e in got if user != alice] == [
        ("message", "c2", 3),
        ("sent", "k2", 2),
        ("message", "k2", 4),
        ("ok", "r1", None),
        ("error", "r2", "not_recipient"),
    ]


def test_malformed_commands_among_good_ones_are_refused_alone(store: Store, queue: StubBroker) -> None:
    # the node validates commands; a job that was not (hand-made, or from an older node) still only
    # costs its own commands an error
    work, alice, bob, carol, first = three_chatting(store, queue)
    c1 = first["message"]["id"]
    work.process_batch(
        NODE,
        [
            send(alice, "c2", bob),
            {"user": carol, "cmd": {"v": 1, "type": "send", "id": "bad1", "text": "to nobody"}},
            send(carol, "k2", bob),
            {
                "user": bob,
                "cmd": {"v": 1, "type": "receipt", "id": "bad2", "status": "seen", "messages": [c1]},
            },
            receipt(bob, "r1", "delivered", [c1]),
            {"user": bob, "cmd": {"v": 1, "id": "bad3"}},
        ],
    )

    got = published(queue)
    assert [brief(e) for user, e in got if user == carol] == [
        ("error", "bad1", "internal"),
        ("sent", "k2", 2),
    ]
    assert [brief(e) for user, e in got if user == bob] == [
        ("message", "c2", 3),
        ("error", "bad2", "internal"),
        ("ok", "r1", None),
        ("message", "k2", 4),
        ("error", "bad3", "internal"),
    ]
    assert [brief(e) for user, e in got if user == alice] == [
        ("sent", "c2", 2),
        ("receipt", c1, "delivered", 3),
    ]
