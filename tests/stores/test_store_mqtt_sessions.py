"""Persistent MQTT sessions in the store, on SQLite, PostgreSQL and MongoDB: made at the first
persistent connect, resumed with the cursors the node saved, ended, and expired."""

from __future__ import annotations

from config.settings import RetentionSettings
from tests.harness import unique
from tests.stores.conftest import users
from workers.retention import Pruner
from workers.stores import ResumedSession, SessionMark, Store

_DAY = 86400.0


def _send(store: Store, sender: str, recipient: str, n: int, now: float = 10.0) -> None:
    for i in range(n):
        store.accept_message(sender=sender, command_id=f"c{i}", recipient=recipient, text=f"m{i}", now=now)


def test_a_new_session_starts_at_the_inbox_head_and_resumes_with_what_was_saved(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    # Given bob has 2 events already when his sensor first connects with a persistent session
    _send(store, alice, bob, 2)

    # Then there was nothing to resume, and the session starts after them
    assert store.open_mqtt_session(bob, "sensor", now=100.0, expiry=_DAY) == ResumedSession(
        2, 2, present=False
    )
    assert store.open_mqtt_session(bob, "sensor", now=101.0, expiry=_DAY) == ResumedSession(
        2, 2, present=True
    )

    # When the node saves its cursors: acknowledged up to 3, sent up to 5
    store.save_mqtt_sessions([SessionMark(bob, "sensor", 3, 5, 200.0 + _DAY)])
    # and a late save of an older position arrives (another node, before)
    store.save_mqtt_sessions([SessionMark(bob, "sensor", 1, 4, 150.0 + _DAY)])

    # Then the cursors never go back
    assert store.open_mqtt_session(bob, "sensor", now=300.0, expiry=_DAY) == ResumedSession(
        3, 5, present=True
    )
    # and other devices and users have none
    assert not store.open_mqtt_session(bob, "phone", now=300.0, expiry=_DAY).present
    assert not store.open_mqtt_session(alice, "sensor", now=300.0, expiry=_DAY).present


def test_an_ended_session_is_not_made_again_by_a_late_save(store: Store) -> None:
    (bob,) = users(store, "bob")
    store.open_mqtt_session(bob, "sensor", now=100.0, expiry=_DAY)

    store.end_mqtt_sessions([(bob, "sensor")])
    store.save_mqtt_sessions([SessionMark(bob, "sensor", 7, 7, 200.0 + _DAY)])
    store.end_mqtt_sessions([(bob, "unknown")])  # nothing to end: no error

    assert not store.open_mqtt_session(bob, "sensor", now=300.0, expiry=_DAY).present
    assert store.open_mqtt_session(bob, "sensor", now=301.0, expiry=_DAY) == ResumedSession(
        0, 0, present=True
    )


def test_an_expired_session_is_swept_and_one_past_its_expiry_is_not_resumed(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.open_mqtt_session(bob, "sensor", now=100.0, expiry=50.0)  # expires at 150
    store.open_mqtt_session(carol, "sensor", now=100.0, expiry=500.0)  # at 600
    store.save_mqtt_sessions([SessionMark(bob, "sensor", 0, 1, 150.0)])
    _send(store, alice, bob, 1)

    # Past bob's expiry, before any sweep: a connect starts anew at his inbox head
    assert not store.open_mqtt_session(bob, "sensor", now=151.0, expiry=50.0).present
    assert store.open_mqtt_session(bob, "sensor", now=152.0, expiry=50.0) == ResumedSession(
        1, 1, present=True
    )

    # The sweep at 300 deletes bob's (now expiring at 202), not carol's
    assert store.expire_mqtt_sessions(now=300.0) >= 1  # (a shared database may hold others)
    assert store.open_mqtt_session(carol, "sensor", now=301.0, expiry=500.0) == ResumedSession(
        0, 0, present=True
    )
    assert not store.open_mqtt_session(bob, "sensor", now=302.0, expiry=50.0).present


def test_retention_sweep_expires_sessions_even_with_pruning_off(store: Store) -> None:
    (bob,) = users(store, "bob")
    now = 90_000_000.0  # past the leases other tests of a shared database left
    store.open_mqtt_session(bob, "old", now=now - 100.0, expiry=10.0)
    store.open_mqtt_session(bob, "fresh", now=now - 100.0, expiry=_DAY)
    off = RetentionSettings(inbox_days=0, messages_days=0)
    pruner = Pruner(store, off, holder=unique("sessions"), clock=lambda: now, sessions=store)

    assert pruner.active
    assert pruner.sweep().sessions >= 1  # (others' expired sessions in a shared database too)
    pruner.release()
    assert store.open_mqtt_session(bob, "fresh", now=now + 1, expiry=_DAY).present
    assert not store.open_mqtt_session(bob, "old", now=now + 1, expiry=10.0).present
