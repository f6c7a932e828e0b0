"""What the admin API reads from the store, on SQLite, PostgreSQL and MongoDB: users and groups a
page at a time in id order, and one of each."""

from __future__ import annotations

import uuid

from tests.stores.conftest import users
from workers.stores import Store


def test_users_come_a_page_at_a_time_in_id_order(store: Store) -> None:
    # Given three users under a prefix of their own (the PostgreSQL database is shared)
    prefix = f"page-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}-{letter}" for letter in "abc"]
    for name in reversed(names):
        store.create_user(name, now=2.0)
    store.add_credential(names[1], kind="token", secret_hash="sha256$x", now=3.0)
    store.add_credential(names[1], kind="token", secret_hash="sha256$y", now=3.0)

    # When they are read two at a time, starting after the prefix
    first = store.users_page(after=prefix, limit=2)
    second = store.users_page(after=first[-1].id, limit=2)

    # Then each comes once, in order, with its credentials counted
    assert [u.id for u in first] == names[:2]
    assert second[0].id == names[2]
    assert [u.credentials for u in first] == [0, 2]
    assert first[0].created_at == 2.0 and first[0].last_seen is None
    assert [u.id for u in store.users_page(after=None, limit=1)] == [store.list_users()[0].id]


def test_one_user(store: Store) -> None:
    (alice,) = users(store, "alice")
    store.add_credential(alice, kind="token", secret_hash="sha256$x", now=3.0)
    store.set_last_seen(alice, 5.0)

    info = store.user_info(alice)

    assert info is not None
    assert (info.id, info.created_at, info.last_seen, info.credentials) == (alice, 1.0, 5.0, 1)
    assert store.user_info(alice + "-nobody") is None


def test_groups_come_a_page_at_a_time_with_members_and_admins(store: Store) -> None:
    # Given two groups
    alice, bob, carol = users(store, "alice", "bob", "carol")
    one = store.create_group(creator=alice, name="one", members=[bob], now=1.0, ref="c1", max_members=9)
    two = store.create_group(
        creator=bob, name="two", members=[carol, alice], now=1.0, ref="c2", max_members=9
    )
    store.promote(group=two.group.id, actor=bob, members=[carol], now=2.0, ref="c3")
    ids = sorted([one.group.id, two.group.id])

    # When every group is read a page at a time
    seen = []
    page = store.groups_page(after=None, limit=2)
    while page:
        seen += page
        page = store.groups_page(after=page[-1].id, limit=2)

    # Then both are there once, in id order, as they are now
    ours = [g for g in seen if g.id in ids]
    assert [g.id for g in ours] == ids
    assert len(seen) == len({g.id for g in seen})
    by_id = {g.id: g for g in ours}
    assert by_id[one.group.id].members == [alice, bob] and by_id[one.group.id].admins == [alice]
    assert by_id[two.group.id].members == [bob, carol, alice]
    assert by_id[two.group.id].admins == [bob, carol]
    assert store.group_info(two.group.id) == by_id[two.group.id]
    assert store.group_info("g:nothing") is None
