"""History of a conversation (every backend): pages both ways by seq, messages as the viewer
sees them now with the receipt state of their own, only what the viewer may see (a group member
from while they were one), and the same ``forbidden`` for a conversation they are not in whether
or not it exists."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk.contract import ErrorCode, Status
from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_views import carriers_of
from workers.errors import CommandError
from workers.stores import Store
from workers.stores.rules.history import HistoryPage, HistoryQuery, clamp_limit


def page(
    store: Store,
    viewer: str,
    conversation: str,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> HistoryPage:
    return store.history(HistoryQuery(viewer, conversation, before, after, clamp_limit(limit)))


def seqs(found: HistoryPage) -> list[int]:
    return [m["seq"] for m in found.messages]


def send(store: Store, sender: str, to: str, text: str, now: float = 10.0) -> Any:
    return store.accept_message(
        sender=sender, command_id=unique("c"), recipient=to, text=text, now=now
    ).message


def refused(code: ErrorCode, store: Store, viewer: str, conversation: str, **kwargs: Any) -> str:
    with pytest.raises(CommandError) as raised:
        page(store, viewer, conversation, **kwargs)
    assert raised.value.code == code
    return str(raised.value)


def test_a_one_to_one_history_pages_backwards_and_forwards(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    sent = [send(store, alice if i % 2 else bob, bob if i % 2 else alice, f"m{i}") for i in range(1, 8)]
    conversation = sent[0].conversation

    latest = page(store, alice, conversation, limit=3)
    assert seqs(latest) == [5, 6, 7] and latest.more
    older = page(store, alice, conversation, before=5, limit=3)
    assert seqs(older) == [2, 3, 4] and older.more
    oldest = page(store, alice, conversation, before=2, limit=3)
    assert seqs(oldest) == [1] and not oldest.more
    first = page(store, bob, conversation, after=0, limit=3)
    assert seqs(first) == [1, 2, 3] and first.more
    assert (
        seqs(page(store, bob, conversation, after=6)) == [7]
        and not page(store, bob, conversation, after=6).more
    )
    between = page(store, bob, conversation, after=2, before=6, limit=10)
    assert seqs(between) == [3, 4, 5] and not between.more
    assert page(store, bob, conversation, after=7).messages == []
    # each message exactly as the viewer's own inbox carries it
    held = carriers_of(store, alice)
    assert all(m == held[m["id"]] for m in page(store, alice, conversation).messages)


def test_messages_are_as_they_are_now_and_own_ones_have_their_receipts(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    m1 = send(store, alice, bob, "one")
    m2 = send(store, alice, bob, "two")
    m3 = send(store, bob, alice, "three")
    store.apply_receipts(user=bob, status=Status.DELIVERED, message_ids=[m1.id, m2.id], now=11.0)
    store.apply_receipts(user=bob, status=Status.READ, message_ids=[m1.id], now=12.0)
    store.edit_message(m2.id, user=alice, text="two!", command_id="e1", now=13.0, window=900.0)
    store.hide_message(m3.id, user=alice, command_id="h1", now=14.0)

    mine = page(store, alice, m1.conversation)

    assert [m["id"] for m in mine.messages] == [m1.id, m2.id, m3.id]
    assert mine.messages[1]["text"] == "two!" and mine.messages[1]["edited_at"] == 13.0
    assert mine.messages[2]["hidden"] is True and "text" not in mine.messages[2]
    assert mine.receipts == {
        m1.id: {"status": "read", "recipients": 1, "delivered": 1, "read": 1},
        m2.id: {"status": "delivered", "recipients": 1, "delivered": 1, "read": 0},
    }
    theirs = page(store, bob, m1.conversation)
    assert theirs.messages[2]["text"] == "three"  # alice hid it for herself only
    assert theirs.receipts == {m3.id: {"status": "sent", "recipients": 1, "delivered": 0, "read": 0}}


def test_a_group_member_reads_only_from_while_they_were_one(store: Store) -> None:
    alice, bob, carol, dave, eve = users(store, "alice", "bob", "carol", "dave", "eve")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g1", max_members=10
    ).group.id
    m1 = send(store, alice, group, "all three")
    store.leave_group(group=group, user=carol, now=2.0, ref="l1")
    m2 = send(store, bob, group, "carol left")
    store.add_members(group=group, actor=alice, members=[dave], now=3.0, ref="g2", max_members=10)
    m3 = send(store, alice, group, "dave is in")
    store.apply_receipts(user=bob, status=Status.READ, message_ids=[m1.id], now=4.0)
    store.apply_receipts(user=carol, status=Status.DELIVERED, message_ids=[m1.id], now=4.0)

    assert [m["id"] for m in page(store, bob, group).messages] == [m1.id, m2.id, m3.id]
    assert [m["id"] for m in page(store, carol, group).messages] == [m1.id]  # left: keeps what she got
    assert [m["id"] for m in page(store, dave, group).messages] == [m3.id]  # joined later
    assert page(store, dave, group, before=m3.seq).messages == []  # a member: an empty page
    assert [m["id"] for m in page(store, carol, group, after=m1.seq - 1).messages] == [m1.id]
    assert page(store, alice, group).receipts[m1.id] == {
        "status": "delivered",
        "recipients": 2,
        "delivered": 2,
        "read": 1,
    }
    # never a member: forbidden, exactly as for a group that does not exist
    stranger = refused(ErrorCode.FORBIDDEN, store, eve, group)
    nowhere = "g:" + unique("none").replace(".", "_")
    assert refused(ErrorCode.FORBIDDEN, store, eve, nowhere) == stranger.replace(group, nowhere)
    refused(ErrorCode.FORBIDDEN, store, eve, group, before=m3.seq)
    refused(ErrorCode.FORBIDDEN, store, eve, group, after=0)


def test_someone_elses_one_to_one_chat_is_forbidden_and_malformed_ids_are_bad_requests(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    message = send(store, alice, bob, "private")

    refused(ErrorCode.FORBIDDEN, store, carol, message.conversation)
    for bad in ("dm:zed:alice", "dm:alice", "dm:alice:bob:carol", "alice", "dm:al ice:bob", "g:", "g:a/b"):
        refused(ErrorCode.BAD_REQUEST, store, alice, bad)
    # a chat with someone who does not exist is just empty: nothing tells them apart
    assert page(store, alice, f"dm:{alice}:zzzz-nobody").messages == []


def test_limits_are_clamped() -> None:
    assert clamp_limit(None) == 50
    assert clamp_limit(0) == 1 and clamp_limit(-5) == 1
    assert clamp_limit(10_000) == 200
