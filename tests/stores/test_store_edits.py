"""Edits, deletes for everyone by users, and deletes for me (every backend): the stored text and
every entry that carried the message change in one go, each hearer gets one event with a cursor,
a resend changes nothing more, and a hidden message stays hidden whatever happens to it later."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk.contract import ErrorCode
from tests.harness import unique
from tests.stores.conftest import users
from tests.stores.test_store_deletion import raw_text
from tests.stores.test_store_media import media
from workers.errors import CommandError
from workers.stores import Store
from workers.stores.rules.deletion import check_user_delete

OLD, NEW = "see you at 5", "see you at 6"
WINDOW = 900.0


def log_of(store: Store, user: str) -> list[dict[str, Any]]:
    entries, more = store.sync(user=user, after=0, limit=500)
    assert not more
    assert [e.cursor for e in entries] == list(range(1, len(entries) + 1))  # no gap
    return [e.payload for e in entries]


def carried(store: Store, user: str, message_id: str) -> list[dict[str, Any]]:
    """The message as each of the user's ``sent``/``message`` entries carries it."""
    return [
        p["message"]
        for p in log_of(store, user)
        if p["type"] in ("sent", "message") and p["message"]["id"] == message_id
    ]


def edit(store: Store, message_id: str, user: str, text: str, command: str, now: float) -> Any:
    return store.edit_message(message_id, user=user, text=text, command_id=command, now=now, window=WINDOW)


def refused(code: ErrorCode, call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(CommandError) as raised:
        call(*args, **kwargs)
    assert raised.value.code == code
    return str(raised.value)


def test_an_edit_replaces_the_text_everywhere_and_tells_both_sides(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=OLD, now=10.0)
    message_id = sent.message.id

    change = edit(store, message_id, alice, NEW, "e1", 20.0)

    assert change.changed
    assert change.message == {**sent.message.wire(), "text": NEW, "edited_at": 20.0}
    assert [e.user for e in change.entries] == [alice, bob]
    for entry in change.entries:
        event = entry.payload
        assert event["type"] == "edited" and event["cursor"] == entry.cursor
        assert event["ref"] == ("e1" if entry.user == alice else None)
        assert (event["message_id"], event["by"], event["text"], event["edited_at"]) == (
            message_id,
            alice,
            NEW,
            20.0,
        )
        assert event["seq"] == sent.message.seq and event["message"] == change.message
        assert log_of(store, entry.user)[-1] == event
    # the entries that carried it carry the new text, in their places; the old text is gone
    assert carried(store, alice, message_id) == [change.message]
    assert carried(store, bob, message_id) == [change.message]
    assert OLD not in raw_text(store, message_id, [alice, bob])
    # a resend of the send is answered with the message as it is now
    again = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=OLD, now=30.0)
    assert again.duplicate and again.sent.payload["message"]["text"] == NEW


def test_a_resent_edit_changes_nothing_more_even_after_a_later_edit(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text=OLD, now=1.0
    ).message.id
    edit(store, message_id, alice, "first", "e1", 2.0)
    edit(store, message_id, alice, "second", "e2", 3.0)
    before = log_of(store, bob)

    again = edit(store, message_id, alice, "first", "e1", 4.0)

    assert not again.changed and again.entries == []
    assert log_of(store, bob) == before
    assert carried(store, bob, message_id)[0]["text"] == "second"


def test_who_may_edit_and_until_when(store: Store) -> None:
    alice, bob, eve = users(store, "alice", "bob", "eve")
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text=OLD, now=100.0
    ).message.id
    before = {user: log_of(store, user) for user in (alice, bob)}

    refused(ErrorCode.FORBIDDEN, edit, store, message_id, bob, NEW, "e1", 101.0)
    refused(ErrorCode.NOT_FOUND, edit, store, message_id, eve, NEW, "e2", 101.0)  # cannot see it
    refused(ErrorCode.NOT_FOUND, edit, store, "f" * 32, alice, NEW, "e3", 101.0)
    refused(ErrorCode.TOO_LATE, edit, store, message_id, alice, NEW, "e4", 100.0 + WINDOW + 1)

    assert {user: log_of(store, user) for user in (alice, bob)} == before  # nothing changed
    store.delete_for_everyone(message_id, by=alice, now=102.0)
    why = refused(ErrorCode.NOT_FOUND, edit, store, message_id, alice, NEW, "e5", 103.0)
    assert "deleted" in why


