"""Disappearing messages (every backend): a conversation's timer, the ``expires_at`` of messages
sent under it, and the sweep that scrubs them from the store and from every inbox entry that
carried them, with one ``expired`` event per hearer."""

from __future__ import annotations

import pytest

from client_sdk.contract import ErrorCode
from tests.stores.conftest import users
from tests.stores.test_store_deletion import raw_text
from tests.stores.test_store_media import media
from workers.errors import CommandError
from workers.stores import Store, TextSend
from workers.stores.rules.timers import EXPIRED_BY, gone_stub

SECRET = "this self-destructs"
DAY = 86_400
BIG = 10_000  # the sweep takes everything due (PostgreSQL keeps other tests' rows: tolerated)


def test_a_timer_is_announced_to_both_sides_and_read_back(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    change = store.set_timer(user=bob, to=alice, seconds=DAY, now=5.0, ref="t1")
    assert change.changed and change.seconds == DAY
    assert [e.user for e in change.entries] == [bob, alice]
    own, other = (e.payload for e in change.entries)
    assert own["type"] == "timer" and own["ref"] == "t1" and other["ref"] is None
    assert own["conversation"] == other["conversation"] == change.conversation
    assert (own["seconds"], own["by"], own["ts"]) == (DAY, bob, 5.0)
    assert store.timer_of(user=alice, to=bob) == (change.conversation, DAY)
    # the same value again changes nothing (a resend)
    again = store.set_timer(user=bob, to=alice, seconds=DAY, now=6.0, ref="t1")
    assert not again.changed and again.entries == []
    off = store.set_timer(user=alice, to=bob, seconds=0, now=7.0, ref="t2")
    assert off.changed and store.timer_of(user=bob, to=alice)[1] == 0


def test_messages_sent_under_a_timer_carry_expires_at_others_do_not(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.accept_message(sender=alice, command_id="c0", recipient=bob, text="hi", now=1.0)
    store.accept_message(sender=alice, command_id="d0", recipient=carol, text="hi", now=1.0)
    store.set_timer(user=alice, to=bob, seconds=DAY, now=2.0, ref="t1")
    one = store.accept_message(sender=bob, command_id="c1", recipient=alice, text=SECRET, now=10.0)
    assert one.message.expires_at == 10.0 + DAY
    assert one.entries[1].payload["message"]["expires_at"] == 10.0 + DAY
    together = store.accept_texts(
        [TextSend(alice, "c2", bob, SECRET), TextSend(alice, "d1", carol, "stays")], now=20.0
    )
    if together is not None:  # SQL stores a batch's texts together; MongoDB one by one
        timed, plain = together
        assert timed.message.expires_at == 20.0 + DAY
        assert plain.message.expires_at is None and "expires_at" not in plain.sent.payload["message"]
    plain_one = store.accept_message(sender=carol, command_id="e1", recipient=alice, text="x", now=21.0)
    assert plain_one.message.expires_at is None
    # a forward into the conversation with a timer expires too; one out of it does not
    into = store.forward_message(
        sender=alice, command_id="f1", message_id=plain_one.message.id, recipient=bob, now=30.0
    )
    assert (
        into.message.expires_at == 30.0 + DAY
        and into.entries[1].payload["message"]["expires_at"] == 30.0 + DAY
    )
    out = store.forward_message(
        sender=alice, command_id="f2", message_id=one.message.id, recipient=carol, now=31.0
    )
    assert out.message.expires_at is None


def test_an_expired_message_leaves_the_store_and_every_inbox(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_timer(user=alice, to=bob, seconds=DAY, now=1.0, ref="t1")
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=10.0)
    kept = store.accept_message(sender=alice, command_id="c2", recipient=bob, text="later", now=100.0)
    message_id = sent.message.id
    store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=11.0)
    reply = store.accept_message(
        sender=bob, command_id="c3", recipient=alice, text="re", now=12.0, reply_to=message_id
    )
    assert store.expire_due(now=10.0 + DAY - 1, limit=BIG).expired.count(message_id) == 0

    expiry = store.expire_due(now=10.0 + DAY, limit=BIG)

    assert message_id in expiry.expired and kept.message.id not in expiry.expired
    assert SECRET not in raw_text(store, message_id, [alice, bob])
    mine = [e for e in expiry.entries if e.user in (alice, bob)]
    assert sorted(e.user for e in mine) == sorted([alice, bob])
    for entry in mine:
        stubs = entry.payload["messages"]
        assert entry.payload["type"] == "expired"
        assert {"id": message_id, "expired": True}.items() <= stubs[0].items()
        log, _ = store.sync(user=entry.user, after=0, limit=100)
        assert log[-1].cursor == entry.cursor
        carrier = next(e for e in log if e.payload.get("message", {}).get("id") == message_id)
        assert carrier.payload["message"] == stubs[0] and "text" not in carrier.payload["message"]
        quoting = next(e for e in log if e.payload.get("message", {}).get("id") == reply.message.id)
        assert SECRET not in str(quoting.payload)
    # gone for every rule: no reaction, no reply to it, no second expiry
    facts = store.message_facts(message_id)
    assert facts is not None and facts.deleted
    with pytest.raises(CommandError) as refused:
        store.react(user=bob, message_id=message_id, emoji="😀", command_id="r2", now=13.0 + DAY)
    assert refused.value.code is ErrorCode.NOT_FOUND
    assert message_id not in store.expire_due(now=10.0 + 2 * DAY, limit=BIG).expired


def test_an_expired_media_message_gives_up_its_objects(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_timer(user=bob, to=alice, seconds=DAY, now=1.0, ref="t1")
    photo = media(f"expiring-{alice}")
    sent = store.accept_message(
        sender=alice, command_id="m1", recipient=bob, text="cap", now=10.0, media=photo
    )
    assert sent.message.expires_at == 10.0 + DAY
    expiry = store.expire_due(now=10.0 + DAY, limit=BIG)
    assert sent.message.id in expiry.expired
    assert {photo["key"], photo["thumbnail"]["key"]} <= set(expiry.media_keys)
    assert not store.can_read_media(bob, photo["key"])


def test_group_timers_are_for_admins_and_reach_members_who_had_the_message(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g1", max_members=10
    )
    gid = group.group.id
    with pytest.raises(CommandError) as refused:
        store.set_timer(user=bob, to=gid, seconds=DAY, now=2.0, ref="t0")
    assert refused.value.code is ErrorCode.NOT_ADMIN
    assert store.timer_of(user=bob, to=gid) == (gid, 0)
    outsider = users(store, "dave")[0]
    with pytest.raises(CommandError) as outside:
        store.timer_of(user=outsider, to=gid)
    assert outside.value.code is ErrorCode.NOT_MEMBER
    change = store.set_timer(user=alice, to=gid, seconds=DAY, now=3.0, ref="t1")
    assert sorted(e.user for e in change.entries) == sorted([alice, bob, carol])
    sent = store.accept_message(sender=bob, command_id="c1", recipient=gid, text=SECRET, now=10.0)
    assert sent.message.expires_at == 10.0 + DAY
    expiry = store.expire_due(now=20.0 + DAY, limit=BIG)
    assert sent.message.id in expiry.expired
    assert sorted(e.user for e in expiry.entries if e.user in (alice, bob, carol)) == sorted(
        [alice, bob, carol]
    )
    log, _ = store.sync(user=carol, after=0, limit=100)
    assert SECRET not in str([e.payload for e in log])


def test_a_message_deleted_before_it_expires_is_left_alone(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_timer(user=alice, to=bob, seconds=DAY, now=1.0, ref="t1")
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=10.0)
    store.delete_for_everyone(sent.message.id, by=alice, now=11.0)
    expiry = store.expire_due(now=10.0 + DAY, limit=BIG)
    assert sent.message.id not in expiry.expired
    assert all(e.user not in (alice, bob) for e in expiry.entries)


def test_a_message_gone_from_the_store_shows_as_expired_or_as_a_tombstone() -> None:
    where = {
        "message_id": "m1",
        "conversation": "dm:a:b",
        "seq": 3,
        "sender": "a",
        "recipient": "b",
        "ts": 1.0,
    }
    assert gone_stub(**where, deleted_at=9.0, deleted_by=EXPIRED_BY) == {
        "id": "m1",
        "conversation": "dm:a:b",
        "seq": 3,
        "from": "a",
        "to": "b",
        "ts": 1.0,
        "expired": True,
    }
    stone = gone_stub(**where, deleted_at=9.0, deleted_by="a")
    assert stone["deleted"] is True and stone["deleted_by"] == "a" and "expired" not in stone


def test_a_deleted_account_does_not_stop_the_sweep(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_timer(user=alice, to=bob, seconds=DAY, now=1.0, ref="t1")
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=SECRET, now=10.0)
    store.delete_user(bob)
    expiry = store.expire_due(now=10.0 + DAY, limit=BIG)
    assert sent.message.id in expiry.expired
    assert [e.user for e in expiry.entries if e.user in (alice, bob)] == [alice]
