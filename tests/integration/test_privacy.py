"""Per-user privacy settings and consent to group adds, through the real node: plain MQTT and the
SDK, a contact and a stranger, read receipts both ways in 1-on-1 and still on in groups, photo and
about hidden, invitations accepted, declined or expired (across a restart), and a change applied
at once to a presence subscription already made."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from client_sdk import (
    CommandRejected,
    GroupEvent,
    GroupInvitation,
    PresenceForbidden,
    PrivacyChanged,
    PrivacySettings,
    Receipt,
)
from tests import harness
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration.test_aio_sdk import connect as aio_connect
from tests.integration.test_aio_sdk import run
from tests.media_files import png
from tests.plain import PlainClient
from workers.stores.sql.privacy_data import group_invitations


@pytest.fixture
def open_node(tmp_path: Path) -> Iterator[RunningNode]:
    """A node whose operator lets anyone watch anyone (``presence.visibility = "everyone"``): what
    a user's own settings narrow."""
    running = RunningNode(node_settings(tmp_path, **{"presence.visibility": "everyone"})).start()
    try:
        yield running
    finally:
        running.close()


def connect(node: RunningNode, user: str) -> Any:
    return harness.connect(node, user, media_url=node.media_url)


def plain(node: RunningNode, user: str, device: str = "plain") -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    assert client.inbox() == [1]
    return client


def command(client: PlainClient, kind: str, **fields: Any) -> str:
    cid = uuid.uuid4().hex
    client.publish({"v": 1, "type": kind, "id": cid, **fields})
    return cid


def own_presence_then_rest(client: PlainClient) -> list[tuple[str, Any]]:
    """Subscribe to the client's own presence and wait for it: what was on its way to this
    connection before has arrived by then (one connection's packets come in order)."""
    assert client.subscribe(f"presence/{client.user}") == [1]
    client.expect(lambda t, p: t == f"presence/{client.user}")
    return client.drain(0)


# ---------------------------------------------------------------------------------- the setting itself
def test_a_change_reaches_every_device_and_a_resend_changes_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    phone, laptop = plain(node, alice_id, "phone"), plain(node, alice_id, "laptop")

    # When alice's phone turns read receipts off and hides her last seen from everyone
    cid = command(phone, "privacy_set", read_receipts=False, last_seen="nobody")

    # Then both devices get the privacy event, with a cursor and the command id
    for device in (phone, laptop):
        event = device.expect_type("privacy", ref=cid)
        assert event["cursor"] >= 1
        assert event["settings"] == {
            "last_seen": "nobody",
            "online": "everyone",
            "read_receipts": False,
            "photo": "everyone",
            "about": "everyone",
            "groups": "everyone",
        }
    # And a resend of the same command is answered live, storing nothing more
    phone.publish({"v": 1, "type": "privacy_set", "id": cid, "read_receipts": True})
    again = phone.expect_type("privacy", ref=cid)
    assert "cursor" not in again and again["settings"]["read_receipts"] is False
    # And privacy_get answers live
    asked = command(laptop, "privacy_get")
    answer = laptop.expect_type("privacy", ref=asked)
    assert "cursor" not in answer and answer["settings"]["last_seen"] == "nobody"
    # And a bad value is refused, changing nothing
    bad = command(phone, "privacy_set", online="friends")
    assert phone.expect_type("error", ref=bad)["code"] == "bad_request"
    empty = command(phone, "privacy_set")
    assert phone.expect_type("error", ref=empty)["code"] == "bad_request"
    phone.close()
    laptop.close()

    # And through the SDK, after a restart, the settings are still there
    node.stop()
    node.start()
    with connect(node, alice_id) as sdk:
        assert sdk.privacy() == PrivacySettings(last_seen="nobody", read_receipts=False)
        changed = sdk.set_privacy(photo="contacts")
        assert changed == PrivacySettings(last_seen="nobody", read_receipts=False, photo="contacts")
        with pytest.raises(ValueError, match="photo"):
            sdk.set_privacy(photo="friends")
        assert wait_until(lambda: any(isinstance(e, PrivacyChanged) for e in sdk.events(timeout=0.1)), 5)


