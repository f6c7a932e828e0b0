"""Reactions (every backend): one emoji per user per message, replaced and removed; the summary
rides in every inbox entry that carries the message, and every hearer gets a ``reaction`` event
with a cursor; who cannot see the message gets ``not_found`` and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest

from client_sdk.contract import ErrorCode
from tests.stores.conftest import users
from workers.errors import CommandError
from workers.stores import InboxEntry, Store


def log(store: Store, user: str) -> list[InboxEntry]:
    entries, more = store.sync(user=user, after=0, limit=500)
    assert not more
    return entries


def carried(store: Store, user: str, message_id: str) -> list[dict[str, Any]]:
    """The message as each ``message``/``sent`` entry of ``user``'s inbox carries it."""
    return [
        e.payload["message"]
        for e in log(store, user)
        if e.payload["type"] in ("message", "sent") and e.payload["message"]["id"] == message_id
    ]


def dm(store: Store) -> tuple[str, str, str]:
    alice, bob = users(store, "alice", "bob")
    sent = store.accept_message(sender=alice, command_id="s1", recipient=bob, text="lunch?", now=1.0)
    return alice, bob, sent.message.id


def test_a_reaction_reaches_both_sides_with_the_summary_in_history(store: Store) -> None:
    alice, bob, message_id = dm(store)

    change = store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=2.0)

    assert change.changed and change.reactions == {bob: "👍"}
    assert sorted(e.user for e in change.entries) == sorted([alice, bob])
    for user in (alice, bob):
        entries = log(store, user)
        event = entries[-1].payload
        assert event == {
            "v": 1,
            "type": "reaction",
            "cursor": entries[-1].cursor,
            "ref": "r1" if user == bob else None,
            "message_id": message_id,
            "conversation": f"dm:{min(alice, bob)}:{max(alice, bob)}",
            "seq": 1,
            "by": bob,
            "emoji": "👍",
            "reactions": {bob: "👍"},
            "ts": 2.0,
        }
        assert [e.cursor for e in entries] == list(range(1, len(entries) + 1))
        (message,) = carried(store, user, message_id)
        assert message["reactions"] == {bob: "👍"} and message["text"] == "lunch?"


def test_replace_then_remove(store: Store) -> None:
    alice, bob, message_id = dm(store)
    store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=2.0)
    store.react(user=alice, message_id=message_id, emoji="😂", command_id="r2", now=3.0)

    replaced = store.react(user=bob, message_id=message_id, emoji="❤️", command_id="r3", now=4.0)
    assert replaced.reactions == {alice: "😂", bob: "❤️"}
    assert carried(store, alice, message_id)[0]["reactions"] == {alice: "😂", bob: "❤️"}

    removed = store.react(user=bob, message_id=message_id, emoji=None, command_id="r4", now=5.0)
    assert removed.changed and removed.reactions == {alice: "😂"}
    assert removed.entries[0].payload["emoji"] is None
    store.react(user=alice, message_id=message_id, emoji=None, command_id="r5", now=6.0)
    for user in (alice, bob):
        (message,) = carried(store, user, message_id)
        assert "reactions" not in message  # absent when empty
        assert log(store, user)[-1].payload["reactions"] == {}


def test_the_same_emoji_or_the_same_command_again_changes_nothing(store: Store) -> None:
    alice, bob, message_id = dm(store)
    store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=2.0)
    before = (log(store, alice), log(store, bob))

    resent = store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=3.0)
    same = store.react(user=bob, message_id=message_id, emoji="👍", command_id="r2", now=4.0)
    nothing = store.react(user=alice, message_id=message_id, emoji=None, command_id="r3", now=5.0)

    for change in (resent, same, nothing):
        assert not change.changed and change.entries == [] and change.reactions == {bob: "👍"}
    assert (log(store, alice), log(store, bob)) == before


def test_a_resent_command_does_not_undo_what_it_did_after_a_replace_by_it(store: Store) -> None:
    """The command that set the current emoji, sent again with another emoji in it (a client
    bug), is still the same command: nothing changes."""
    _alice, bob, message_id = dm(store)
    store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=2.0)
    again = store.react(user=bob, message_id=message_id, emoji="😮", command_id="r1", now=3.0)
    assert not again.changed and again.reactions == {bob: "👍"}


