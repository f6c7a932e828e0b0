"""Blocking and reports (every backend): a block is a ``blocking`` event in the blocker's inbox;
the blocked user's 1-on-1 messages are stored and answered ``sent`` but get no copy for the
blocker; their group messages still do; receipts, presence, profiles and group adds follow
``rules.blocks``; a report keeps copies of the messages as the reporter saw them."""

from __future__ import annotations

import pytest

from client_sdk.contract import ErrorCode, Status
from tests.stores.conftest import users
from workers.errors import CommandError, UnknownUser
from workers.stores import InboxEntry, ReceiptRequest, ReportInfo, Store, TextSend


def log(store: Store, user: str) -> list[InboxEntry]:
    entries, more = store.sync(user=user, after=0, limit=500)
    assert not more
    return entries


def kinds(store: Store, user: str) -> list[str]:
    return [e.payload["type"] for e in log(store, user)]


def test_a_block_is_an_event_for_the_blocker_and_a_repeat_changes_nothing(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    change = store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=1.0)
    again = store.set_block(user=alice, target=bob, blocked=True, ref="b2", now=2.0)

    assert change.changed and not again.changed and not again.entries
    entries = log(store, alice)
    assert [e.payload for e in entries] == [
        {"v": 1, "type": "blocking", "cursor": 1, "ref": "b1", "user": bob, "blocked": True, "ts": 1.0}
    ]
    assert store.blocked_users(alice) == [bob]
    assert store.blocked_users(bob) == [] and log(store, bob) == []

    undone = store.set_block(user=alice, target=bob, blocked=False, ref="u1", now=3.0)

    assert undone.changed and store.blocked_users(alice) == []
    assert log(store, alice)[-1].payload["blocked"] is False

    # the first block resent after the unblock (its answer was lost) changes nothing
    assert not store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=4.0).changed
    assert store.blocked_users(alice) == [] and len(log(store, alice)) == 2


def test_blocking_oneself_or_nobody_is_refused(store: Store) -> None:
    (alice,) = users(store, "alice")
    with pytest.raises(CommandError) as refused:
        store.set_block(user=alice, target=alice, blocked=True, ref="b1", now=1.0)
    assert refused.value.code == ErrorCode.BAD_REQUEST
    with pytest.raises(UnknownUser):
        store.set_block(user=alice, target="nobody", blocked=True, ref="b2", now=1.0)
    assert store.blocked_users(alice) == [] and log(store, alice) == []


def test_a_blocked_users_message_is_sent_but_never_delivered(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=1.0)

    result = store.accept_message(sender=bob, command_id="s1", recipient=alice, text="hey", now=2.0)

    assert [e.user for e in result.entries] == [bob] and result.sent.payload["type"] == "sent"
    assert kinds(store, alice) == ["blocking"]
    assert kinds(store, bob) == ["sent"]
    # alice cannot acknowledge what she never got, so bob hears nothing
    receipt = store.apply_receipts(user=alice, status=Status.READ, message_ids=[result.message.id], now=3.0)
    assert receipt.not_recipient == [result.message.id] and kinds(store, bob) == ["sent"]


def test_a_batch_of_texts_skips_only_the_blocked_copies(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    # the conversations exist (a batch stores only into existing ones)
    for sender, recipient in ((bob, alice), (carol, alice)):
        store.accept_message(sender=sender, command_id="first", recipient=recipient, text="hi", now=1.0)
    store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=2.0)
    before = len(log(store, alice))

    results = store.accept_texts(
        [TextSend(bob, "s2", alice, "from bob"), TextSend(carol, "s2", alice, "from carol")], now=3.0
    )

    if results is None:  # a backend without batches stores them one by one
        results = [
            store.accept_message(sender=s, command_id="s2", recipient=alice, text=t, now=3.0)
            for s, t in ((bob, "from bob"), (carol, "from carol"))
        ]
    assert [[e.user for e in r.entries] for r in results] == [[bob], [carol, alice]]
    new = [e.payload for e in log(store, alice)[before:]]
    assert [(p["type"], p["message"]["text"]) for p in new] == [("message", "from carol")]


def test_receipts_of_the_blocker_never_reach_the_blocked_sender(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    sent = store.accept_message(sender=bob, command_id="s1", recipient=alice, text="hi", now=1.0)
    other = store.accept_message(sender=bob, command_id="s2", recipient=alice, text="again", now=1.0)
    store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=2.0)

    single = store.apply_receipts(user=alice, status=Status.READ, message_ids=[sent.message.id], now=3.0)
    together = store.apply_receipts_of([ReceiptRequest(alice, Status.DELIVERED, [other.message.id])], now=3.0)

    # nothing for bob (alice's own devices still learn what she read: her ``read`` event)
    assert [e for e in single.entries if e.user == bob] == [] and single.not_recipient == []
    assert together is None or [e for e in together[0].entries if e.user == bob] == []
    assert kinds(store, bob) == ["sent", "sent"]


