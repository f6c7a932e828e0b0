"""Profiles on SQLite, PostgreSQL and MongoDB: a change reaches the user and each contact's inbox
with a cursor, contacts (and only they) may read it, group snapshots carry it, and a replaced
avatar is handed back for deletion."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.stores.conftest import users
from workers.errors import UnknownUser
from workers.stores import Store


def avatar() -> dict[str, Any]:
    """An avatar object with a key of its own (the PostgreSQL and MongoDB databases are shared)."""
    return {
        "key": f"a/{uuid.uuid4().hex}.jpg",
        "type": "image/jpeg",
        "size": 100,
        "width": 256,
        "height": 256,
    }


def test_a_change_reaches_the_user_and_each_contact_only(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0)
    store.accept_message(sender=dave, command_id="c2", recipient=alice, text="yo", now=2.5)
    store.create_group(creator=carol, name="g", members=[alice], now=2.6, ref="g", max_members=10)

    # When alice sets her name
    change = store.update_profile(user=alice, changes={"name": "Alice A."}, now=3.0, ref="p1")

    # Then she, bob, dave and carol each get one profile event with a cursor
    assert change.profile.name == "Alice A." and change.profile.about is None
    by_user = {e.user: e.payload for e in change.entries}
    assert sorted(by_user) == sorted([alice, bob, carol, dave])
    assert by_user[alice]["ref"] == "p1" and by_user[bob]["ref"] is None
    assert by_user[bob]["type"] == "profile" and by_user[bob]["profile"]["name"] == "Alice A."
    entries, _ = store.sync(user=bob, after=0, limit=100)
    assert entries[-1].payload == by_user[bob]
    assert change.replaced == []


def test_fields_change_one_by_one_and_clear(store: Store) -> None:
    (alice,) = users(store, "alice")
    store.update_profile(user=alice, changes={"name": "A", "about": "climbing"}, now=2.0, ref="p1")
    change = store.update_profile(user=alice, changes={"about": None}, now=3.0, ref="p2")

    assert (change.profile.name, change.profile.about, change.profile.ts) == ("A", None, 3.0)


def test_contacts_see_a_profile_strangers_do_not(store: Store) -> None:
    picture = avatar()
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0)
    store.update_profile(user=alice, changes={"name": "Alice", "avatar": picture}, now=3.0, ref="p1")

    seen = store.profiles_for(watcher=bob, users=[alice, carol, "nobody_here"], everyone=False)
    assert [(p.user, p.name, p.avatar) for p in seen] == [(alice, "Alice", picture)]
    assert store.profiles_for(watcher=carol, users=[alice], everyone=False) == []
    assert [p.user for p in store.profiles_for(watcher=carol, users=[alice], everyone=True)] == [alice]
    # a contact who set nothing has an empty profile
    assert [(p.user, p.name) for p in store.profiles_for(watcher=alice, users=[bob], everyone=False)] == [
        (bob, None)
    ]

    assert store.can_read_avatar(bob, picture["key"], everyone=False)
    assert store.can_read_avatar(alice, picture["key"], everyone=False)
    assert not store.can_read_avatar(carol, picture["key"], everyone=False)
    assert store.can_read_avatar(carol, picture["key"], everyone=True)
    assert not store.can_read_avatar(bob, "a/other.jpg", everyone=True)


def test_a_new_avatar_hands_back_the_old_one(store: Store) -> None:
    picture, newer = avatar(), avatar()
    alice, bob = users(store, "alice", "bob")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0)
    store.update_profile(user=alice, changes={"avatar": picture}, now=3.0, ref="p1")

    change = store.update_profile(user=alice, changes={"avatar": newer}, now=4.0, ref="p2")
    assert change.replaced == [picture["key"]]
    assert not store.can_read_avatar(bob, picture["key"], everyone=False)

    cleared = store.update_profile(user=alice, changes={"avatar": None}, now=5.0, ref="p3")
    assert cleared.replaced == [newer["key"]] and cleared.profile.avatar is None
    assert not store.can_read_avatar(bob, newer["key"], everyone=False)


def test_group_snapshots_carry_members_profiles(store: Store) -> None:
    picture = avatar()
    alice, bob = users(store, "alice", "bob")
    store.update_profile(user=alice, changes={"name": "Alice", "avatar": picture}, now=2.0, ref="p1")

    change = store.create_group(creator=alice, name="g", members=[bob], now=3.0, ref="g", max_members=10)

    wire = change.entries[0].payload["group"]
    assert wire["profiles"] == {alice: {"name": "Alice", "about": None, "avatar": picture, "ts": 2.0}}
    (listed,) = store.groups_of(bob)
    assert listed.profiles[alice]["name"] == "Alice" and bob not in listed.profiles


def test_an_unknown_user_has_no_profile_to_set(store: Store) -> None:
    with pytest.raises(UnknownUser):
        store.update_profile(user="nobody_at_all", changes={"name": "x"}, now=1.0, ref="p")
