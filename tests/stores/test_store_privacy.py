"""Privacy settings and group invitations on SQLite, PostgreSQL and MongoDB: a change is one
``privacy`` event (a resend none), read receipts off hold back ``read`` in 1-on-1 both ways (never
in groups), the ``groups`` setting turns an add into an invitation that can be accepted, declined
or left to expire, and the photo, about and presence audiences are applied."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from client_sdk.contract import Status
from tests.stores.conftest import users
from workers.errors import CommandError
from workers.stores import ReceiptRequest, Store
from workers.stores.rules.privacy import DEFAULT, INVITE_TTL


def receipt_statuses(entries: list[Any], sender: str) -> list[str]:
    return [e.payload["status"] for e in entries if e.user == sender and e.payload["type"] == "receipt"]


def test_a_change_is_one_privacy_event_and_a_resend_changes_nothing(store: Store) -> None:
    (alice,) = users(store, "alice")
    assert store.privacy_of(alice) == DEFAULT

    settings, entries = store.set_privacy(
        user=alice, changes={"last_seen": "contacts", "read_receipts": False}, command_id="p1", now=2.0
    )

    assert (settings.last_seen, settings.read_receipts, settings.online) == ("contacts", False, "everyone")
    assert [(e.user, e.payload["type"], e.payload["ref"]) for e in entries] == [(alice, "privacy", "p1")]
    assert entries[0].payload["settings"]["last_seen"] == "contacts"
    assert store.privacy_of(alice) == settings
    again, none = store.set_privacy(user=alice, changes={"last_seen": "nobody"}, command_id="p1", now=3.0)
    assert none == [] and again == settings == store.privacy_of(alice)
    later, _ = store.set_privacy(user=alice, changes={"about": "nobody"}, command_id="p2", now=4.0)
    assert (later.last_seen, later.about, later.read_receipts) == ("contacts", "nobody", False)


@pytest.mark.parametrize("who_turns_off", ["reader", "sender"])
def test_read_receipts_off_leave_a_1on1_message_delivered(store: Store, who_turns_off: str) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_privacy(
        user=bob if who_turns_off == "reader" else alice,
        changes={"read_receipts": False},
        command_id="p",
        now=1.5,
    )
    message = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0).message

    # When bob says he read it (without a delivered first)
    result = store.apply_receipts(user=bob, status=Status.READ, message_ids=[message.id], now=3.0)

    # Then alice hears "delivered", never "read"; a second read changes nothing
    assert receipt_statuses(result.entries, alice) == ["delivered"]
    again = store.apply_receipts(user=bob, status=Status.READ, message_ids=[message.id], now=4.0)
    assert again.entries == [] and again.not_recipient == []


def test_read_receipts_off_in_a_batch_of_receipts(store: Store) -> None:
    alice, bob, carol, dave = users(store, "alice", "bob", "carol", "dave")
    store.set_privacy(user=bob, changes={"read_receipts": False}, command_id="p", now=1.5)
    to_bob = store.accept_message(sender=alice, command_id="c1", recipient=bob, text="1", now=2.0).message
    to_dave = store.accept_message(sender=carol, command_id="c2", recipient=dave, text="2", now=2.0).message

    requests = [
        ReceiptRequest(bob, Status.READ, [to_bob.id]),
        ReceiptRequest(dave, Status.READ, [to_dave.id]),
    ]
    together = store.apply_receipts_of(requests, now=3.0)
    results = together or [
        store.apply_receipts(user=r.user, status=r.status, message_ids=r.message_ids, now=3.0)
        for r in requests
    ]

    assert receipt_statuses(results[0].entries, alice) == ["delivered"]
    assert receipt_statuses(results[1].entries, carol)[-1] == "read"  # dave kept them on


def test_group_messages_always_get_read_receipts(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_privacy(user=bob, changes={"read_receipts": False}, command_id="p", now=1.5)
    store.set_privacy(user=alice, changes={"read_receipts": False}, command_id="p", now=1.5)
    group = store.create_group(creator=alice, name="g", members=[bob], now=2.0, ref="g", max_members=10).group
    message = store.accept_message(
        sender=alice, command_id="c1", recipient=group.id, text="hi", now=2.5
    ).message

    result = store.apply_receipts(user=bob, status=Status.READ, message_ids=[message.id], now=3.0)

    assert "read" in receipt_statuses(result.entries, alice)


def test_a_member_who_allows_nobody_is_invited_not_added(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    store.set_privacy(user=bob, changes={"groups": "nobody"}, command_id="p", now=1.5)

    change = store.create_group(
        creator=alice, name="Trip", members=[bob, carol], now=2.0, ref="g", max_members=10
    )

    # Then carol is a member, bob is invited: alice's event lists him, his inbox holds the invitation
    assert change.group.members == [alice, carol]
    by_user = {e.user: e.payload for e in change.entries}
    assert by_user[alice]["invited"] == [bob] and "invited" not in by_user[carol]
    invite = by_user[bob]
    assert invite["type"] == "group_invitation" and invite["state"] == "invited" and invite["cursor"] >= 1
    assert invite["group"] == {"id": change.group.id, "name": "Trip"} and invite["by"] == alice
    assert invite["expires"] == pytest.approx(2.0 + INVITE_TTL)
    assert store.invitation(group=change.group.id, user=bob, now=3.0) is not None

    # When bob accepts, Then he joins with the usual group events
    joined = store.accept_invitation(group=change.group.id, user=bob, now=3.0, ref="a1", max_members=10)
    assert joined.group.members == [alice, carol, bob]
    events = {e.user: e.payload for e in joined.entries}
    assert events[bob]["action"] == "joined" and events[bob]["ref"] == "a1" and events[alice]["by"] == bob
    # and a resend of the same command changes nothing more (no event), answering with the group
    again = store.accept_invitation(group=change.group.id, user=bob, now=3.5, ref="a1", max_members=10)
    assert again.entries == [] and again.group.members == joined.group.members
    # and the invitation is used up
    with pytest.raises(CommandError) as used:
        store.accept_invitation(group=change.group.id, user=bob, now=4.0, ref="a2", max_members=10)
    assert used.value.code.value == "not_found"


def test_an_add_of_only_invited_members_tells_the_adder_alone(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    group = store.create_group(
        creator=alice, name="g", members=[carol], now=2.0, ref="g", max_members=10
    ).group
    store.set_privacy(user=bob, changes={"groups": "contacts"}, command_id="p", now=2.5)

    change = store.add_members(group=group.id, actor=alice, members=[bob], now=3.0, ref="add", max_members=10)

    assert change.group.members == [alice, carol]
    assert sorted(e.user for e in change.entries) == sorted([alice, bob])
    mine = next(e.payload for e in change.entries if e.user == alice)
    assert (mine["action"], mine["affected"], mine["invited"], mine["ref"]) == ("added", [], [bob], "add")


def test_a_contact_may_add_a_member_who_allows_contacts(store: Store) -> None:
    alice, bob = users(store, "alice", "bob")
    store.set_privacy(user=bob, changes={"groups": "contacts"}, command_id="p", now=1.5)
    store.accept_message(sender=bob, command_id="c1", recipient=alice, text="hi", now=2.0)

    change = store.create_group(creator=alice, name="g", members=[bob], now=3.0, ref="g", max_members=10)

    assert change.group.members == [alice, bob]
    assert all("invited" not in e.payload for e in change.entries)


def test_a_declined_or_expired_invitation_does_nothing(store: Store) -> None:
    alice, bob, carol = users(store, "alice", "bob", "carol")
    for user in (bob, carol):
        store.set_privacy(user=user, changes={"groups": "nobody"}, command_id="p", now=1.5)
    group = store.create_group(
        creator=alice, name="g", members=[bob, carol], now=2.0, ref="g", max_members=10
    ).group

    # bob declines: his devices hear of it, and accepting later fails
    declined = store.decline_invitation(group=group.id, user=bob, now=3.0, ref="d1")
    assert [(e.user, e.payload["state"], e.payload["ref"]) for e in declined] == [(bob, "declined", "d1")]
    assert store.decline_invitation(group=group.id, user=bob, now=3.1, ref="d1") == []  # a resend
    # carol's invitation runs out
    late = 2.0 + INVITE_TTL + 1
    assert store.invitation(group=group.id, user=carol, now=late) is None
    for user, now in ((bob, 4.0), (carol, late)):
        with pytest.raises(CommandError) as gone:
            store.accept_invitation(group=group.id, user=user, now=now, ref="a", max_members=10)
        assert gone.value.code.value == "not_found"
    with pytest.raises(CommandError):
        store.decline_invitation(group=group.id, user=carol, now=late, ref="d2")
    assert store.group_info(group.id).members == [alice]  # type: ignore[union-attr]


def _avatar() -> dict[str, Any]:
    return {"key": f"a/{uuid.uuid4().hex}.jpg", "type": "image/jpeg", "size": 1, "width": 1, "height": 1}


def test_photo_and_about_are_left_out_for_whom_they_are_not_shown(store: Store) -> None:
    alice, bob, stranger = users(store, "alice", "bob", "stranger")
    picture = _avatar()
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0)
    store.set_privacy(user=alice, changes={"photo": "nobody", "about": "contacts"}, command_id="p", now=2.5)

    change = store.update_profile(
        user=alice, changes={"about": "climbing", "avatar": picture}, now=3.0, ref="p1"
    )

    by_user = {e.user: e.payload["profile"] for e in change.entries}
    assert by_user[alice]["avatar"] == picture and by_user[alice]["about"] == "climbing"
    assert by_user[bob]["avatar"] is None and by_user[bob]["about"] == "climbing"
    (seen_by_bob,) = store.profiles_for(watcher=bob, users=[alice], everyone=False)
    (seen_by_stranger,) = store.profiles_for(watcher=stranger, users=[alice], everyone=True)
    (own,) = store.profiles_for(watcher=alice, users=[alice], everyone=False)
    assert (seen_by_bob.avatar, seen_by_bob.about) == (None, "climbing")
    assert (seen_by_stranger.avatar, seen_by_stranger.about) == (None, None)
    assert own.avatar == picture
    assert not store.can_read_avatar(bob, picture["key"], everyone=False)
    assert store.can_read_avatar(alice, picture["key"], everyone=False)


def test_presence_audience_narrowed_by_the_server_ceiling(store: Store) -> None:
    alice, bob, stranger = users(store, "alice", "bob", "stranger")
    store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=2.0)

    # no setting: the ceiling decides
    assert store.may_watch_presence(stranger, alice, everyone=True)
    assert not store.may_watch_presence(stranger, alice, everyone=False)
    assert store.may_watch_presence(bob, alice, everyone=False)

    store.set_privacy(
        user=alice, changes={"online": "contacts", "last_seen": "nobody"}, command_id="p", now=3.0
    )
    assert store.may_watch_presence(bob, alice, everyone=True)
    assert not store.may_watch_presence(stranger, alice, everyone=True)
    assert store.hiding_last_seen([alice, bob], everyone=True) == {alice}
    assert alice in store.hiding_last_seen(None, everyone=True)

    store.set_privacy(user=alice, changes={"online": "nobody"}, command_id="p2", now=4.0)
    assert not store.may_watch_presence(bob, alice, everyone=True)
    assert store.may_watch_presence(alice, alice, everyone=False)
    assert store.hiding_last_seen([alice], everyone=True) == set()