def test_group_messages_of_a_blocked_member_still_arrive(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=carol, name="g", members=[alice, bob], now=1.0, ref="g1", max_members=10
    )
    store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=2.0)

    result = store.accept_message(sender=bob, command_id="s1", recipient=group.group.id, text="all", now=3.0)

    assert sorted(e.user for e in result.entries) == sorted([bob, alice, carol])
    assert kinds(store, alice)[-1] == "message"


def test_adding_a_blocker_to_a_group_lists_them_as_invited_only(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=1.0)
    group = store.create_group(creator=bob, name="g", members=[carol], now=2.0, ref="g1", max_members=10)

    change = store.add_members(
        group=group.group.id, actor=bob, members=[alice], now=3.0, ref="a1", max_members=10
    )

    assert alice not in change.group.members
    own = next(e.payload for e in change.entries if e.user == bob)
    assert own["invited"] == [alice] and own["affected"] == []
    assert all("invited" not in e.payload for e in change.entries if e.user != bob)
    assert kinds(store, alice) == ["blocking"]

    created = store.create_group(
        creator=bob, name="h", members=[alice, carol], now=4.0, ref="g2", max_members=10
    )
    assert created.group.members == [bob, carol]
    assert next(e.payload for e in created.entries if e.user == bob)["invited"] == [alice]
    assert kinds(store, alice) == ["blocking"]


def test_the_blocked_user_loses_presence_and_profile(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.accept_message(sender=alice, command_id="s1", recipient=bob, text="hi", now=1.0)
    assert store.can_see_presence(bob, alice)
    store.update_profile(user=alice, changes={"name": "Alice"}, now=1.5, ref=None)
    assert [p.user for p in store.profiles_for(watcher=bob, users=[alice], everyone=False)] == [alice]

    store.set_block(user=alice, target=bob, blocked=True, ref="b1", now=2.0)
    before = kinds(store, bob)
    store.update_profile(user=alice, changes={"about": "busy"}, now=3.0, ref="p1")

    assert not store.can_see_presence(bob, alice)
    assert store.can_see_presence(alice, bob)  # the blocker still sees the blocked
    assert store.profiles_for(watcher=bob, users=[alice], everyone=True) == []
    assert kinds(store, bob) == before  # no profile event

    store.set_block(user=alice, target=bob, blocked=False, ref="u1", now=4.0)
    assert store.can_see_presence(bob, alice)
    assert [p.user for p in store.profiles_for(watcher=bob, users=[alice], everyone=False)] == [alice]


def test_a_report_keeps_the_messages_as_the_reporter_saw_them(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    got = store.accept_message(sender=bob, command_id="s1", recipient=alice, text="spam", now=1.0)
    mine = store.accept_message(sender=alice, command_id="s2", recipient=bob, text="stop", now=1.5)
    theirs = store.accept_message(sender=bob, command_id="s3", recipient=carol, text="private", now=1.6)

    with pytest.raises(CommandError) as refused:
        store.report_user(
            reporter=alice, user=bob, message_ids=[theirs.message.id], reason="x", ref="r0", now=2.0
        )
    assert refused.value.code == ErrorCode.NOT_FOUND
    ids = [got.message.id, mine.message.id]
    assert store.report_user(reporter=alice, user=bob, message_ids=ids, reason="spam", ref="r1", now=2.0)
    assert not store.report_user(reporter=alice, user=bob, message_ids=ids, reason="spam", ref="r1", now=2.5)
    assert store.report_user(reporter=carol, user=bob, message_ids=[], reason="", ref="r1", now=3.0)

    def ours(after: int | None) -> list[ReportInfo]:  # the PostgreSQL database is shared by the tests
        return [r for r in store.reports_page(after=after, limit=100_000) if r.reporter in (alice, carol)]

    first, second = ours(None)
    assert (first.reporter, first.user, first.reason, first.ts) == (alice, bob, "spam", 2.0)
    assert [(m["id"], m["text"]) for m in first.messages] == [
        (got.message.id, "spam"),
        (mine.message.id, "stop"),
    ]
    assert (second.reporter, second.messages) == (carol, [])
    assert ours(first.id) == [second]
    assert ours(second.id) == []
    assert len(store.reports_page(after=None, limit=1)) == 1
