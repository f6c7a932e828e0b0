"""The broker's presence check (broker.visibility) over a real SQLite store: a "yes" is
remembered for a while and within a bound, a "no" never, and a store that fails means "no"."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.visibility import Visibility
from tests.harness import unique
from workers.stores import Store, open_store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    opened.create_schema()
    yield opened
    opened.close()


def people(store: Store, *names: str) -> list[str]:
    made = [unique(name) for name in names]
    for user in made:
        store.create_user(user, now=1.0)
    return made


def can_see(visibility: Visibility, watcher: str, user: str) -> bool:
    return asyncio.run(visibility.can_see(watcher, user))


def test_a_new_contact_is_seen_at_once_because_a_no_is_not_remembered(store: Store) -> None:
    alice, bob = people(store, "alice", "bob")
    visibility = Visibility(store.can_see_presence, clock=Clock())

    assert can_see(visibility, alice, alice)
    assert not can_see(visibility, alice, bob)
    store.accept_message(sender=bob, command_id="c1", recipient=alice, text="hi", now=2.0)
    assert can_see(visibility, alice, bob)
    visibility.close()


def test_a_yes_is_remembered_for_the_ttl(store: Store) -> None:
    alice, bob = people(store, "alice", "bob")
    group = store.create_group(creator=alice, name="g", members=[bob], now=2.0, ref="g", max_members=5)
    clock = Clock()
    visibility = Visibility(store.can_see_presence, ttl=60.0, clock=clock)
    assert can_see(visibility, alice, bob)

    # When bob leaves, alice may still subscribe until the remembered yes runs out
    store.leave_group(group=group.group.id, user=bob, now=3.0, ref="l")
    clock.now += 59.0
    assert can_see(visibility, alice, bob)
    clock.now += 2.0
    assert not can_see(visibility, alice, bob)
    visibility.close()


def test_the_memory_is_bounded_the_oldest_forgotten_first(store: Store) -> None:
    alice, bob, carol = people(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=2.0, ref="g", max_members=5
    ).group
    visibility = Visibility(store.can_see_presence, max_entries=1, clock=Clock())
    assert can_see(visibility, alice, bob)
    store.remove_members(group=group.id, actor=alice, members=[bob], now=3.0, ref="r")

    # When another yes takes the only place, Then the first one is asked again (and is now a no)
    assert can_see(visibility, alice, carol)
    assert not can_see(visibility, alice, bob)
    visibility.close()


def test_a_store_that_fails_means_no() -> None:
    unreachable = open_store("postgresql+psycopg://mqchat@127.0.0.1:1/none?connect_timeout=2")
    visibility = Visibility(unreachable.can_see_presence)

    assert not can_see(visibility, "alice", "bob")
    assert can_see(visibility, "alice", "alice")  # one's own presence needs no store
    visibility.close()
    unreachable.close()


def test_a_block_is_not_hidden_by_a_remembered_yes(store: Store) -> None:
    alice, bob, carol = people(store, "alice", "bob", "carol")
    store.create_group(creator=alice, name="g", members=[bob, carol], now=2.0, ref="g", max_members=5)
    visibility = Visibility(store.can_see_presence, clock=Clock())
    assert can_see(visibility, bob, alice) and can_see(visibility, bob, carol)

    # When alice blocks bob, the node forgets that bob may see her (the block's order, or bob's
    # connection ending here), and the store says no
    store.set_block(user=alice, target=bob, blocked=True, ref="b", now=3.0)
    assert can_see(visibility, bob, alice)  # remembered until forgotten
    visibility.forget_pair(bob, alice)
    assert not can_see(visibility, bob, alice)
    store.set_block(user=carol, target=bob, blocked=True, ref="b", now=3.0)
    visibility.forget_watcher(bob)
    assert not can_see(visibility, bob, carol)
    visibility.close()