@pytest.mark.parametrize("who", ["stranger", "unknown id"])
def test_who_cannot_see_the_message_gets_not_found(store: Store, who: str) -> None:
    alice, bob, message_id = dm(store)
    (carol,) = users(store, "carol")
    before = (log(store, alice), log(store, bob), log(store, carol))
    target = message_id if who == "stranger" else "f" * 32
    reactor = carol if who == "stranger" else bob

    with pytest.raises(CommandError) as raised:
        store.react(user=reactor, message_id=target, emoji="👍", command_id="x", now=2.0)

    assert raised.value.code == ErrorCode.NOT_FOUND
    assert (log(store, alice), log(store, bob), log(store, carol)) == before


def test_a_deleted_message_drops_its_reactions_and_takes_no_more(store: Store) -> None:
    alice, bob, message_id = dm(store)
    store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=2.0)

    store.delete_for_everyone(message_id, by="admin", now=3.0)

    for user in (alice, bob):
        (message,) = carried(store, user, message_id)
        assert message["deleted"] is True and "reactions" not in message
    before = log(store, bob)
    for user, emoji in ((bob, "😢"), (bob, None), (alice, "👍")):
        with pytest.raises(CommandError) as raised:
            store.react(user=user, message_id=message_id, emoji=emoji, command_id="r2", now=4.0)
        assert raised.value.code == ErrorCode.NOT_FOUND
    assert log(store, bob) == before


def test_a_tombstone_or_a_hidden_copy_is_left_as_it_is(store: Store) -> None:
    """The patch owns only ``reactions``: a carrier another change turned into a tombstone or
    marked hidden keeps what it says."""
    from workers.stores.rules.reactions import summary_patch

    patch = summary_patch({"bob": "👍"})
    assert patch({"id": "m", "deleted": True}) is None
    assert patch({"id": "m", "text": "x", "hidden": True}) is None
    assert patch({"id": "m", "text": "x", "edited_at": 5.0, "reply": {"id": "o"}}) == {
        "id": "m",
        "text": "x",
        "edited_at": 5.0,
        "reply": {"id": "o"},
        "reactions": {"bob": "👍"},
    }
    assert patch({"id": "m", "text": "x", "reactions": {"carol": "😂"}})["reactions"] == {"bob": "👍"}  # type: ignore[index]
    assert "reactions" not in (summary_patch({})({"id": "m", "reactions": {"bob": "👍"}}) or {})


def test_a_group_reaction_reaches_the_members_who_had_it(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol, dave], now=1.0, ref="g1", max_members=10
    ).group.id
    message_id = store.accept_message(
        sender=alice, command_id="s1", recipient=group, text="hi all", now=2.0
    ).message.id
    store.remove_members(group=group, actor=alice, members=[dave], now=3.0, ref="g2")
    (erin,) = users(store, "erin")
    store.add_members(group=group, actor=alice, members=[erin], now=4.0, ref="g3", max_members=10)

    change = store.react(user=carol, message_id=message_id, emoji="🎉", command_id="r1", now=5.0)

    # the sender and the members who had a copy; not dave (removed), not erin (joined later)
    assert sorted(e.user for e in change.entries) == sorted([alice, bob, carol])
    for user in (alice, bob, carol):
        assert carried(store, user, message_id)[0]["reactions"] == {carol: "🎉"}
    # dave (no longer a member) and erin (never got it) may not react
    for outsider in (dave, erin):
        with pytest.raises(CommandError) as raised:
            store.react(user=outsider, message_id=message_id, emoji="👍", command_id="r2", now=6.0)
        assert raised.value.code == ErrorCode.NOT_FOUND
    assert all(e.payload["type"] != "reaction" for e in log(store, erin))


def test_reactions_inside_a_batch_are_kept_together(store: Store) -> None:
    """Several reactions to one message in one batch (one SQL transaction) each see the others."""
    alice, bob, message_id = dm(store)
    with store.batch():
        store.react(user=bob, message_id=message_id, emoji="👍", command_id="r1", now=2.0)
        last = store.react(user=alice, message_id=message_id, emoji="🙏", command_id="r2", now=2.0)
    assert last.reactions == {alice: "🙏", bob: "👍"}
    assert carried(store, bob, message_id)[0]["reactions"] == {alice: "🙏", bob: "👍"}
