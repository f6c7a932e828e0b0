"""Who may see whose presence, on SQLite, PostgreSQL and MongoDB: a user itself, its 1-on-1 partners
and its group mates; nobody else."""

from __future__ import annotations

from tests.stores.conftest import users
from workers.stores import Store


def test_strangers_do_not_see_each_other(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    assert not store.can_see_presence(alice, bob)
    assert not store.can_see_presence(bob, alice)


def test_a_user_sees_itself(store: Store) -> None:
    (alice,) = users(store, "alice")

    assert store.can_see_presence(alice, alice)


def test_one_message_makes_both_sides_contacts(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")

    # When alice sends bob one message
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0)

    # Then each sees the other, and carol is still a stranger to both
    assert store.can_see_presence(alice, bob) and store.can_see_presence(bob, alice)
    assert not store.can_see_presence(carol, alice) and not store.can_see_presence(alice, carol)


def test_group_mates_see_each_other_until_one_leaves(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    group = store.create_group(
        creator=alice, name="climbing", members=[bob, carol], now=2.0, ref="g", max_members=10
    ).group

    assert store.can_see_presence(bob, carol) and store.can_see_presence(carol, alice)
    assert not store.can_see_presence(dave, bob) and not store.can_see_presence(bob, dave)

    # When carol leaves (nobody sent a message, so no 1-on-1 chat keeps them contacts)
    store.leave_group(group=group.id, user=carol, now=3.0, ref="l")

    assert not store.can_see_presence(bob, carol) and not store.can_see_presence(carol, alice)
    assert store.can_see_presence(bob, alice)


def test_a_group_message_does_not_make_a_1_on_1_chat(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    group = store.create_group(
        creator=alice, name="pair", members=[bob], now=2.0, ref="g", max_members=10
    ).group
    store.accept_message(sender=alice, command_id="c1", recipient=group.id, text="hi", now=3.0)

    # When bob leaves the group, they share nothing any more
    store.leave_group(group=group.id, user=bob, now=4.0, ref="l")

    assert not store.can_see_presence(alice, bob)
