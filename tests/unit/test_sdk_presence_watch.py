"""Presence subscriptions on the I/O-free session: what is subscribed on each connect, which answers
are awaited, what a refusal does; and the session's times come from its caller."""

from __future__ import annotations

from client_sdk import PresenceRefused, Status
from client_sdk._session import UNANSWERED_RESEND, Effects, Session
from client_sdk._subscriptions import Subscribe
from tests.unit.test_sdk_session import commands, new_session, synced


def connected(session: Session) -> Subscribe:
    """Connect; returns the one SUBSCRIBE the session asks for."""
    (subscribe,) = session.on_connected().subscriptions
    return subscribe


def test_users_watched_offline_are_subscribed_with_the_inbox_on_connect() -> None:
    # Given a session that is not connected
    session = new_session()

    # When the app watches carol then bob
    effects = [session.watch("carol"), session.watch("bob")]

    # Then nothing is subscribed yet, and the connect subscribes the inbox and both, in a stable order
    assert effects == [Effects(), Effects()]
    assert connected(session) == Subscribe(presence=("bob", "carol"), inbox=True)


def test_a_user_watched_while_connected_is_subscribed_alone_and_awaits_the_answer() -> None:
    # Given a connected session whose inbox SUBSCRIBE went out
    session = new_session()
    session.on_subscribing(1, connected(session))

    # When the app watches bob, twice
    first, again = session.watch("bob"), session.watch("bob")

    # Then bob alone is subscribed once, and awaits the server's answer once it went out
    assert first.subscriptions == [Subscribe(presence=("bob",))]
    assert again == Effects()
    assert not session.presence_unanswered("bob")
    session.on_subscribing(2, first.subscriptions[0])
    assert session.presence_unanswered("bob")

    # When the server grants it, Then nothing is awaited, refused or synced
    effects = session.on_suback(2, [False], now=0.0)
    assert effects == Effects()
    assert not session.presence_unanswered("bob")
    assert not session.presence_refused("bob")


def test_the_inbox_suback_starts_the_sync_and_reports_refused_presences() -> None:
    # Given bob and carol watched, and the connect's SUBSCRIBE sent
    session = new_session(cursor=4)
    session.watch("bob")
    session.watch("carol")
    session.on_subscribing(7, connected(session))
    assert session.presence_unanswered("bob") and session.presence_unanswered("carol")

    # When the server grants the inbox and carol but refuses bob
    effects = session.on_suback(7, [False, True, False], now=0.0)

    # Then the app is told about bob, the catch-up starts, and nothing is awaited any more
    assert effects.events == [PresenceRefused(user="bob")]
    assert [(c["type"], c["after"]) for c in commands(effects)] == [("sync", 4)]
    assert session.presence_refused("bob") and not session.presence_refused("carol")
    assert not session.presence_unanswered("bob") and not session.presence_unanswered("carol")


def test_a_refused_user_is_not_subscribed_again_until_watched_again() -> None:
    # Given bob refused on the first connect
    session = new_session()
    session.watch("bob")
    session.on_subscribing(1, connected(session))
    session.on_suback(1, [False, True], now=0.0)

    # When the connection comes back, Then only the inbox is subscribed
    session.on_disconnected()
    assert connected(session) == Subscribe(presence=(), inbox=True)

    # When the app watches bob again, Then the refusal is forgotten and bob is asked for again
    assert session.watch("bob").subscriptions == [Subscribe(presence=("bob",))]
    assert not session.presence_refused("bob")


def test_a_refused_inbox_starts_no_sync() -> None:
    # Given the connect's SUBSCRIBE sent
    session = new_session()
    session.on_subscribing(1, connected(session))

    # When the server refuses the inbox, Then no sync goes out
    assert session.on_suback(1, [True], now=0.0) == Effects()
    assert session.next_tick() is None and not session.synced


def test_only_the_suback_of_the_inbox_starts_the_sync() -> None:
    # Given a connected session with a presence SUBSCRIBE out and the inbox one not answered yet
    session = new_session()
    session.on_subscribing(1, connected(session))
    session.on_subscribing(2, session.watch("bob").subscriptions[0])

    # When the presence SUBACK and an unknown one arrive, Then no sync; the inbox's starts it
    assert session.on_suback(2, [False], now=0.0) == Effects()
    assert session.on_suback(99, [False], now=0.0) == Effects()
    assert commands(session.on_suback(1, [False], now=0.0), "sync") != []


def test_a_disconnect_forgets_the_subscriptions_still_unanswered() -> None:
    # Given bob's presence SUBSCRIBE out
    session = new_session()
    session.on_subscribing(1, connected(session))
    session.on_subscribing(2, session.watch("bob").subscriptions[0])

    # When the connection drops
    session.on_disconnected()

    # Then nothing is awaited, a late SUBACK of the lost connection does nothing, and bob is still watched
    assert not session.presence_unanswered("bob")
    assert session.on_suback(2, [True], now=0.0) == Effects()
    assert not session.presence_refused("bob")
    assert connected(session) == Subscribe(presence=("bob",), inbox=True)


def test_nothing_is_subscribed_or_awaited_without_a_connection() -> None:
    # Given a session that was connected and lost the connection
    session = new_session()
    connected(session)
    session.on_disconnected()

    # When the app watches bob, Then nothing is subscribed or awaited until the next connect
    assert session.watch("bob") == Effects()
    assert not session.presence_unanswered("bob")


def test_sends_and_receipts_take_their_time_from_the_caller() -> None:
    # Given a synced session
    session = new_session()
    synced(session, now=0.0)

    # When a message is sent at t=100 and a receipt published at t=200
    session.send(to="bob", text="hi", now=100.0)
    session.receipts(["m-1"], status=Status.READ, now=200.0)

    # Then the unanswered send is due again UNANSWERED_RESEND after t=100, the receipt after t=200
    assert session.next_tick() == 100.0 + UNANSWERED_RESEND
    assert commands(session.on_tick(now=100.0 + UNANSWERED_RESEND), "receipt") == []
    assert [c["status"] for c in commands(session.on_tick(now=200.0 + UNANSWERED_RESEND), "receipt")] == [
        "read"
    ]