def test_a_caption_is_edited_within_the_caption_limit(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    photo = media(unique("p"))
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="", now=1.0, media=photo)

    change = edit(store, sent.message.id, alice, "the view", "e1", 2.0)

    assert change.message["media"] == photo and change.message["text"] == "the view"
    assert carried(store, bob, sent.message.id)[0]["media"] == photo
    refused(ErrorCode.TOO_LARGE, edit, store, sent.message.id, alice, "x" * 1025, "e2", 3.0)


def test_a_group_edit_reaches_the_members_who_had_it(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol, dave], now=1.0, ref="g1", max_members=10
    ).group.id
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=group, text=OLD, now=2.0
    ).message.id
    store.remove_members(group=group, actor=alice, members=[dave], now=3.0, ref="g2")

    change = edit(store, message_id, alice, NEW, "e1", 4.0)

    assert sorted(e.user for e in change.entries) == sorted([alice, bob, carol])
    assert OLD not in raw_text(store, message_id, [alice, bob, carol, dave])


def test_a_hidden_message_leaves_my_devices_only_and_stays_hidden(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    sent = store.accept_message(sender=alice, command_id="c1", recipient=bob, text=OLD, now=1.0)
    message_id = sent.message.id

    hide = store.hide_message(message_id, user=bob, command_id="h1", now=2.0)

    stub = {
        "id": message_id,
        "conversation": sent.message.conversation,
        "seq": sent.message.seq,
        "from": alice,
        "to": bob,
        "ts": 1.0,
        "hidden": True,
    }
    assert hide.changed and hide.message == stub
    assert [e.user for e in hide.entries] == [bob]
    event = hide.entries[0].payload
    assert (event["type"], event["ref"], event["message_id"], event["seq"], event["ts"]) == (
        "hidden",
        "h1",
        message_id,
        sent.message.seq,
        2.0,
    )
    assert carried(store, bob, message_id) == [stub]
    assert carried(store, alice, message_id)[0]["text"] == OLD  # alice still has it
    assert all(p["type"] != "hidden" for p in log_of(store, alice))

    # again: nothing changes
    assert not store.hide_message(message_id, user=bob, command_id="h2", now=3.0).changed
    # a later edit and a delete for everyone leave bob's entries hidden, and bob hears no new text
    change = edit(store, message_id, alice, NEW, "e1", 4.0)
    assert [e.user for e in change.entries] == [alice]
    assert carried(store, bob, message_id) == [stub]
    deletion = store.delete_for_everyone(message_id, by=alice, now=5.0)
    assert [e.user for e in deletion.entries] == [alice]
    assert carried(store, bob, message_id) == [stub]
    assert NEW not in str(log_of(store, bob)) and OLD not in str(log_of(store, bob))


def test_only_who_holds_a_message_may_hide_it(store: Store) -> None:
    alice, bob, eve = users(store, "alice", "bob", "eve")
    message_id = store.accept_message(
        sender=alice, command_id="c1", recipient=bob, text=OLD, now=1.0
    ).message.id

    refused(ErrorCode.NOT_FOUND, store.hide_message, message_id, user=eve, command_id="h1", now=2.0)
    assert store.hide_message(message_id, user=alice, command_id="h2", now=2.0).changed  # the sender may
    assert carried(store, alice, message_id)[0]["hidden"] is True
    assert carried(store, bob, message_id)[0]["text"] == OLD


def test_the_facts_of_a_group_message_name_its_holders_and_admins(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=1.0, ref="g1", max_members=10
    ).group.id
    message_id = store.accept_message(
        sender=bob, command_id="c1", recipient=group, text=OLD, now=2.0
    ).message.id
    store.promote(group=group, actor=alice, members=[carol], now=3.0, ref="g2")

    facts = store.message_facts(message_id)

    assert facts is not None and store.message_facts("f" * 32) is None
    assert (facts.sender, facts.recipient, facts.ts, facts.deleted, facts.media) == (
        bob,
        group,
        2.0,
        False,
        False,
    )
    assert sorted(facts.holders) == sorted([alice, bob, carol])
    assert sorted(facts.admins) == sorted([alice, carol])
    # an admin may delete it at any time; the sender within the window; a member never
    far = 2.0 + 10 * WINDOW
    check_user_delete(facts, message_id=message_id, user=carol, now=far, window=WINDOW)
    check_user_delete(facts, message_id=message_id, user=bob, now=3.0, window=WINDOW)
    refused(
        ErrorCode.TOO_LATE, check_user_delete, facts, message_id=message_id, user=bob, now=far, window=WINDOW
    )

    deletion = store.delete_for_everyone(message_id, by=carol, now=far, ref="d1")

    refs = {e.user: e.payload["ref"] for e in deletion.entries}
    assert refs == {alice: None, bob: None, carol: "d1"}
    facts = store.message_facts(message_id)
    assert facts is not None and facts.deleted
