"""Deleting a message for everyone (every backend): the message becomes a tombstone, its text and
media leave the store (the message row or document and every inbox entry that carried it), and
its sender and recipients get a ``deleted`` event with a cursor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from client_sdk.contract import ErrorCode, Status
from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_media import media
from workers.errors import CommandError
from workers.stores import Store

SECRET = "the launch code is 0000"


def raw_text(store: Store, message_id: str, people: list[str]) -> str:
    """Everything the database holds of the message and of the people's inboxes, as text."""
    from sqlalchemy import select

    from workers.stores.sql import SqlStore
    from workers.stores.sql.schema import inbox, message_media, messages

    if isinstance(store, SqlStore):
        with store.engine.connect() as conn:
            rows: list[Any] = [
                *conn.execute(select(messages).where(messages.c.id == message_id)).all(),
                *conn.execute(select(message_media).where(message_media.c.message_id == message_id)).all(),
                *conn.execute(select(inbox).where(inbox.c.user_id.in_(people))).all(),
            ]
        return repr([tuple(r) for r in rows])
    db = store._db  # type: ignore[attr-defined]
    docs = [db["messages"].find_one({"_id": message_id}), *db["inbox"].find({"user": {"$in": people}})]
    return json.dumps(docs, default=str)


def test_a_deleted_message_keeps_its_place_and_loses_its_text_everywhere(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=10.0)
    message_id = sent.message.id
    store.apply_receipts(user=bob, status=Status.DELIVERED, message_ids=[message_id], now=11.0)
    assert SECRET in raw_text(store, message_id, [alice, bob])

    deletion = store.delete_for_everyone(message_id, by="admin", now=20.0)

    assert deletion.changed
    stone = deletion.message
    assert stone == {
        "id": message_id,
        "conversation": sent.message.conversation,
        "seq": sent.message.seq,
        "from": alice,
        "to": bob,
        "ts": 10.0,
        "deleted": True,
        "deleted_at": 20.0,
        "deleted_by": "admin",
    }
    assert SECRET not in raw_text(store, message_id, [alice, bob])
    # the sender and the recipient each get a ``deleted`` event with the next cursor
    alice_log, _ = store.sync(user=alice, after=0, limit=50)
    bob_log, _ = store.sync(user=bob, after=0, limit=50)
    assert [(e.user, e.cursor) for e in deletion.entries] == [
        (alice, alice_log[-1].cursor),
        (bob, bob_log[-1].cursor),
    ]
    for log in (alice_log, bob_log):
        last = log[-1].payload
        assert last["type"] == "deleted" and last["cursor"] == log[-1].cursor
        assert last["message_id"] == message_id and last["by"] == "admin" and last["ts"] == 20.0
        assert last["message"] == stone
        assert [e.cursor for e in log] == list(range(1, len(log) + 1))  # no gap
    # the entries that carried it now carry the tombstone, in their places
    assert alice_log[0].payload["type"] == "sent" and alice_log[0].payload["message"] == stone
    assert alice_log[0].payload["ref"] == "c1"
    assert bob_log[0].payload["type"] == "message" and bob_log[0].payload["message"] == stone
    # the receipt stays (its event carries no text)
    assert any(e.payload["type"] == "receipt" for e in alice_log)
    # a resend of the same command is answered with the tombstone, not stored again
    again = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=30.0)
    assert again.duplicate and again.sent.payload["message"] == stone
    assert SECRET not in raw_text(store, message_id, [alice, bob])


def test_deleting_a_tombstone_again_changes_nothing(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text="x", now=1.0
    ).message.id
    first = store.delete_for_everyone(message_id, by=alice, now=2.0)
    before, _ = store.sync(user=bob, after=0, limit=50)

    again = store.delete_for_everyone(message_id, by="admin", now=3.0)

    assert not again.changed and again.entries == [] and again.media_keys == []
    assert again.message == first.message and again.message["deleted_by"] == alice
    after, _ = store.sync(user=bob, after=0, limit=50)
    assert after == before


def test_an_unknown_message_is_not_found(store: Store) -> None:
    users(store, "alice")
    with pytest.raises(CommandError) as raised:
        store.delete_for_everyone("f" * 32, by="admin", now=1.0)
    assert raised.value.code == ErrorCode.NOT_FOUND


def test_a_deleted_media_message_gives_up_its_objects(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    photo = media(unique("p"))
    sent = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text=SECRET, now=1.0, media=photo
    )
    keys = [photo["key"], photo["thumbnail"]["key"]]
    assert all(store.can_read_media(bob, key) for key in keys)

    deletion = store.delete_for_everyone(sent.message.id, by="admin", now=2.0)

    assert sorted(deletion.media_keys) == sorted(keys)
    assert "media" not in deletion.message
    assert not any(store.can_read_media(user, key) for user in (alice, bob, carol) for key in keys)
    text = raw_text(store, sent.message.id, [alice, bob])
    assert SECRET not in text and photo["key"] not in text


def test_a_group_deletion_reaches_the_members_who_had_it(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol, dave], now=1.0, ref="g1", max_members=10
    ).group.id
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=group, text=SECRET, now=2.0
    ).message.id
    store.remove_members(group=group, actor=alice, members=[dave], now=3.0, ref="g2")
    erin = users(store, "erin")[0]
    store.add_members(group=group, actor=alice, members=[erin], now=4.0, ref="g3", max_members=10)

    deletion = store.delete_for_everyone(message_id, by="admin", now=5.0)

    # the members who had a copy and the sender; not dave (removed), not erin (joined later)
    assert sorted(e.user for e in deletion.entries) == sorted([alice, bob, carol])
    assert SECRET not in raw_text(store, message_id, [alice, bob, carol, dave, erin])
    dave_log, _ = store.sync(user=dave, after=0, limit=50)
    copy = next(e for e in dave_log if e.payload["type"] == "message")
    assert copy.payload["message"]["deleted"] is True  # his old copy is scrubbed too
