"""The chat list and read state (every backend): a user's conversations newest first with the last
message as they see it, unread counts that read receipts and ``mark_read`` clear (with a ``read``
event to the reader's own inbox), groups seen only while a member, paging, and who may hear
typing in a group."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk.contract import ErrorCode, Status
from tests.stores.conftest import users
from workers.errors import CommandError
from workers.stores import ReceiptRequest, Store
from workers.stores.records import ChatSummary
from workers.stores.rules.chats import chat_wire
from workers.stores.rules.messages import dm_conversation


def chats(store: Store, user: str, limit: int = 100) -> dict[str, ChatSummary]:
    page, more = store.chat_list(user=user, before=None, limit=limit)
    assert not more
    return {chat.conversation: chat for chat in page}


def send(store: Store, sender: str, to: str, text: str, now: float) -> Any:
    return store.accept_message(sender=sender, command_id=f"c{now}", recipient=to, text=text, now=now).message


def read_events(store: Store, user: str) -> list[dict[str, Any]]:
    entries, _ = store.sync(user=user, after=0, limit=500)
    return [e.payload for e in entries if e.payload["type"] == "read"]


def test_the_chat_list_holds_each_conversation_newest_first_with_unread_counts(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    send(store, bob, alice, "one", 1.0)
    send(store, bob, alice, "two", 2.0)
    send(store, alice, carol, "hey carol", 3.0)
    group = store.create_group(creator=carol, name="Climb", members=[alice], now=4.0, ref="g1", max_members=9)
    last = send(store, carol, group.group.id, "in the group", 5.0)

    page, more = store.chat_list(user=alice, before=None, limit=10)

    assert not more
    assert [c.conversation for c in page] == [
        group.group.id,
        dm_conversation(alice, carol),
        dm_conversation(alice, bob),
    ]
    in_group, with_carol, with_bob = page
    assert (in_group.unread, in_group.last_seq, in_group.group_name, in_group.member) == (1, 1, "Climb", True)
    assert in_group.last_message is not None and in_group.last_message["id"] == last.id
    assert (with_carol.unread, with_carol.last_message["text"]) == (0, "hey carol")  # type: ignore[index]
    assert (with_bob.unread, with_bob.read_seq, with_bob.last_seq, with_bob.ts) == (2, 0, 2, 2.0)
    wire = chat_wire(with_bob, alice)
    assert wire["kind"] == "direct" and wire["peer"] == bob
    assert wire["presence"]["status"] == "offline"
    assert chat_wire(in_group, alice)["group"] == {"id": group.group.id, "name": "Climb", "member": True}
    # the sender's own chat counts nothing unread
    assert chats(store, bob)[dm_conversation(alice, bob)].unread == 0


def test_pages_follow_each_other_without_gaps_or_repeats(store: Store) -> None:
    (me,) = users(store, "me")
    peers = users(store, *[f"p{i}" for i in range(7)])
    for i, peer in enumerate(peers):
        send(store, peer, me, f"hi {i}", float(10 + i))

    seen: list[str] = []
    before = None
    while True:
        page, more = store.chat_list(user=me, before=before, limit=3)
        seen += [c.conversation for c in page]
        if not more:
            break
        before = (page[-1].ts, page[-1].conversation)

    assert seen == [dm_conversation(me, p) for p in reversed(peers)]


def test_a_read_receipt_clears_unread_and_tells_the_readers_own_devices(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    first, second = send(store, bob, alice, "one", 1.0), send(store, bob, alice, "two", 2.0)
    conversation = dm_conversation(alice, bob)

    result = store.apply_receipts(user=alice, status=Status.READ, message_ids=[first.id], now=3.0)

    read = [e for e in result.entries if e.user == alice]
    assert [e.payload for e in read] == [
        {
            "v": 1,
            "type": "read",
            "cursor": read[0].cursor,
            "ref": None,
            "conversation": conversation,
            "read_seq": 1,
            "ts": 3.0,
        }
    ]
    assert (chats(store, alice)[conversation].unread, chats(store, alice)[conversation].read_seq) == (1, 1)

    # a delivered receipt moves nothing; reading the older message again is no news
    store.apply_receipts(user=alice, status=Status.DELIVERED, message_ids=[second.id], now=4.0)
    store.apply_receipts(user=alice, status=Status.READ, message_ids=[first.id], now=5.0)
    assert len(read_events(store, alice)) == 1
    assert read_events(store, bob) == []


def test_read_receipts_of_a_batch_move_each_readers_position_once(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    to_alice = [send(store, bob, alice, f"a{i}", float(i)) for i in range(1, 4)]
    to_carol = send(store, bob, carol, "c", 5.0)
    requests = [
        ReceiptRequest(alice, Status.READ, [m.id for m in to_alice[:2]]),
        ReceiptRequest(carol, Status.DELIVERED, [to_carol.id]),
        ReceiptRequest(alice, Status.READ, [to_alice[2].id]),
    ]

    results = store.apply_receipts_of(requests, now=6.0)

    if results is None:  # a backend that applies them one by one
        results = [
            store.apply_receipts(user=r.user, status=r.status, message_ids=r.message_ids, now=6.0)
            for r in requests
        ]
    reads = [
        [e.payload["read_seq"] for e in result.entries if e.payload["type"] == "read"] for result in results
    ]
    assert reads in ([[], [], [3]], [[2], [], [3]])  # together: the highest, once; one by one: each
    assert chats(store, alice)[dm_conversation(alice, bob)].unread == 0
    assert chats(store, carol)[dm_conversation(carol, bob)].read_seq == 0


def test_mark_read_moves_the_position_without_receipts_and_is_idempotent(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    message = send(store, bob, alice, "one", 1.0)
    send(store, bob, alice, "two", 2.0)
    conversation = dm_conversation(alice, bob)

    change = store.mark_read(user=alice, conversation=conversation, seq=99, now=3.0, ref="m1")

    assert change.changed
    assert [e.payload["read_seq"] for e in change.entries] == [2]  # clamped to the last message
    assert change.entries[0].payload["ref"] == "m1" and change.entries[0].user == alice
    assert chats(store, alice)[conversation].unread == 0
    again = store.mark_read(user=alice, conversation=conversation, seq=2, now=4.0, ref="m1")
    assert not again.changed and again.entries == []
    assert store.mark_read(user=alice, conversation=conversation, seq=1, now=5.0, ref="m2").changed is False
    # bob's receipt state is untouched: mark_read sends no read receipt
    entries, _ = store.sync(user=bob, after=0, limit=50)
    assert all(e.payload["type"] != "receipt" for e in entries)
    assert message.id


def test_mark_read_of_a_conversation_one_is_not_in_is_forbidden(store: Store) -> None:
    alice, bob, eve = users(store, "alice", "bob", "eve")
    send(store, bob, alice, "private", 1.0)

    for conversation in (dm_conversation(alice, bob), "dm:nobody:else", "g:nope"):
        with pytest.raises(CommandError) as refused:
            store.mark_read(user=eve, conversation=conversation, seq=1, now=2.0, ref="m1")
        assert refused.value.code == ErrorCode.FORBIDDEN


def test_a_group_shows_only_what_a_member_saw(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="G", members=[bob], now=1.0, ref="g1", max_members=9
    ).group.id
    send(store, alice, group, "before carol", 2.0)
    store.add_members(group=group, actor=alice, members=[carol], now=3.0, ref="g2", max_members=9)
    # carol joined after the first message: nothing of it, and her chat's time is her join
    joined = chats(store, carol)[group]
    assert (joined.last_message, joined.last_seq, joined.unread, joined.ts) == (None, 0, 0, 3.0)

    seen = send(store, alice, group, "with carol", 4.0)
    store.leave_group(group=group, user=carol, now=5.0, ref="g3")
    send(store, alice, group, "after carol left", 6.0)

    gone = chats(store, carol)[group]
    assert gone.last_message is not None and gone.last_message["id"] == seen.id
    assert (gone.last_seq, gone.unread, gone.member, gone.ts) == (2, 1, False, 4.0)
    assert chats(store, bob)[group].unread == 3


def test_the_last_message_is_shown_as_the_user_sees_it_now(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    message = send(store, alice, bob, "typo", 1.0)
    store.edit_message(message.id, user=alice, text="fixed", command_id="e1", now=2.0, window=900.0)
    conversation = dm_conversation(alice, bob)
    assert chats(store, bob)[conversation].last_message["text"] == "fixed"  # type: ignore[index]

    store.hide_message(message.id, user=bob, command_id="h1", now=3.0)
    hidden = chats(store, bob)[conversation].last_message
    assert hidden is not None and hidden.get("hidden") is True and "text" not in hidden
    assert chats(store, alice)[conversation].last_message["text"] == "fixed"  # type: ignore[index]

    store.delete_for_everyone(message.id, by=alice, now=4.0, ref="d1")
    assert chats(store, alice)[conversation].last_message.get("deleted") is True  # type: ignore[union-attr]


def test_typing_in_a_group_reaches_the_other_members_only_from_a_member(store: Store) -> None:
    alice, bob, carol, eve = users(store, "alice", "bob", "carol", "eve")
    group = store.create_group(
        creator=alice, name="G", members=[bob, carol], now=1.0, ref="g1", max_members=9
    ).group.id

    assert sorted(store.typing_audience(user=bob, group=group)) == sorted([alice, carol])
    with pytest.raises(CommandError) as refused:
        store.typing_audience(user=eve, group=group)
    assert refused.value.code == ErrorCode.NOT_MEMBER
    with pytest.raises(CommandError) as unknown:
        store.typing_audience(user=eve, group="g:nosuchgroup")
    assert unknown.value.code == ErrorCode.UNKNOWN_GROUP
