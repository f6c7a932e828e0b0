"""The client side of the protocol (docs/protocol.md "Semantics"), driven without a network."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from client_sdk import (
    CommandRejected,
    Message,
    MessageDeleted,
    Presence,
    Receipt,
    Sent,
    ServerError,
    Status,
    Typing,
)
from client_sdk._session import Effects, Session

ME = "alice"


def new_session(*, cursor: int = 0, auto_delivered: bool = True) -> Session:
    counter = itertools.count(1)
    return Session(user=ME, cursor=cursor, auto_delivered=auto_delivered, new_id=lambda: f"c{next(counter)}")


def stored(message_id: str, *, sender: str = "bob", recipient: str = ME, seq: int = 1) -> dict[str, Any]:
    return {
        "id": message_id,
        "conversation": "dm:alice:bob",
        "seq": seq,
        "from": sender,
        "to": recipient,
        "text": f"text of {message_id}",
        "ts": 1764100000.0,
    }


def message_event(cursor: int, message_id: str | None = None, *, sender: str = "bob") -> dict[str, Any]:
    return {
        "v": 1,
        "type": "message",
        "cursor": cursor,
        "message": stored(message_id or f"m{cursor}", sender=sender),
    }


def sent_event(cursor: int, ref: str, message_id: str) -> dict[str, Any]:
    message = stored(message_id, sender=ME, recipient="bob")
    return {"v": 1, "type": "sent", "cursor": cursor, "ref": ref, "message": message}


def receipt_event(
    cursor: int, message_id: str, status: str, *, by: str = "bob", all: bool = True
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "receipt",
        "cursor": cursor,
        "status": status,
        "message_id": message_id,
        "conversation": "dm:alice:bob",
        "seq": 1,
        "by": by,
        "all": all,
        "ts": 1764100001.0,
    }


def page(
    ref: str, entries: list[dict[str, Any]], *, more: bool = False, cursor: int | None = None
) -> dict[str, Any]:
    last = entries[-1]["cursor"] if entries else 0
    return {
        "v": 1,
        "type": "sync_page",
        "ref": ref,
        "entries": entries,
        "more": more,
        "cursor": last if cursor is None else cursor,
    }


def error_event(ref: str | None, code: str = "unknown_user") -> dict[str, Any]:
    return {"v": 1, "type": "error", "ref": ref, "code": code, "message": "refused"}


def commands(effects: Effects, kind: str | None = None) -> list[dict[str, Any]]:
    return [c.payload for c in effects.commands if kind is None or c.payload["type"] == kind]


def connect(session: Session, *, now: float = 0.0) -> str:
    """Connect and get the inbox SUBACK; returns the id of the sync the session sent."""
    session.on_connected()
    (sync,) = commands(session.on_subscribed(now=now))
    return str(sync["id"])


def synced(session: Session, *, now: float = 0.0) -> Effects:
    """Connect and answer the first sync with an empty last page."""
    sync_id = connect(session, now=now)
    return session.on_inbox(page(sync_id, [], cursor=session.cursor), now=now)


# -- catching up ---------------------------------------------------------------------------------------


def test_after_the_subscription_the_session_syncs_from_its_cursor() -> None:
    # Given a session resuming after cursor 5
    session = new_session(cursor=5)

    # When the connection is up and the inbox subscribed
    session.on_connected()
    effects = session.on_subscribed(now=0.0)

    # Then it asks for everything after 5, with QoS 1
    assert commands(effects) == [{"v": 1, "type": "sync", "id": "c1", "after": 5, "limit": 200}]
    assert effects.commands[0].qos == 1
    assert not session.synced


def test_sync_pages_are_followed_to_the_end() -> None:
    # Given a sync in progress
    session = new_session()
    sync_id = connect(session)

    # When the first page says there is more
    first = session.on_inbox(page(sync_id, [message_event(1), message_event(2)], more=True), now=0.1)

    # Then the session asks for the next page after its cursor, and is not synced yet
    (next_sync,) = commands(first, "sync")
    assert next_sync["after"] == 2
    assert not session.synced

    # When the last page arrives
    last = session.on_inbox(page(next_sync["id"], [message_event(3)]), now=0.2)

    # Then the app got the three messages in order and the session is synced
    assert [e.id for e in first.events + last.events if isinstance(e, Message)] == ["m1", "m2", "m3"]
    assert session.synced
    assert session.cursor == 3


def test_a_page_that_says_more_without_moving_ends_the_sync() -> None:
    # Given a sync after cursor 0
    session = new_session()
    sync_id = connect(session)

    # When a (buggy) page says more but does not move past the cursor
    effects = session.on_inbox(page(sync_id, [], more=True, cursor=0), now=0.1)

    # Then the session does not loop on it: it stops asking and counts itself synced
    assert commands(effects, "sync") == []
    assert session.synced


def test_sync_pages_of_other_devices_are_ignored() -> None:
    # Given a sync of ours in progress (another device of alice shares the inbox topic)
    session = new_session()
    connect(session)

    # When a page answering the other device's sync arrives
    effects = session.on_inbox(page("their-sync", [message_event(1)]), now=0.1)

    # Then nothing happens here
    assert effects == Effects()
    assert session.cursor == 0
    assert not session.synced


def test_a_late_page_of_an_abandoned_sync_adds_its_entries_but_not_its_paging() -> None:
    # Given a sync that was abandoned by a reconnect, and the new sync in progress
    session = new_session()
    old_sync = connect(session)
    session.on_disconnected()
    new_sync = connect(session)

    # When a late page of the old sync arrives, saying there is more
    effects = session.on_inbox(page(old_sync, [message_event(1)], more=True), now=0.1)

    # Then its entries are used, but it drives no paging: the new sync is still the one awaited
    assert [e.id for e in effects.events if isinstance(e, Message)] == ["m1"]
    assert commands(effects, "sync") == []
    session.on_inbox(page(new_sync, [message_event(1)]), now=0.2)
    assert session.synced


def test_every_reconnect_syncs_again_from_the_processed_cursor() -> None:
    # Given a synced session that processed up to cursor 2
    session = new_session()
    sync_id = connect(session)
    session.on_inbox(page(sync_id, [message_event(1), message_event(2)]), now=0.0)

    # When the connection drops and comes back
    session.on_disconnected()
    assert not session.synced
    session.on_connected()
    effects = session.on_subscribed(now=1.0)

    # Then it syncs after 2
    assert [c["after"] for c in commands(effects, "sync")] == [2]


def test_nothing_is_subscribed_or_synced_without_a_connection() -> None:
    # Given a session that is not connected
    session = new_session()

    # When a (stale) SUBACK or a tick arrives, Then it does nothing
    assert session.on_subscribed(now=0.0) == Effects()
    assert session.on_tick(now=100.0) == Effects()
    assert session.next_tick() is None


# -- sending -----------------------------------------------------------------------------------------


def test_a_send_while_synced_is_published_at_once() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When the app sends
    outgoing, effects = session.send(to="bob", text="hi", now=0.0)

    # Then the send command goes out with the handle's id
    assert commands(effects) == [{"v": 1, "type": "send", "id": outgoing.id, "to": "bob", "text": "hi"}]
    assert outgoing.status is None


def test_sends_made_offline_or_during_the_sync_go_out_after_it_in_order() -> None:
    # Given a message sent while disconnected
    session = new_session()
    first, offline = session.send(to="bob", text="one", id="a-1", now=0.0)

    # When the session connects, a second message is sent during the sync, and the sync ends
    sync_id = connect(session)
    second, during_sync = session.send(to="bob", text="two", id="a-2", now=0.0)
    done = session.on_inbox(page(sync_id, []), now=0.1)

    # Then nothing was published early, and both go out after the sync, oldest first
    assert offline == Effects()
    assert during_sync == Effects()
    assert [c["id"] for c in commands(done, "send")] == [first.id, second.id]


def test_unanswered_sends_are_resent_after_every_reconnect_and_answered_ones_are_not() -> None:
    # Given two messages published while synced; the server answered the first one only
    session = new_session()
    synced(session)
    answered, _ = session.send(to="bob", text="one", id="a-1", now=0.0)
    unanswered, _ = session.send(to="bob", text="two", id="a-2", now=0.0)
    session.on_inbox(sent_event(1, "a-1", "m-1"), now=0.1)

    # When the connection drops and comes back and the sync ends
    session.on_disconnected()
    sync_id = connect(session, now=1.0)
    effects = session.on_inbox(page(sync_id, []), now=1.1)

    # Then only the unanswered one is resent, with the same command id
    assert answered.status is Status.SENT
    assert [c["id"] for c in commands(effects, "send")] == [unanswered.id]


def test_a_sent_found_by_the_sync_settles_the_message_before_the_resend() -> None:
    # Given a message whose sent event was missed while offline
    session = new_session()
    synced(session)
    outgoing, _ = session.send(to="bob", text="one", id="a-1", now=0.0)
    session.on_disconnected()

    # When the reconnect sync returns its sent event
    sync_id = connect(session, now=1.0)
    effects = session.on_inbox(page(sync_id, [sent_event(1, "a-1", "m-1")]), now=1.1)

    # Then it is sent, and not resent
    assert outgoing.status is Status.SENT
    assert outgoing.message_id == "m-1"
    assert commands(effects, "send") == []
    assert [type(e).__name__ for e in effects.events] == ["Sent"]


def test_receipts_move_the_outgoing_message_forward() -> None:
    # Given a sent message
    session = new_session()
    synced(session)
    outgoing, _ = session.send(to="bob", text="hi", id="a-1", now=0.0)
    session.on_inbox(sent_event(1, "a-1", "m-1"), now=0.0)

    # When it is delivered then read
    delivered = session.on_inbox(receipt_event(2, "m-1", "delivered"), now=0.0)
    session.on_inbox(receipt_event(3, "m-1", "read"), now=0.0)

    # Then the handle is read and the app saw Receipt events
    assert outgoing.status is Status.READ
    assert isinstance(delivered.events[0], Receipt)
    assert delivered.events[0].status is Status.DELIVERED


def test_one_receipt_event_naming_several_group_members_reaches_the_app_as_one_receipt_each() -> None:
    # Given a message sent to a group of three
    session = new_session()
    synced(session)
    outgoing, _ = session.send(to="g:team", text="hi", id="a-1", now=0.0)
    session.on_inbox(sent_event(1, "a-1", "m-1"), now=0.0)

    # When carol's receipt comes alone, then bob's and dave's in one event that completes it
    def delivered(cursor: int, by: str, *, also_by: list[str], all: bool) -> dict[str, Any]:
        event = receipt_event(cursor, "m-1", "delivered", by=by, all=all)
        return {**event, "conversation": "g:team", **({"also_by": also_by} if also_by else {})}

    first = session.on_inbox(delivered(2, "carol", also_by=[], all=False), now=0.0)
    rest = session.on_inbox(delivered(3, "bob", also_by=["dave"], all=True), now=0.0)

    # Then the app gets one Receipt per member, the last of them for all, and the handle knows each
    events = (*first.events, *rest.events)
    got = [(r.by, r.all, r.cursor, r.also_by) for r in events if isinstance(r, Receipt)]
    assert got == [("carol", False, 2, ()), ("bob", False, 3, ()), ("dave", True, 3, ())]
    assert outgoing.receipts == dict.fromkeys(("carol", "bob", "dave"), Status.DELIVERED)
    assert outgoing.status is Status.DELIVERED


def test_a_refused_send_fails_its_handle_and_is_not_resent() -> None:
    # Given a message to a user who does not exist
    session = new_session()
    synced(session)
    outgoing, _ = session.send(to="bobb", text="hi", id="a-1", now=0.0)

    # When the server answers with an error for it
    effects = session.on_inbox(error_event("a-1"), now=0.0)

    # Then the app sees a ServerError, the handle's wait raises, and a reconnect does not resend it
    assert effects.events == [ServerError(ref="a-1", code="unknown_user", message="refused")]
    with pytest.raises(CommandRejected, match="unknown_user"):
        outgoing.wait("sent", timeout=0)
    session.on_disconnected()
    assert commands(synced(session), "send") == []


def test_errors_about_other_commands_are_still_reported() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When the server reports an error for a payload it could not read
    effects = session.on_inbox(error_event(None, "bad_json"), now=0.0)

    # Then the app sees it
    assert effects.events == [ServerError(ref=None, code="bad_json", message="refused")]


def test_read_receipts_and_typing() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When the app marks messages read and shows typing
    read = session.receipts(["m-1", "m-2"], status=Status.READ, now=0.0)
    typing = session.typing(to="bob", composing=False)

    # Then a read receipt (QoS 1) and a paused typing indicator (QoS 0) are published
    assert [(c.payload["status"], c.payload["messages"], c.qos) for c in read.commands] == [
        ("read", ["m-1", "m-2"], 1)
    ]
    assert [(c.payload["state"], c.qos) for c in typing.commands] == [("paused", 0)]


# -- processing in order -------------------------------------------------------------------------------


def test_live_duplicates_and_reordering_give_each_event_once_in_order() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When live events arrive as 2, 1, 1, 3, 2
    events = []
    for cursor in (2, 1, 1, 3, 2):
        events += session.on_inbox(message_event(cursor), now=0.0).events

    # Then the app sees m1, m2, m3 once each
    assert [e.id for e in events if isinstance(e, Message)] == ["m1", "m2", "m3"]
    assert session.cursor == 3


def test_a_gap_that_stays_open_is_filled_by_one_sync() -> None:
    # Given a synced session at cursor 1, and cursor 3 arriving live at t=10 (2 was lost)
    session = new_session()
    synced(session)
    session.on_inbox(message_event(1), now=9.0)
    assert session.on_inbox(message_event(3), now=10.0).events == []

    # When time passes: not yet due at 10.2, due at 10.3, and ticks keep coming while the sync runs
    early = session.on_tick(now=10.2)
    due = session.on_tick(now=10.3)
    while_syncing = session.on_tick(now=10.6)

    # Then exactly one sync from cursor 1 is sent
    assert early == Effects()
    assert [(c["type"], c["after"]) for c in commands(due)] == [("sync", 1)]
    assert while_syncing == Effects()

    # When its page brings 2 and 3
    filled = session.on_inbox(page(commands(due)[0]["id"], [message_event(2), message_event(3)]), now=10.7)

    # Then the app gets 2 then 3, once each
    assert [e.id for e in filled.events if isinstance(e, Message)] == ["m2", "m3"]
    # and once the server confirmed the delivered receipts, nothing is left to do
    for receipt in commands(filled, "receipt") + commands(due, "receipt"):
        session.on_inbox({"v": 1, "type": "ok", "ref": receipt["id"]}, now=10.8)
    for pending in list(session._receipts_pending):
        session.on_inbox({"v": 1, "type": "ok", "ref": pending}, now=10.8)
    assert session.next_tick() is None


def test_next_tick_tells_when_the_gap_is_due() -> None:
    # Given a synced session with a gap opened at t=5
    session = new_session()
    synced(session)
    session.on_inbox(message_event(2), now=5.0)

    # Then the next tick is planned for the end of the gap timeout
    assert session.next_tick() == pytest.approx(5.3)


def test_a_refused_sync_is_retried_and_still_completes_the_catch_up() -> None:
    # Given the first sync after connect, refused because the server is busy
    session = new_session()
    sync_id = connect(session, now=0.0)
    refused = session.on_inbox(error_event(sync_id, "busy"), now=0.1)

    # When time passes past the retry delay
    retry = session.on_tick(now=1.1)

    # Then the refusal was reported, a new sync goes out, and its page completes the catch-up
    assert [type(e).__name__ for e in refused.events] == ["ServerError"]
    assert session.on_tick(now=0.5) == Effects()
    (again,) = commands(retry, "sync")
    session.on_inbox(page(again["id"], []), now=1.2)
    assert session.synced


def test_an_unanswered_sync_is_asked_again() -> None:
    # Given a sync sent at t=0 whose page never comes
    session = new_session()
    first = connect(session, now=0.0)

    # When the sync timeout passes
    assert session.next_tick() == pytest.approx(15.0)
    effects = session.on_tick(now=15.0)

    # Then a new sync replaces it
    (again,) = commands(effects, "sync")
    assert again["id"] != first


# -- what the app is told -------------------------------------------------------------------------------


def test_messages_from_others_are_acknowledged_as_delivered_in_one_receipt_per_page() -> None:
    # Given a sync page with three messages from bob and one alice sent to herself
    session = new_session()
    sync_id = connect(session)
    entries = [message_event(1), message_event(2), message_event(3, sender=ME), message_event(4)]

    # When the page is processed
    effects = session.on_inbox(page(sync_id, entries), now=0.0)

    # Then one delivered receipt names bob's three messages, and the app gets all four
    receipts = commands(effects, "receipt")
    assert [(r["status"], r["messages"]) for r in receipts] == [("delivered", ["m1", "m2", "m4"])]
    assert len([e for e in effects.events if isinstance(e, Message)]) == 4
    assert effects.cursor_advanced


def test_without_auto_delivered_no_receipt_is_sent() -> None:
    # Given a session that does not acknowledge automatically
    session = new_session(auto_delivered=False)
    synced(session)

    # When a message arrives
    effects = session.on_inbox(message_event(1), now=0.0)

    # Then the app gets it but no receipt is published
    assert commands(effects) == []
    assert [type(e).__name__ for e in effects.events] == ["Message"]


def test_sent_events_from_other_devices_reach_the_app() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When a sent event for a command of another device arrives
    effects = session.on_inbox(sent_event(1, "other-device-cmd", "m-7"), now=0.0)

    # Then the app sees it
    assert [(type(e).__name__, e.ref) for e in effects.events if isinstance(e, Sent)] == [
        ("Sent", "other-device-cmd")
    ]


def test_typing_and_presence_reach_the_app() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When bob types and bob's presence arrives
    typing = session.on_inbox({"v": 1, "type": "typing", "from": "bob", "state": "composing"}, now=0.0)
    presence = session.on_presence(
        "bob", {"v": 1, "type": "presence", "user": "bob", "status": "offline", "last_seen": 5}
    )

    # Then both are events and the presence is remembered
    assert typing.events == [Typing(sender="bob", state="composing")]
    assert presence.events == [Presence(user="bob", status="offline", last_seen=5.0)]
    assert session.presence("bob") == Presence(user="bob", status="offline", last_seen=5.0)
    assert session.presence("carol") is None


def test_a_presence_on_the_wrong_topic_is_ignored() -> None:
    # Given a session
    session = new_session()

    # When carol's presence arrives on bob's topic
    effects = session.on_presence(
        "bob", {"v": 1, "type": "presence", "user": "carol", "status": "online", "last_seen": 5}
    )

    # Then it is not believed
    assert effects == Effects()
    assert session.presence("bob") is None


@pytest.mark.parametrize(
    "payload", [None, [], {"v": 1}, {"v": 1, "type": "shout"}, {"v": 2, "type": "message"}]
)
def test_undecodable_payloads_are_ignored(payload: Any) -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When a payload without a usable cursor breaks the contract, Then nothing happens
    assert session.on_inbox(payload, now=0.0) == Effects()


def test_an_unreadable_event_with_a_cursor_is_skipped_so_the_inbox_keeps_moving() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When cursor 1 is an event of an unknown type and cursor 2 a message
    skipped = session.on_inbox({"v": 1, "type": "reaction", "cursor": 1}, now=0.0)
    effects = session.on_inbox(message_event(2), now=0.0)

    # Then 1 is skipped without an event and 2 is delivered right away
    assert skipped.events == []
    assert skipped.cursor_advanced
    assert [e.id for e in effects.events if isinstance(e, Message)] == ["m2"]
    assert session.cursor == 2


# -- messages deleted for everyone -------------------------------------------------------------------


def tombstone(message_id: str) -> dict[str, Any]:
    message = stored(message_id)
    del message["text"]
    return {**message, "deleted": True, "deleted_at": 1764100009.0, "deleted_by": "admin"}


def deleted_event(cursor: int, message_id: str) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "deleted",
        "cursor": cursor,
        "message_id": message_id,
        "conversation": "dm:alice:bob",
        "seq": 1,
        "by": "admin",
        "ts": 1764100009.0,
        "message": tombstone(message_id),
    }


def test_a_deletion_is_applied_in_cursor_order_and_carries_the_tombstone() -> None:
    # Given a synced session
    session = new_session()
    synced(session)

    # When the deletion (cursor 2) arrives before the message it deletes (cursor 1)
    early = session.on_inbox(deleted_event(2, "m1"), now=1.0)
    late = session.on_inbox(message_event(1, "m1"), now=1.0)

    # Then nothing is applied until the gap is filled, then the message, then its deletion
    assert early.events == []
    message, deleted = late.events
    assert isinstance(message, Message) and message.text == "text of m1" and not message.deleted
    assert isinstance(deleted, MessageDeleted)
    assert (deleted.message_id, deleted.by, deleted.cursor) == ("m1", "admin", 2)
    assert deleted.message.deleted and deleted.message.text == "" and deleted.message.media is None
    assert session.cursor == 2


def test_a_synced_tombstone_is_a_deleted_message_without_text() -> None:
    # Given a session that syncs after the message was deleted: its entry carries the tombstone
    session = new_session()
    sync_id = connect(session)
    entry = {"v": 1, "type": "message", "cursor": 1, "message": tombstone("m1")}

    effects = session.on_inbox(page(sync_id, [entry, deleted_event(2, "m1")]), now=1.0)

    # Then the app sees the tombstone, never a text, and the deletion
    message, deleted = effects.events
    assert isinstance(message, Message) and message.deleted and message.text == ""
    assert isinstance(deleted, MessageDeleted) and deleted.message_id == "m1"
