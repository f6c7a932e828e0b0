"""Two transactions of the SQL store meeting on a unique key, on PostgreSQL (SQLite takes its write
lock at the start, so nothing races there): the IntegrityError of the one that waited must reach
the store's handlers as ``sqlalchemy.exc.IntegrityError``, and the answer is what the first stored."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.stores.conftest import users
from workers.stores import AcceptResult, Store, TextSend, open_store

pytestmark = pytest.mark.postgres

_WAIT = 30.0


@pytest.fixture
def racing(postgres_url: str) -> Iterator[tuple[Store, Callable[[], None]]]:
    """The store, and a function that returns once one of its connections waits for a lock."""
    name = f"mqchat-race-{uuid.uuid4().hex[:12]}"
    store = open_store(f"{postgres_url}?application_name={name}")
    store.create_schema()
    admin: Engine = create_engine(postgres_url)

    def until_one_waits() -> None:
        deadline = time.monotonic() + _WAIT
        query = text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :n AND wait_event_type = 'Lock'"
        )
        while time.monotonic() < deadline:
            with admin.connect() as conn:
                if conn.execute(query, {"n": name}).scalar_one():
                    return
            time.sleep(0.01)
        pytest.fail("the second transaction never waited for the first")

    try:
        yield store, until_one_waits
    finally:
        store.close()
        admin.dispose()


def in_thread(action: Callable[[], AcceptResult]) -> Callable[[], AcceptResult]:
    """Start ``action`` in a thread; the returned function joins it and gives its result."""
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = action()
        except BaseException as exc:  # handed to the test thread
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def join() -> AcceptResult:
        thread.join(_WAIT)
        if "error" in out:
            raise out["error"]
        result: AcceptResult = out["result"]
        return result

    return join


def test_a_resend_that_waited_for_the_original_answers_with_it(
    racing: tuple[Store, Callable[[], None]],
) -> None:
    store, until_one_waits = racing
    alice, bob = users(store, "alice", "bob")
    store.accept_message(sender=alice, command_id="before", recipient=bob, text="0", now=1.0)

    with store.batch():
        original = store.accept_message(sender=alice, command_id="same", recipient=bob, text="1", now=2.0)
        resend = in_thread(
            lambda: store.accept_message(sender=alice, command_id="same", recipient=bob, text="1", now=3.0)
        )
        until_one_waits()
    again = resend()

    assert again.duplicate and again.entries == []
    assert again.message == original.message and again.sent == original.sent
    inbox, _ = store.sync(user=bob, after=0, limit=10)
    assert [e.payload["message"]["text"] for e in inbox] == ["0", "1"]


def test_the_first_messages_of_a_conversation_meeting_get_seqs_1_and_2(
    racing: tuple[Store, Callable[[], None]],
) -> None:
    store, until_one_waits = racing
    alice, bob = users(store, "alice", "bob")

    with store.batch():
        first = store.accept_message(sender=alice, command_id="a", recipient=bob, text="hi", now=1.0)
        reply = in_thread(
            lambda: store.accept_message(sender=bob, command_id="b", recipient=alice, text="yo", now=1.0)
        )
        until_one_waits()  # on the new conversation's row
    second = reply()

    assert (first.message.seq, second.message.seq) == (1, 2)
    assert not second.duplicate
    assert [e.payload["message"]["seq"] for e in store.sync(user=alice, after=0, limit=10)[0]] == [1, 2]


def test_concurrent_batches_with_different_counts_per_conversation_never_deadlock(postgres_url: str) -> None:
    # Given three conversations, and four workers storing batches that each hold messages of two
    # or three of them, so many per conversation that every batch bumps its rows in several
    # statements (one per distinct count) - in different orders from batch to batch
    store = open_store(postgres_url)
    store.create_schema()
    try:
        people = users(store, "a", "b", "c", "d", "e", "f")
        pairs = [(people[0], people[1]), (people[2], people[3]), (people[4], people[5])]
        for n, (sender, recipient) in enumerate(pairs):
            store.accept_message(
                sender=sender, command_id=f"first-{n}", recipient=recipient, text="", now=1.0
            )
        failures: list[BaseException] = []
        stored = Counter({recipient: 1 for _sender, recipient in pairs})

        def work(worker: int) -> None:
            rng = random.Random(worker)
            for batch in range(40):
                sends = []
                for pair in rng.sample(pairs, rng.choice([2, 3])):
                    for i in range(rng.randint(1, 4)):
                        sends.append(TextSend(pair[0], f"w{worker}-b{batch}-{len(sends)}", pair[1], f"{i}"))
                try:
                    assert store.accept_texts(sends, now=2.0) is not None
                    stored.update(send.recipient for send in sends)
                except BaseException as exc:  # handed to the test thread
                    failures.append(exc)
                    return

        # When they all run at once
        threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        # Then none of them was refused (PostgreSQL aborts one side of a deadlock) and every
        # conversation's messages are numbered without a gap
        assert failures == []
        for _sender, recipient in pairs:
            inbox, _ = store.sync(user=recipient, after=0, limit=10_000)
            seqs = [e.payload["message"]["seq"] for e in inbox if e.payload["type"] == "message"]
            assert seqs == list(range(1, stored[recipient] + 1))
    finally:
        store.close()


def test_two_reactions_to_one_message_at_once_both_reach_the_summary(
    racing: tuple[Store, Callable[[], None]],
) -> None:
    store, until_one_waits = racing
    alice, bob = users(store, "alice", "bob")
    message_id = store.accept_message(
        sender=alice, command_id="m", recipient=bob, text="hi", now=1.0
    ).message.id
    out: dict[str, Any] = {}

    def bob_reacts() -> None:
        out["change"] = store.react(user=bob, message_id=message_id, emoji="👍", command_id="r2", now=2.0)

    # When bob reacts while alice's reaction is not committed yet
    with store.batch():
        store.react(user=alice, message_id=message_id, emoji="😂", command_id="r1", now=2.0)
        thread = threading.Thread(target=bob_reacts, daemon=True)
        thread.start()
        until_one_waits()  # on the message's row
    thread.join(_WAIT)

    # Then his change saw hers: the summary, and every carrier of the message, holds both
    assert out["change"].reactions == {alice: "😂", bob: "👍"}
    for user in (alice, bob):
        (carrier,) = [
            e for e in store.sync(user=user, after=0, limit=10)[0] if e.payload["type"] != "reaction"
        ]
        assert carrier.payload["message"]["reactions"] == {alice: "😂", bob: "👍"}
