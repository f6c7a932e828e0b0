"""Store batches (one transaction per command batch on SQL) and receipts for many messages at once,
on SQLite, PostgreSQL and MongoDB."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from client_sdk.contract import Status, load_schema
from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_sql_groups import make_group
from workers.errors import UnknownUser
from workers.stores import InboxEntry, ReceiptRequest, ReceiptResult, Store, TextSend, open_store
from workers.stores.sql import SqlStore

SCHEMA = Draft202012Validator(load_schema())


def texts(entries: list[InboxEntry]) -> list[str]:
    return [e.payload["message"]["text"] for e in entries]


def seen(result: ReceiptResult) -> list[tuple[str, str, bool]]:
    return [
        (e.payload["message_id"], e.payload["status"], e.payload["all"])
        for e in result.entries
        if e.payload["type"] == "receipt"  # not the reader's own `read` events
    ]


def test_a_refused_call_in_a_batch_undoes_only_itself(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    with store.batch():
        first = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="one", now=1.0)
        with pytest.raises(UnknownUser):
            store.accept_message(sender=alice, command_id="c2", recipient=unique("nobody"), text="?", now=2.0)
        third = store.accept_message(sender=alice, command_id="c3", recipient=bob, text="three", now=3.0)

    inbox, _ = store.sync(user=bob, after=0, limit=10)
    assert texts(inbox) == ["one", "three"]
    assert [e.cursor for e in inbox] == [1, 2]  # the refused one left no gap
    assert (first.sent.cursor, third.sent.cursor) == (1, 2)
    assert (first.message.seq, third.message.seq) == (1, 2)
    assert [e.cursor for e in store.sync(user=alice, after=0, limit=10)[0]] == [1, 2]


def test_a_batch_run_again_after_a_failure_stores_each_message_once(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    def run(commands: list[str], fail_after: int | None = None) -> None:
        with store.batch():
            for i, command in enumerate(commands):
                if i == fail_after:
                    raise RuntimeError("the worker died")
                store.accept_message(sender=alice, command_id=command, recipient=bob, text=command, now=1.0)

    with pytest.raises(RuntimeError):
        run(["c1", "c2", "c3"], fail_after=2)
    run(["c1", "c2", "c3"])

    inbox, more = store.sync(user=bob, after=0, limit=10)
    assert texts(inbox) == ["c1", "c2", "c3"] and not more
    assert [e.cursor for e in inbox] == [1, 2, 3]
    assert [e.payload["message"]["seq"] for e in inbox] == [1, 2, 3]
    assert [e.payload["ref"] for e in store.sync(user=alice, after=0, limit=10)[0]] == ["c1", "c2", "c3"]


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_sql_batch_is_seen_by_others_only_once_it_ends_and_not_at_all_when_it_fails(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    store = open_store(url)
    store.create_schema()
    try:
        alice, bob = users(store, "alice", "bob")

        def seen_from_another_thread() -> list[str]:
            got: list[str] = []
            reader = threading.Thread(
                target=lambda: got.extend(texts(store.sync(user=bob, after=0, limit=9)[0]))
            )
            reader.start()
            reader.join()
            return got

        with store.batch():
            store.accept_message(sender=alice, command_id="c1", recipient=bob, text="one", now=1.0)
            assert texts(store.sync(user=bob, after=0, limit=9)[0]) == ["one"]  # the batch sees its own
            assert seen_from_another_thread() == []
        assert seen_from_another_thread() == ["one"]

        def fail_in_batch() -> None:
            with store.batch():
                store.accept_message(sender=alice, command_id="c2", recipient=bob, text="two", now=2.0)
                raise RuntimeError("the worker died")

        with pytest.raises(RuntimeError):
            fail_in_batch()
        assert seen_from_another_thread() == ["one"]
        assert store.sent_entry(alice, "c2") is None
    finally:
        store.close()


def test_a_receipt_for_many_messages_keeps_their_order_and_only_moves_forward(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    m1, m2, m3 = (
        store.accept_message(sender=alice, command_id=f"c{i}", recipient=bob, text="t", now=1.0).message.id
        for i in (1, 2, 3)
    )
    unknown = unique("no-such-message")

    with store.batch():
        read = store.apply_receipts(user=bob, status=Status.READ, message_ids=[m2], now=2.0)
        delivered = store.apply_receipts(
            user=bob, status=Status.DELIVERED, message_ids=[m3, unknown, m1, m2, m3], now=3.0
        )

    assert seen(read) == [(m2, "read", True)]
    # m2 is read already: its late delivered changes nothing and is not forwarded
    assert seen(delivered) == [(m3, "delivered", True), (m1, "delivered", True)]
    assert delivered.not_recipient == [unknown]
    events, _ = store.sync(user=alice, after=3, limit=10)  # after the three sent entries
    assert [(e.cursor, e.payload["message_id"], e.payload["status"]) for e in events] == [
        (4, m2, "read"),
        (5, m3, "delivered"),
        (6, m1, "delivered"),
    ]
    assert store.undelivered(user=bob, message_ids=[m1, m2, m3]) == []


def test_a_receipt_for_many_group_messages_tells_each_member_status_and_the_lowest(store: Store) -> None:
    group, (alice, bob, carol) = make_group(store, 3)
    m1, m2, m3 = (
        store.accept_message(
            sender=alice, command_id=f"c{i}", recipient=group.id, text="t", now=2.0
        ).message.id
        for i in (1, 2, 3)
    )

    with store.batch():
        bob_delivered = store.apply_receipts(
            user=bob, status=Status.DELIVERED, message_ids=[m1, m2, m3], now=3.0
        )
        carol_read = store.apply_receipts(user=carol, status=Status.READ, message_ids=[m2, m1], now=4.0)
    bob_read = store.apply_receipts(user=bob, status=Status.READ, message_ids=[m3, m1], now=5.0)

    assert seen(bob_delivered) == [
        (m1, "delivered", False),
        (m2, "delivered", False),
        (m3, "delivered", False),
    ]
    # carol going straight to read completes "delivered" for everyone too, message by message
    assert seen(carol_read) == [
        (m2, "delivered", True),
        (m2, "read", False),
        (m1, "delivered", True),
        (m1, "read", False),
    ]
    assert seen(bob_read) == [(m3, "read", False), (m1, "read", True)]
    forwarded = [  # not the readers' own `read` events
        e
        for e in bob_delivered.entries + carol_read.entries + bob_read.entries
        if e.payload["type"] == "receipt"
    ]
    assert {e.payload["by"] for e in carol_read.entries if e.payload["type"] == "receipt"} == {carol}
    assert all(e.user == alice for e in forwarded)
    cursors = [e.cursor for e in forwarded]
    assert cursors == list(range(cursors[0], cursors[0] + 9))


@pytest.mark.postgres
def test_a_batch_after_the_database_dropped_its_connection_is_retried_on_a_new_one(postgres_url: str) -> None:
    # A thread keeps its batch connection between batches; the server ends it while idle
    from sqlalchemy import create_engine, text

    from workers.errors import StoreUnavailable

    name = unique("spare")
    store = open_store(f"{postgres_url}{'&' if '?' in postgres_url else '?'}application_name={name}")
    store.create_schema()
    admin = create_engine(postgres_url)
    try:
        alice, bob = users(store, "alice", "bob")
        with store.batch():
            store.accept_message(sender=alice, command_id="c1", recipient=bob, text="one", now=1.0)
        with admin.connect() as conn:
            ended = conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            ).all()
        assert ended  # at least the batch connection

        # Then the next batch fails as unavailable (the job queue retries it), and its retry works
        def batch() -> None:
            with store.batch():
                store.accept_message(sender=alice, command_id="c2", recipient=bob, text="two", now=2.0)

        with pytest.raises(StoreUnavailable):
            batch()
        batch()
        assert texts(store.sync(user=bob, after=0, limit=10)[0]) == ["one", "two"]
    finally:
        admin.dispose()
        store.close()


@pytest.mark.postgres
def test_a_postgresql_batch_runs_the_generic_plans_of_its_prepared_statements(postgres_url: str) -> None:
    # Left to choose, the server planned a statement of arrays again at every run while the plans
    # for earlier runs' values (arrays of one or two) were estimated cheaper than the generic one
    from sqlalchemy import text

    store = open_store(postgres_url)
    store.create_schema()
    assert isinstance(store, SqlStore)
    try:
        alice, bob = users(store, "alice", "bob")
        store.accept_message(sender=alice, command_id="first", recipient=bob, text="hi", now=1.0)
        modes = []
        for n in range(12):  # psycopg prepares a statement at its fifth run
            with store.batch():
                sent = store.accept_texts([TextSend(alice, f"c{n}", bob, str(n))], now=2.0)
                assert sent is not None
                if n == 0:  # a refused call: the setting outlives its savepoint's rollback
                    with pytest.raises(UnknownUser):
                        store.accept_message(
                            sender=alice, command_id="x", recipient=unique("nobody"), text="?", now=2.0
                        )
                moved = store.apply_receipts_of(
                    [ReceiptRequest(bob, Status.DELIVERED, [sent[0].message.id])], now=3.0
                )
                assert moved is not None and moved[0].entries
                with store._tx() as conn:
                    modes.append(conn.execute(text("SHOW plan_cache_mode")).scalar_one())
        assert set(modes) == {"force_generic_plan"}
        with store._tx() as conn:  # outside a batch, and on the batch's connection after it, the default
            assert conn.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
        spare = store._local.spare
        assert spare.execute(text("SHOW plan_cache_mode")).scalar_one() == "auto"
        generic, custom = spare.execute(
            text("SELECT sum(generic_plans), sum(custom_plans) FROM pg_prepared_statements")
        ).one()
        spare.rollback()
        assert custom == 0 and generic > 0
        assert [e.cursor for e in store.sync(user=bob, after=0, limit=100)[0]] == list(range(1, 14))
    finally:
        store.close()


def test_store_close_closes_the_connections_threads_kept_for_batches(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    alice, bob = users(store, "alice", "bob")

    def work(n: int) -> None:
        with store.batch():
            store.accept_message(sender=alice, command_id=f"t{n}", recipient=bob, text=str(n), now=1.0)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.engine.pool.checkedout() == 3  # type: ignore[attr-defined]
    store.close()
    assert store.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


def test_texts_stored_together_get_the_seqs_and_cursors_they_would_get_one_by_one(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="one", now=1.0)
    store.accept_message(sender=carol, command_id="k1", recipient=bob, text="hi bob", now=1.0)

    with store.batch():
        results = store.accept_texts(
            [
                TextSend(alice, "c2", bob, "two"),
                TextSend(bob, "b1", alice, "back"),
                TextSend(carol, "k2", bob, "again"),
                TextSend(alice, "c3", bob, "three"),
            ],
            now=2.0,
        )
    if isinstance(store, SqlStore):
        assert results is not None
    else:  # MongoDB stores them one by one
        assert results is None
        return
    assert [
        (r.message.sender, r.message.seq, r.sent.cursor, [e.cursor for e in r.entries]) for r in results
    ] == [
        (alice, 2, 2, [2, 3]),
        (bob, 3, 4, [4, 3]),
        (carol, 2, 2, [2, 5]),
        (alice, 4, 4, [4, 6]),
    ]
    inbox, _ = store.sync(user=bob, after=0, limit=10)
    assert [(e.cursor, e.payload["type"], e.payload["message"]["text"]) for e in inbox] == [
        (1, "message", "one"),
        (2, "message", "hi bob"),
        (3, "message", "two"),
        (4, "sent", "back"),
        (5, "message", "again"),
        (6, "message", "three"),
    ]
    assert store.sent_entry(bob, "b1") == results[1].sent


@pytest.mark.parametrize("odd_one", ["a resend", "an unknown recipient", "a new conversation"])
def test_texts_that_cannot_be_stored_together_are_not_stored_at_all(store: Store, odd_one: str) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="one", now=1.0)
    odd = {
        "a resend": TextSend(alice, "c1", bob, "one"),
        "an unknown recipient": TextSend(alice, "c3", unique("nobody"), "?"),
        "a new conversation": TextSend(alice, "c3", carol, "hello carol"),
    }[odd_one]

    with store.batch():
        assert store.accept_texts([TextSend(alice, "c2", bob, "two"), odd], now=2.0) is None

    assert texts(store.sync(user=bob, after=0, limit=10)[0]) == ["one"]
    assert store.sent_entry(alice, "c2") is None
    assert store.sync(user=carol, after=0, limit=10)[0] == []


def test_receipts_of_several_users_applied_together_give_the_events_one_by_one_would(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    to_bob = [
        store.accept_message(sender=alice, command_id=f"a{i}", recipient=bob, text=str(i), now=1.0).message.id
        for i in range(3)
    ]
    to_carol = store.accept_message(
        sender=bob, command_id="b1", recipient=carol, text="hi", now=1.0
    ).message.id
    store.apply_receipts(user=bob, status=Status.READ, message_ids=[to_bob[2]], now=1.5)

    with store.batch():
        results = store.apply_receipts_of(
            [
                ReceiptRequest(bob, Status.DELIVERED, [to_bob[0], to_bob[2]]),  # the read one stays read
                ReceiptRequest(carol, Status.READ, [to_carol]),
                ReceiptRequest(bob, Status.READ, [to_bob[1]]),
            ],
            now=2.0,
        )
    assert results is not None
    assert [
        [
            (e.user, e.payload["message_id"], e.payload["status"], e.cursor)
            for e in r.entries
            if e.payload["type"] == "receipt"  # not the reader's own `read` events
        ]
        for r in results
    ] == [
        [(alice, to_bob[0], "delivered", 5)],
        [(bob, to_carol, "read", 6)],  # after bob's `read` of to_bob[2]
        [(alice, to_bob[1], "read", 6)],
    ]
    assert all(r.not_recipient == [] for r in results)
    # what moved is stored: reading them all now moves only the one that was delivered
    again = store.apply_receipts(user=bob, status=Status.READ, message_ids=to_bob, now=3.0)
    assert [(e.payload["message_id"], e.payload["status"]) for e in again.entries if e.user == alice] == [
        (to_bob[0], "read")
    ]


@pytest.mark.parametrize("odd_one", ["a message to someone else", "a group message of another group"])
def test_receipts_that_cannot_be_applied_together_change_nothing(store: Store, odd_one: str) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    first = store.accept_message(sender=alice, command_id="a1", recipient=bob, text="1", now=1.0).message.id
    group = store.create_group(
        creator=alice, name="team", members=[bob], now=1.0, ref="g", max_members=10
    ).group.id
    in_group = store.accept_message(
        sender=alice, command_id="g1", recipient=group, text="all", now=1.0
    ).message.id
    odd = {
        "a message to someone else": ReceiptRequest(carol, Status.DELIVERED, [first]),
        "a group message of another group": ReceiptRequest(carol, Status.DELIVERED, [in_group]),
    }[odd_one]

    with store.batch():
        assert store.apply_receipts_of([ReceiptRequest(bob, Status.DELIVERED, [first]), odd], now=2.0) is None

    assert [e.payload["type"] for e in store.sync(user=alice, after=0, limit=10)[0]] == [
        "sent",
        "group",
        "sent",
    ]


def _receipt_events(store: Store, user: str) -> list[tuple[str, tuple[str, ...], str, bool]]:
    """``(message, the members it names, status, all)`` of each ``receipt`` event of ``user``,
    each checked against the published schema."""
    events = [e.payload for e in store.sync(user=user, after=0, limit=100)[0]]
    for event in events:
        SCHEMA.validate(event)
    return [
        (e["message_id"], (e["by"], *e.get("also_by", ())), e["status"], e["all"])
        for e in events
        if e["type"] == "receipt"
    ]


@pytest.mark.parametrize("together", [True, False], ids=["together", "one by one"])
def test_group_receipts_of_every_member_in_one_batch_reach_the_sender_in_one_event_per_status(
    store: Store, together: bool
) -> None:
    # Given a group of four and two messages of alice's in it, one already read by bob
    group, (alice, bob, carol, dave) = make_group(store, 4)
    first, second = (
        store.accept_message(
            sender=alice, command_id=f"m{i}", recipient=group.id, text="hi", now=1.0
        ).message.id
        for i in range(2)
    )
    store.apply_receipts(user=bob, status=Status.READ, message_ids=[second], now=1.5)
    requests = [
        ReceiptRequest(bob, Status.DELIVERED, [first, second]),  # the read one stays read
        ReceiptRequest(carol, Status.DELIVERED, [first, second]),
        ReceiptRequest(dave, Status.READ, [second]),  # straight to read: delivered for all with it
        ReceiptRequest(dave, Status.DELIVERED, [first]),  # the last of the three: two ticks
        ReceiptRequest(carol, Status.DELIVERED, [first]),  # named again: nothing moves
    ]

    # When the members' receipts are applied in one batch (or one by one, as before)
    with store.batch():
        results = store.apply_receipts_of(requests, now=2.0) if together else None
        if results is None:
            for request in requests:
                store.apply_receipts(
                    user=request.user, status=request.status, message_ids=request.message_ids, now=2.0
                )

    # Then alice hears of every member's receipt and of the moments all got there: in one event
    # per message and status for the batch's (``also_by``), in one event each one by one
    assert together is False or results is not None
    assert _receipt_events(store, alice) == (
        [
            (second, (bob,), "read", False),
            (first, (bob, carol, dave), "delivered", True),
            (second, (carol, dave), "delivered", True),  # dave's read completed `delivered`
            (second, (dave,), "read", False),
        ]
        if together
        else [
            (second, (bob,), "read", False),
            (first, (bob,), "delivered", False),
            (first, (carol,), "delivered", False),
            (second, (carol,), "delivered", False),
            (second, (dave,), "delivered", True),  # dave's read completed `delivered` for everyone
            (second, (dave,), "read", False),
            (first, (dave,), "delivered", True),
        ]
    )
    # and what moved is stored: carol reading both now completes `read` of the second only
    again = store.apply_receipts(user=carol, status=Status.READ, message_ids=[first, second], now=3.0)
    assert seen(again) == [(first, "read", False), (second, "read", True)]


def test_a_receipt_named_twice_in_a_batch_moves_once_and_in_order(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    first = store.accept_message(sender=alice, command_id="a1", recipient=bob, text="1", now=1.0).message.id

    with store.batch():
        results = store.apply_receipts_of(
            [
                ReceiptRequest(bob, Status.DELIVERED, [first]),
                ReceiptRequest(bob, Status.READ, [first]),
                ReceiptRequest(bob, Status.DELIVERED, [first]),
            ],
            now=2.0,
        )

    assert results is not None
    assert [seen(r) for r in results] == [[(first, "delivered", True)], [(first, "read", True)], []]
    assert [(m, s) for m, _, s, _ in _receipt_events(store, alice)] == [(first, "delivered"), (first, "read")]


def test_message_ids_are_32_hex_digits_that_sort_in_the_order_they_were_made(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    made = []
    for i in range(5):
        made.append(store.accept_message(sender=alice, command_id=f"c{i}", recipient=bob, text="x", now=1.0))
        time.sleep(0.002)  # a new millisecond each
    ids = [result.message.id for result in made]
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_the_entries_a_batch_returns_are_the_ones_its_users_logs_hold(store: Store) -> None:
    # (PostgreSQL numbers a batch's entries and writes their cursors into their JSON in the
    # statement that bumps the cursors: what it wrote must be what the events say)
    alice, bob, carol = users(store, "alice", "bob", "carol")
    for sender, recipient in ((alice, bob), (carol, bob), (bob, alice)):
        store.accept_message(sender=sender, command_id="first", recipient=recipient, text="hi", now=1.0)
    logs = (alice, bob, carol)
    before = {user: store.sync(user=user, after=0, limit=100)[0][-1].cursor for user in logs}
    sends = [
        TextSend(alice, "c2", bob, 'two, "quoted" \\ and ünïcode ✓'),
        TextSend(bob, "b2", alice, "back"),
        TextSend(carol, "k2", bob, "again"),
        TextSend(alice, "c3", bob, '{"cursor": 0}'),
    ]

    with store.batch():
        stored = store.accept_texts(sends, now=2.0) or [
            store.accept_message(
                sender=s.sender, command_id=s.command_id, recipient=s.recipient, text=s.text, now=2.0
            )
            for s in sends
        ]
    to_bob = [r.message.id for r in stored if r.message.recipient == bob]
    to_alice = [r.message.id for r in stored if r.message.recipient == alice]
    requests = [
        ReceiptRequest(bob, Status.DELIVERED, to_bob),
        ReceiptRequest(alice, Status.DELIVERED, to_alice),
    ]
    with store.batch():
        applied = store.apply_receipts_of(requests, now=3.0) or [
            store.apply_receipts(user=r.user, status=r.status, message_ids=r.message_ids, now=3.0)
            for r in requests
        ]

    returned = [e for r in stored for e in r.entries] + [e for r in applied for e in r.entries]
    assert {e.user for e in returned} == set(logs)
    for user in logs:
        log = store.sync(user=user, after=before[user], limit=100)[0]
        assert [(e.cursor, e.payload) for e in log] == sorted(
            ((e.cursor, e.payload) for e in returned if e.user == user), key=lambda pair: pair[0]
        )
        assert [e.cursor for e in log] == list(range(before[user] + 1, before[user] + 1 + len(log)))
        assert all(SCHEMA.is_valid(e.payload) for e in log)
