"""Push tokens, phones and burst collapsing in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from client_sdk.contract import Status
from tests.stores.conftest import users
from workers.stores import Store


def test_tokens_belong_to_one_user_and_can_move(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")

    store.register_push_token(user=alice, token="t1", platform="android", preview=True, now=1.0)
    store.register_push_token(user=alice, token="t2", platform="ios", preview=False, now=2.0)
    store.register_push_token(
        user=bob, token="t1", platform="android", preview=True, now=3.0
    )  # the phone changed hands

    assert [(t.token, t.platform, t.preview) for t in store.push_tokens(alice)] == [("t2", "ios", False)]
    assert [t.token for t in store.push_tokens(bob)] == ["t1"]
    assert not store.unregister_push_token(user=alice, token="t1")
    assert store.unregister_push_token(user=bob, token="t1")
    store.remove_push_token("t2")
    assert store.push_tokens(alice) == [] and store.push_tokens(bob) == []


def test_a_burst_asks_for_one_job_until_it_is_taken(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    ids = [
        store.accept_message(
            sender=alice, command_id=f"c{i}", recipient=bob, text=str(i), now=float(i)
        ).message.id
        for i in range(3)
    ]

    first = store.note_waiting(user=bob, message_id=ids[0])
    rest = [store.note_waiting(user=bob, message_id=i) for i in ids[1:]]
    taken = store.take_pending(bob)
    after = store.note_waiting(user=bob, message_id="next")

    assert first == (True, True)
    assert rest == [(False, False), (False, False)]
    assert taken == ids
    assert after == (True, False)  # a new push burst; the SMS check is still due
    assert store.sms_checked(bob) == 0.0


def test_undelivered_leaves_out_what_a_device_has(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    messages = [
        store.accept_message(
            sender=alice, command_id=f"c{i}", recipient=bob, text=str(i), now=float(i + 1)
        ).message
        for i in range(3)
    ]
    store.apply_receipts(user=bob, status=Status.DELIVERED, message_ids=[messages[1].id], now=9.0)

    waiting = store.undelivered(user=bob, message_ids=[m.id for m in messages])
    since = store.undelivered_since(user=bob, since=1.0)

    assert [m.text for m in waiting] == ["0", "2"]
    assert [m.text for m in since] == ["2"]


def test_phone_numbers_and_the_sms_outbox(store: Store) -> None:
    (bob,) = users(store, "bob")
    assert store.phone_of(bob) is None
    store.set_phone(bob, "+15550000001")
    assert store.phone_of(bob) == "+15550000001"
    store.record_sms(user=bob, phone="+15550000001", body="hi", now=5.0)
    assert [(s.phone, s.body) for s in store.sms_outbox(bob)] == [("+15550000001", "hi")]
    store.set_phone(bob, None)
    assert store.phone_of(bob) is None
