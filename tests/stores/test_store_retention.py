"""Retention (every backend): the old prefix of each inbox and of each conversation goes, in
steps that go on where they stopped; what stays is gapless, the pruned floor is recorded for
``sync``, deleted messages take their receipts and reactions with them, and their media objects
are given back for removal only when no other message uses them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url, text

from config.settings import RetentionSettings
from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_media import media
from workers.retention import Pruner, SweepReport
from workers.stores import Store, open_store
from workers.stores.rules.retention import cut_off, inbox_days, needs_reset


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mongo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A store of this test's own on each backend: a sweep goes through every user and
    conversation, so it must not touch the shared PostgreSQL database other tests use."""
    admin, name = None, ""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    elif request.param == "postgres":
        shared = request.getfixturevalue("postgres_url")
        name = f"mqchat_{uuid.uuid4().hex[:12]}"
        admin = create_engine(shared, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(shared).set(database=name).render_as_string(False)
    else:
        url = request.getfixturevalue("mongo_url")  # a database of its own already
    opened = open_store(url)
    opened.create_schema()
    try:
        yield opened
    finally:
        opened.close()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()


def send(store: Store, sender: str, to: str, now: float, **extra: Any) -> Any:
    return store.accept_message(
        sender=sender, command_id=unique("c"), recipient=to, text="hi", now=now, **extra
    )


def prune_all_inboxes(store: Store, older_than: float) -> int:
    total = 0
    while True:
        pruned, done = store.prune_inbox(older_than=older_than, max_users=2)
        total += pruned
        if done:
            return total


def prune_all_messages(store: Store, older_than: float) -> tuple[int, list[str]]:
    deleted, keys = 0, []
    while True:
        step = store.prune_messages(older_than=older_than, max_conversations=1)
        deleted += step.deleted
        keys.extend(step.media_keys)
        if step.done:
            return deleted, keys


def test_old_inbox_entries_go_and_the_floor_is_recorded(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    for _ in range(3):
        send(store, alice, bob, now=100.0)
    send(store, carol, alice, now=100.0)
    kept = send(store, alice, bob, now=5000.0)

    pruned = prune_all_inboxes(store, older_than=1000.0)

    assert pruned == 3 + 3 + 1 + 1  # alice's 3 sent, bob's 3 copies, carol's 1 sent, alice's 1 copy
    entries, _ = store.sync(user=bob, after=0, limit=100)
    assert [e.cursor for e in entries] == [4] and entries[0].payload["message"]["id"] == kept.message.id
    assert store.inbox_floor(bob) == 3
    assert store.inbox_floor(alice) == 4 and store.inbox_floor(carol) == 1
    assert store.inbox_floor(unique("nobody")) == 0
    # a second sweep finds nothing more; new entries keep coming after the floor
    assert prune_all_inboxes(store, older_than=1000.0) == 0
    later = send(store, alice, bob, now=6000.0)
    assert later.entries[1].cursor == 5
    # whether a sync must be reset: from before the floor and not starting right after it
    assert needs_reset(after=0, first_cursor=4, floor=3)
    assert needs_reset(after=2, first_cursor=None, floor=3)
    assert not needs_reset(after=3, first_cursor=4, floor=3)
    assert not needs_reset(after=5, first_cursor=None, floor=3)


def test_a_sweep_step_prunes_only_the_users_with_something_old(store: Store) -> None:
    alice, bob, carol, dave, erin = users(store, "alice", "bob", "carol", "dave", "erin")
    send(store, alice, bob, now=100.0)  # alice and bob: one old entry each
    send(store, carol, dave, now=1000.0)  # carol and dave: made at the cut, kept
    send(store, carol, dave, now=2000.0)
    # erin: no inbox at all

    pruned, done = store.prune_inbox(older_than=1000.0, max_users=100)

    assert (pruned, done) == (2, True)
    assert [store.inbox_floor(u) for u in (alice, bob, carol, dave, erin)] == [1, 1, 0, 0, 0]
    assert [e.cursor for e in store.sync(user=dave, after=0, limit=10)[0]] == [1, 2]


def test_the_inbox_sweep_goes_on_where_it_stopped(store: Store) -> None:
    names = users(store, *(f"u{i}" for i in range(5)))
    for user in names:
        send(store, names[0] if user != names[0] else names[1], user, now=1.0)

    _pruned, done = store.prune_inbox(older_than=10.0, max_users=1)

    assert not done
    # the next steps (another process, after a restart: the position is stored) do the rest
    while not done:
        _, done = store.prune_inbox(older_than=10.0, max_users=1)
    assert all(store.sync(user=u, after=0, limit=10)[0] == [] for u in names)


def test_old_messages_are_deleted_with_their_rows_and_media_only_when_unused(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    own = media(unique("own"))
    shared = media(unique("shared"))
    old_photo = send(store, alice, bob, now=100.0, media=own).message
    old_shared = send(store, alice, bob, now=100.0, media=shared).message
    store.react(user=bob, message_id=old_photo.id, emoji="👍", command_id="r1", now=101.0)
    forward = store.forward_message(
        sender=bob, command_id="f1", message_id=old_shared.id, recipient=carol, now=5000.0
    ).message
    new = send(store, bob, alice, now=5000.0).message

    deleted, keys = prune_all_messages(store, older_than=1000.0)

    assert deleted == 2
    assert sorted(keys) == sorted([own["key"], own["thumbnail"]["key"]])  # the forward keeps the other
    assert store.message_views([old_photo.id, old_shared.id], viewer=alice) == {}
    assert set(store.message_views([new.id, forward.id], viewer=bob)) == {new.id, forward.id}
    assert store.can_read_media(carol, shared["key"])
    assert not store.can_read_media(bob, own["key"])
    # the conversation goes on numbering after what was deleted
    assert send(store, alice, bob, now=6000.0).message.seq == new.seq + 1
    assert prune_all_messages(store, older_than=1000.0) == (0, [])


def test_only_one_process_holds_the_lease_until_it_expires(store: Store) -> None:
    assert store.retention_lease("node-a", now=100.0, ttl=60.0)
    assert not store.retention_lease("node-b", now=120.0, ttl=60.0)
    assert store.retention_lease("node-a", now=130.0, ttl=60.0)  # renewed
    assert not store.retention_lease("node-b", now=180.0, ttl=60.0)
    assert store.retention_lease("node-b", now=191.0, ttl=60.0)
    # one that stops gives it up: the next takes it at once; a release by another changes nothing
    store.retention_release("node-a")
    assert not store.retention_lease("node-c", now=192.0, ttl=60.0)
    store.retention_release("node-b")
    assert store.retention_lease("node-c", now=193.0, ttl=60.0)


def test_the_inbox_is_pruned_at_the_shorter_of_the_two_ages() -> None:
    assert inbox_days(30, 0) == 30 and inbox_days(0, 7) == 7 and inbox_days(30, 7) == 7
    assert inbox_days(0, 0) == 0
    assert cut_off(0, now=1e9) is None and cut_off(1, now=100_000.0) == 100_000.0 - 86_400.0


def test_the_pruner_sweeps_both_only_while_it_holds_the_lease(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    photo = media(unique("pruned"))
    send(store, alice, bob, now=100.0, media=photo)
    send(store, alice, bob, now=9_500_000.0)
    discarded: list[str] = []
    settings = RetentionSettings(inbox_days=300, messages_days=10, interval=60)
    clock = lambda: 10_000_000.0  # noqa: E731 - ten days are 864,000 s: the first message is old
    first = Pruner(store, settings, holder="node-a", discard=discarded.extend, clock=clock)
    second = Pruner(store, settings, holder="node-b", clock=clock)

    report = first.sweep()

    assert report.ran and (report.messages, report.inbox_entries, report.media_objects) == (1, 2, 2)
    assert sorted(discarded) == sorted([photo["key"], photo["thumbnail"]["key"]])
    assert not second.sweep().ran  # node-a holds the lease
    first.release()
    assert second.sweep() == SweepReport(ran=True)  # nothing more to prune
    # nothing to prune at all: no sweep, and the lease is not taken
    idle = Pruner(store, RetentionSettings(inbox_days=0, messages_days=0), holder="node-c", clock=clock)
    assert not idle.active and not idle.sweep().ran
    second.release()
    assert store.retention_lease("node-d", now=10_000_000.0, ttl=1.0)