# ---------------------------------------------------------------------------------- presence
def test_online_contacts_lets_a_contact_watch_and_refuses_a_stranger(open_node: RunningNode) -> None:
    alice_id, _ = open_node.add_user("alice")
    bob_id, _ = open_node.add_user("bob")
    stranger_id, _ = open_node.add_user("stranger")
    open_node.make_contacts(alice_id, bob_id)
    alice = plain(open_node, alice_id)
    bob, stranger = plain(open_node, bob_id), plain(open_node, stranger_id)

    # Given the operator's ceiling is "everyone": the stranger may watch alice
    assert stranger.subscribe(f"presence/{alice_id}") == [1]
    stranger.expect(lambda t, p: t == f"presence/{alice_id}")

    # When alice narrows her online status to her contacts
    cid = command(alice, "privacy_set", online="contacts")
    alice.expect_type("privacy", ref=cid)

    # Then the stranger is refused from now on, and bob (a contact) still may watch her
    assert wait_until(lambda: stranger.subscribe(f"presence/{alice_id}") == [0x80], 10)
    assert bob.subscribe(f"presence/{alice_id}") == [1]
    assert bob.expect(lambda t, p: t == f"presence/{alice_id}")["status"] == "online"
    # And the SDK says the same: the stranger gets PresenceForbidden, a user always sees themselves
    with connect(open_node, stranger_id) as sdk, pytest.raises(PresenceForbidden):
        sdk.watch_presence(alice_id)
    with connect(open_node, alice_id) as sdk:
        assert sdk.wait_presence(alice_id, "online", timeout=10).online
    for client in (alice, bob, stranger):
        client.close()


def test_a_change_cuts_an_existing_subscription_at_once(open_node: RunningNode) -> None:
    alice_id, _ = open_node.add_user("alice")
    bob_id, _ = open_node.add_user("bob")
    stranger_id, _ = open_node.add_user("stranger")
    open_node.make_contacts(alice_id, bob_id)
    alice, own = plain(open_node, alice_id, "phone"), plain(open_node, alice_id, "watch")
    bob, stranger = plain(open_node, bob_id), plain(open_node, stranger_id)
    for watcher in (own, bob, stranger):
        assert watcher.subscribe(f"presence/{alice_id}") == [1]
        watcher.expect(lambda t, p: t == f"presence/{alice_id}")

    # When alice (with all three watching) lets only her contacts see her online status, and
    # nobody her last seen
    cid = command(alice, "privacy_set", online="contacts", last_seen="nobody")
    alice.expect_type("privacy", ref=cid)

    # Then her presence is published again once the change is applied (without last seen): it
    # reaches her own device and bob...
    def republished(topic: str, payload: Any) -> bool:
        return topic == f"presence/{alice_id}" and "last_seen" not in payload

    assert own.expect(republished)["status"] == "online"
    assert bob.expect(republished)["status"] == "online"
    # ...and not the stranger, whose subscription was cut before (all he got is from before)
    got = [p for t, p in own_presence_then_rest(stranger) if t == f"presence/{alice_id}"]
    assert all("last_seen" in p for p in got), got
    # And subscribing again is refused, as for any stranger
    assert stranger.subscribe(f"presence/{alice_id}") == [0x80]
    for client in (alice, own, bob, stranger):
        client.close()


