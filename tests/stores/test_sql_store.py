"""The store contract, on SQLite and on the PostgreSQL server of this machine."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from client_sdk.contract import Status
from tests.harness import unique
from tests.stores.conftest import users
from workers.credentials import hash_token, new_token, verify
from workers.errors import UnknownUser, UserExists
from workers.events import dumps
from workers.stores import Store, SyncPage


def test_a_message_gets_the_next_conversation_seq_and_entries_for_both_sides(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    first = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=10.0)
    second = store.accept_message(sender=bob, command_id="c1", recipient=alice, text="hello", now=11.0)

    assert (first.message.seq, second.message.seq) == (1, 2)
    assert first.message.conversation == second.message.conversation
    assert [(e.user, e.cursor, e.payload["type"]) for e in first.entries] == [
        (alice, 1, "sent"),
        (bob, 1, "message"),
    ]
    assert first.sent.payload["ref"] == "c1"
    assert second.entries[1].payload["message"]["text"] == "hello"


def test_a_resent_command_is_stored_once_and_answers_the_original_sent(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    original = store.accept_message(sender=alice, command_id="same", recipient=bob, text="once", now=1.0)

    again = store.accept_message(sender=alice, command_id="same", recipient=bob, text="once", now=2.0)

    assert again.duplicate and again.entries == []
    assert again.message == original.message
    assert again.sent == original.sent
    entries, _ = store.sync(user=bob, after=0, limit=10)
    assert len(entries) == 1


def test_unknown_recipient_is_refused_and_nothing_is_stored(store: Store) -> None:
    (alice,) = users(store, "alice")

    with pytest.raises(UnknownUser):
        store.accept_message(sender=alice, command_id="x", recipient=unique("nobody"), text="?", now=1.0)

    assert store.sync(user=alice, after=0, limit=10) == ([], False)


def test_statuses_only_move_forward_and_are_forwarded_to_the_sender(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    message = store.accept_message(sender=alice, command_id="m", recipient=bob, text="t", now=1.0).message

    delivered = store.apply_receipts(user=bob, status=Status.DELIVERED, message_ids=[message.id], now=2.0)
    read = store.apply_receipts(user=bob, status=Status.READ, message_ids=[message.id], now=3.0)
    late = store.apply_receipts(user=bob, status=Status.DELIVERED, message_ids=[message.id], now=4.0)
    again = store.apply_receipts(user=bob, status=Status.READ, message_ids=[message.id], now=5.0)

    forwarded = [e for e in delivered.entries + read.entries if e.payload["type"] == "receipt"]
    assert [e.payload["status"] for e in forwarded] == ["delivered", "read"]
    assert all(e.user == alice and e.payload["by"] == bob for e in forwarded)
    # and bob's own devices learn he read it
    assert [(e.user, e.payload["read_seq"]) for e in read.entries if e.payload["type"] == "read"] == [
        (bob, 1)
    ]
    assert late.entries == [] and again.entries == []


def test_only_the_recipient_may_acknowledge(store: Store) -> None:
    alice, bob, mallory = users(store, "alice", "bob", "mallory")
    message = store.accept_message(sender=alice, command_id="m", recipient=bob, text="t", now=1.0).message

    by_mallory = store.apply_receipts(user=mallory, status=Status.READ, message_ids=[message.id], now=2.0)
    by_sender = store.apply_receipts(user=alice, status=Status.READ, message_ids=[message.id], now=2.0)
    unknown = store.apply_receipts(user=bob, status=Status.READ, message_ids=["no-such-id"], now=2.0)

    assert by_mallory.not_recipient == [message.id] and by_mallory.entries == []
    assert by_sender.not_recipient == [message.id]
    assert unknown.not_recipient == ["no-such-id"]


def test_sync_pages_in_cursor_order(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    for i in range(7):
        store.accept_message(sender=alice, command_id=f"c{i}", recipient=bob, text=str(i), now=float(i))

    page1, more1 = store.sync(user=bob, after=0, limit=3)
    page2, more2 = store.sync(user=bob, after=page1[-1].cursor, limit=3)
    page3, more3 = store.sync(user=bob, after=page2[-1].cursor, limit=3)

    assert (more1, more2, more3) == (True, True, False)
    texts = [e.payload["message"]["text"] for e in page1 + page2 + page3]
    assert texts == [str(i) for i in range(7)]
    assert [e.cursor for e in page1 + page2 + page3] == list(range(1, 8))


def test_a_sync_page_is_the_wire_json_of_the_entries_within_a_byte_budget(store: Store) -> None:
    # Given bob's inbox of seven messages, the fifth a long one
    alice, bob = users(store, "alice", "bob")
    for i in range(7):
        text = "x" * 2000 if i == 4 else str(i)
        store.accept_message(sender=alice, command_id=f"c{i}", recipient=bob, text=text, now=float(i))
    entries, _ = store.sync(user=bob, after=0, limit=10)
    sizes = [len(dumps(e.payload)) for e in entries]

    # When pages are asked by count, and by a byte budget that the long one does not fit
    by_count = store.sync_page(user=bob, after=0, limit=3, max_bytes=1 << 20)
    by_bytes = store.sync_page(user=bob, after=3, limit=10, max_bytes=sizes[3] + 100)
    long_one = store.sync_page(user=bob, after=4, limit=10, max_bytes=100)
    last = store.sync_page(user=bob, after=5, limit=10, max_bytes=1 << 20)
    empty = store.sync_page(user=bob, after=7, limit=10, max_bytes=1 << 20)

    # Then each page is the JSON sync gives, cut at the count or the budget (at least one entry)
    def wire(page: SyncPage) -> list[dict[str, Any]]:
        return list(orjson.loads(orjson.dumps(page.entries)))

    assert wire(by_count) == [e.payload for e in entries[:3]]
    assert (by_count.first, by_count.last, by_count.more) == (1, 3, True)
    assert wire(by_bytes) == [entries[3].payload] and (by_bytes.first, by_bytes.last, by_bytes.more) == (
        4,
        4,
        True,
    )
    assert wire(long_one) == [entries[4].payload] and long_one.more
    assert wire(last) == [e.payload for e in entries[5:]] and (last.last, last.more) == (7, False)
    assert (empty.entries, empty.first, empty.last, empty.more) == ([], None, None, False)


def test_concurrent_senders_get_gapless_cursors_and_seqs(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")

    def send(sender: str) -> None:
        for i in range(15):
            store.accept_message(
                sender=sender, command_id=f"{sender}-{i}", recipient=carol, text="x", now=1.0
            )

    threads = [threading.Thread(target=send, args=(s,)) for s in (alice, bob)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    entries, more = store.sync(user=carol, after=0, limit=100)
    assert not more
    assert [e.cursor for e in entries] == list(range(1, 31))
    for sender in (alice, bob):
        seqs = [e.payload["message"]["seq"] for e in entries if e.payload["message"]["from"] == sender]
        assert seqs == list(range(1, 16))


def test_users_and_credentials(store: Store) -> None:
    (alice,) = users(store, "alice")
    token = new_token()
    store.add_credential(alice, kind="token", secret_hash=hash_token(token), now=1.0)

    assert verify(token, store.credential_hashes(alice))
    assert not verify(new_token(), store.credential_hashes(alice))
    assert store.credential_hashes(unique("nobody")) == []
    with pytest.raises(UserExists):
        store.create_user(alice, now=2.0)
    assert alice in {u.id for u in store.list_users()}

    store.remove_credentials(alice)
    assert not verify(token, store.credential_hashes(alice))
    store.delete_user(alice)
    assert not store.user_exists(alice)
    with pytest.raises(UnknownUser):
        store.delete_user(alice)


def test_two_devices_acknowledging_at_once_tell_the_sender_once(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    messages = [
        store.accept_message(sender=alice, command_id=f"m{i}", recipient=bob, text="t", now=1.0).message
        for i in range(20)
    ]
    events: list[str] = []
    lock = threading.Lock()

    def device() -> None:
        result = store.apply_receipts(
            user=bob, status=Status.DELIVERED, message_ids=[m.id for m in messages], now=2.0
        )
        with lock:
            events.extend(e.payload["message_id"] for e in result.entries)

    threads = [threading.Thread(target=device) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(events) == sorted(m.id for m in messages)