def test_last_seen_hidden_from_watchers_of_online(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    node.make_contacts(alice_id, bob_id)
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        assert bob.wait_presence(alice_id, "online", timeout=10).last_seen is not None

        # When alice hides her last seen but not her online status
        alice.set_privacy(last_seen="nobody")

        # Then bob still sees her online, without a last seen (at once and after she leaves)
        assert wait_until(lambda: (p := bob.presence(alice_id)) is not None and p.last_seen is None, 10)
    with connect(node, bob_id) as bob:
        offline = bob.wait_presence(alice_id, "offline", timeout=10)
        assert offline.last_seen is None

    # And after a restart the retained presence still leaves it out
    node.stop()
    node.start()
    watcher = plain(node, bob_id)
    assert watcher.subscribe(f"presence/{alice_id}") == [1]
    retained = watcher.expect(lambda t, p: t == f"presence/{alice_id}")
    assert retained["status"] == "offline" and "last_seen" not in retained
    watcher.close()


def test_online_nobody_refuses_even_a_contact(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    node.make_contacts(alice_id, bob_id)
    with connect(node, alice_id) as alice:
        alice.set_privacy(online="nobody")
        with connect(node, bob_id) as bob, pytest.raises(PresenceForbidden):
            bob.watch_presence(alice_id)


# ---------------------------------------------------------------------------------- read receipts
def _reads(events: list[Any], message_id: str) -> list[str]:
    return [e.status.label for e in events if isinstance(e, Receipt) and e.message_id == message_id]


@pytest.mark.parametrize("who_turns_off", ["reader", "sender"])
def test_read_receipts_off_hold_back_read_in_1on1(node: RunningNode, who_turns_off: str) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        (bob if who_turns_off == "reader" else alice).set_privacy(read_receipts=False)
        out = alice.send(bob_id, "did you read this?")
        message = next(iter(bob.messages(timeout=10)))
        out.wait("delivered", timeout=10)

        # When bob reads it, then writes back
        bob.mark_read(message)
        bob.send(alice_id, "maybe").wait("sent", timeout=10)

        # Then alice gets his message (after any receipt of his earlier read) and no read receipt
        seen: list[Any] = []
        for event in alice.events(timeout=10):
            seen.append(event)
            if getattr(event, "text", None) == "maybe":
                break
        assert "read" not in _reads(seen, message.id)
        assert out.status.label == "delivered"


def test_read_receipts_off_on_a_plain_client_and_still_on_in_groups(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    command(bob, "privacy_set", read_receipts=False)
    bob.expect_type("privacy")
    direct = alice.send(bob_id, "1-on-1")
    sent = alice.expect_type("sent", ref=direct)["message"]["id"]
    group_cid = command(alice, "group_create", name="g", members=[bob_id])
    group = alice.expect_type("group", ref=group_cid)["group"]["id"]
    in_group = alice.send(group, "to the group")
    group_message = alice.expect_type("sent", ref=in_group)["message"]["id"]

    # When bob sends read receipts for both (a client that does not hold them back)
    command(bob, "receipt", status="read", messages=[sent])
    command(bob, "receipt", status="read", messages=[group_message])

    # Then alice hears "read" for the group message only (the 1-on-1 one stays delivered)
    alice.expect_type("receipt", message_id=group_message, status="read")
    receipts = [p for t, p in alice.drain(0) if isinstance(p, dict) and p.get("type") == "receipt"]
    assert [r["status"] for r in receipts if r["message_id"] == sent] == ["delivered"]
    alice.close()
    bob.close()


# ---------------------------------------------------------------------------------- photo and about
def test_photo_and_about_left_out_for_whom_they_are_hidden(open_node: RunningNode) -> None:
    alice_id, _ = open_node.add_user("alice")
    bob_id, _ = open_node.add_user("bob")
    stranger_id, _ = open_node.add_user("stranger")
    open_node.make_contacts(alice_id, bob_id)
    with connect(open_node, alice_id) as alice:
        alice.set_privacy(photo="nobody", about="contacts")
        alice.set_profile(name="Alice", about="climbing")
        mine = alice.set_avatar(io.BytesIO(png(64, 64)))
        assert mine.avatar is not None and mine.about == "climbing"  # she sees her own

    with connect(open_node, bob_id) as bob:
        # Then bob (a contact) sees her name and about, not her photo, and cannot download it
        seen = bob.profile(alice_id)
        assert seen is not None and (seen.name, seen.about, seen.avatar) == ("Alice", "climbing", None)
        with pytest.raises(CommandRejected) as refused:
            bob.download(mine.avatar)
        assert refused.value.code == "not_found"
    with connect(open_node, stranger_id) as stranger:
        # And a stranger (the ceiling lets anyone read profiles) sees neither
        seen = stranger.profile(alice_id)
        assert seen is not None and (seen.name, seen.about, seen.avatar) == ("Alice", None, None)
    # And on the wire, the profile events bob got leave them out too
    watcher = plain(open_node, bob_id)
    asked = command(watcher, "profile_get", users=[alice_id])
    (profile,) = watcher.expect_type("profiles", ref=asked)["profiles"]
    assert profile["avatar"] is None and profile["about"] == "climbing"
    watcher.close()


# ---------------------------------------------------------------------------------- group consent
def test_an_add_the_setting_does_not_allow_becomes_an_invitation_accepted_later(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with connect(node, bob_id) as bob:
        bob.set_privacy(groups="contacts")
    # Given bob is offline, When alice (not a contact of his) creates a group with him and carol
    alice = plain(node, alice_id)
    cid = command(alice, "group_create", name="Trip", members=[bob_id, carol_id])
    created = alice.expect_type("group", ref=cid)

    # Then carol is in, bob is invited (alice's event says so)
    assert created["group"]["members"] == [alice_id, carol_id] and created["invited"] == [bob_id]
    group = created["group"]["id"]

    # And bob gets the invitation when he comes back, and accepts it
    with connect(node, bob_id) as bob:
        assert wait_until(lambda: [i.group for i in bob.group_invitations()] == [group], 10)
        (invitation,) = bob.group_invitations()
        assert (invitation.name, invitation.by, invitation.state) == ("Trip", alice_id, "invited")
        joined = bob.accept_group_invite(group)
        assert list(joined.members) == [alice_id, carol_id, bob_id]
        assert bob.group_invitations() == []
        # a second accept finds nothing pending
        with pytest.raises(CommandRejected) as again:
            bob.accept_group_invite(group)
        assert again.value.code == "not_found"
    # And alice hears of the join with the usual group event
    event = alice.expect_type("group", action="joined")
    assert event["by"] == bob_id and event["affected"] == [bob_id]
    alice.close()


def test_a_resent_answer_to_an_invitation_changes_nothing_more(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    bob = plain(node, bob_id)
    command(bob, "privacy_set", groups="nobody")
    bob.expect_type("privacy")
    alice = plain(node, alice_id)
    first = alice.expect_type("group", ref=command(alice, "group_create", name="a", members=[bob_id]))
    second = alice.expect_type("group", ref=command(alice, "group_create", name="b", members=[bob_id]))
    join, skip = first["group"]["id"], second["group"]["id"]

    # When bob accepts one and declines the other, and each command is sent twice
    for kind, group in (("group_invite_accept", join), ("group_invite_decline", skip)):
        cid = uuid.uuid4().hex
        for _ in range(2):
            bob.publish({"v": 1, "type": kind, "id": cid, "group": group})
        # Then the first is answered by its event, the resend by ok, with nothing more stored
        answer = "group" if kind == "group_invite_accept" else "group_invitation"
        bob.expect_type(answer, ref=cid)
        bob.expect_type("ok", ref=cid)
    asked = command(bob, "sync", after=0, limit=100)
    entries = bob.expect_type("sync_page", ref=asked)["entries"]
    assert [e["type"] for e in entries if e.get("ref") is not None and e["type"] != "privacy"] == [
        "group",
        "group_invitation",
    ]
    alice.close()
    bob.close()


def test_an_add_by_a_contact_goes_through_and_an_sdk_adder_sees_the_invited(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    dave_id, _ = node.add_user("dave")
    node.make_contacts(alice_id, bob_id)
    with connect(node, bob_id) as bob, connect(node, dave_id) as dave, connect(node, alice_id) as alice:
        bob.set_privacy(groups="contacts")
        dave.set_privacy(groups="nobody")
        group = alice.create_group("climbing", [bob_id])
        assert list(group.members) == [alice_id, bob_id]  # a contact may add him

        alice.add_members(group.id, [dave_id])
        added = next(e for e in alice.events(timeout=10) if isinstance(e, GroupEvent) and e.action == "added")
        assert added.invited == (dave_id,) and added.affected == ()
        invitation = next(e for e in dave.events(timeout=10) if isinstance(e, GroupInvitation))
        assert invitation.group == group.id and invitation.by == alice_id


def test_a_declined_or_expired_invitation_does_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with connect(node, bob_id) as bob, connect(node, carol_id) as carol, connect(node, alice_id) as alice:
        bob.set_privacy(groups="nobody")
        carol.set_privacy(groups="nobody")
        group = alice.create_group("g", [bob_id, carol_id])
        assert wait_until(lambda: len(bob.group_invitations()) == 1 and len(carol.group_invitations()) == 1)

        # When bob declines, Then every device of his drops the card, and accepting fails
        bob.decline_group_invite(group.id)
        assert bob.group_invitations() == []
        with pytest.raises(CommandRejected) as declined:
            bob.accept_group_invite(group.id)
        assert declined.value.code == "not_found"

    # When carol's invitation runs out (stored expiry in the past; checked across a restart)
    store = node.node.store
    assert store is not None
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(
            update(group_invitations).where(group_invitations.c.user_id == carol_id).values(expires_at=1.0)
        )
    node.stop()
    node.start()
    with connect(node, carol_id) as carol:
        with pytest.raises(CommandRejected) as expired:
            carol.accept_group_invite(group.id)
        assert expired.value.code == "not_found"
        assert carol.group_invitations() == []
    with connect(node, alice_id) as alice:
        (info,) = [g for g in alice.groups() if g.id == group.id]
        assert list(info.members) == [alice_id]


# ---------------------------------------------------------------------------------- the asyncio client
def test_the_asyncio_client_sets_privacy_and_answers_invitations(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with aio_connect(node, bob_id) as bob, aio_connect(node, alice_id) as alice:
            settings = await bob.set_privacy(groups="nobody", read_receipts=False)
            assert settings == PrivacySettings(groups="nobody", read_receipts=False)
            assert await bob.privacy() == settings

            # When alice makes two groups with him, Then two invitations come, and he is in neither
            first = await alice.create_group("one", [bob_id])
            second = await alice.create_group("two", [bob_id])
            assert bob_id not in first.members and bob_id not in second.members
            invited: list[GroupInvitation] = []
            async for event in bob.events(timeout=10):
                if isinstance(event, GroupInvitation):
                    invited.append(event)
                    if len(invited) == 2:
                        break
            assert [i.group for i in invited] == [first.id, second.id]

            # When he accepts one and declines the other
            joined = await bob.accept_group_invite(first.id)
            assert bob_id in joined.members
            await bob.decline_group_invite(second.id)
            assert bob.group_invitations() == []
            with pytest.raises(CommandRejected) as gone:
                await bob.accept_group_invite(second.id)
            assert gone.value.code == "not_found"

    run(scenario)


def test_a_contact_drops_a_photo_they_had_once_it_is_hidden(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    node.make_contacts(alice_id, bob_id)
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        alice.set_profile(about="climbing")
        mine = alice.set_avatar(io.BytesIO(png(64, 64)))
        assert wait_until(lambda: (p := bob.profile(alice_id)) is not None and p.avatar == mine.avatar, 10)

        # When alice hides her photo and about from everyone
        alice.set_privacy(photo="nobody", about="nobody")

        # Then bob's client hears of it and keeps neither; her own stays whole
        assert wait_until(lambda: (p := bob.profile(alice_id)) is not None and p.avatar is None, 10)
        seen = bob.profile(alice_id)
        assert seen is not None and seen.about is None
        assert alice.profile(alice_id) is not None
        own = alice.profile(alice_id)
        assert own is not None and own.avatar == mine.avatar and own.about == "climbing"
