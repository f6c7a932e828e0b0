"""Reactions against a real node, with plain MQTT and with the SDKs: every hearer gets each change
as a ``reaction`` event in cursor order, the message carries its summary in sync (after a restart
too), a resend changes nothing, and a reaction to a message one cannot see is ``not_found``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Client, CommandRejected, Message, Reaction, Sent, Status, aio
from client_sdk.contract import load_schema
from tests import harness
from tests.harness import RunningNode, wait_until
from tests.integration.test_delete_for_everyone import next_message, synced_from_start
from tests.plain import PlainClient

SCHEMA = Draft202012Validator(load_schema())


def react(plain: PlainClient, cid: str, message_id: str, emoji: str) -> None:
    plain.publish({"v": 1, "type": "react", "id": cid, "message": message_id, "emoji": emoji})


def plain_client(node: RunningNode, user: str, device: str) -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    client.inbox()
    return client


def reactions_of(client: Client, count: int, timeout: float = 10) -> list[Reaction]:
    """The next ``count`` reaction events ``client`` yields (other events are skipped)."""
    found: list[Reaction] = []
    for event in client.events(timeout=timeout):
        if isinstance(event, Reaction):
            found.append(event)
            if len(found) == count:
                return found
    raise AssertionError(f"only {found} of {count} reactions arrived")


def carrier(entries: list[dict[str, Any]], message_id: str) -> dict[str, Any]:
    """The message as the ``message``/``sent`` entry of a synced inbox carries it."""
    found: dict[str, Any]
    (found,) = [
        e["message"] for e in entries if e["type"] in ("message", "sent") and e["message"]["id"] == message_id
    ]
    return found


def test_plain_mqtt_reactions_reach_both_sides_and_every_device(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice = plain_client(node, alice_id, "phone")
    bob_phone = plain_client(node, bob_id, "phone")
    bob_laptop = plain_client(node, bob_id, "laptop")
    try:
        alice.send(bob_id, "lunch at noon?", cid="s1")
        message_id = alice.expect_type("sent", ref="s1")["message"]["id"]
        bob_phone.expect_type("message")

        # When bob reacts from his phone
        react(bob_phone, "r1", message_id, "👍")

        # Then alice and both of bob's devices get the reaction event, with the command id on his
        mine = bob_laptop.expect_type("reaction", emoji="👍")
        theirs = alice.expect_type("reaction", emoji="👍")
        assert bob_phone.expect_type("reaction", emoji="👍")["ref"] == "r1"
        assert mine["ref"] == "r1" and theirs["ref"] is None
        for event in (mine, theirs):
            SCHEMA.validate(event)  # as published
            assert event["message_id"] == message_id and event["by"] == bob_id
            assert event["reactions"] == {bob_id: "👍"} and event["seq"] == 1

        # When he replaces it, then alice reacts too, then he removes his
        react(bob_phone, "r2", message_id, "❤️")
        assert alice.expect_type("reaction", emoji="❤️")["reactions"] == {bob_id: "❤️"}
        react(alice, "r3", message_id, "😂")
        assert bob_laptop.expect_type("reaction", emoji="😂")["reactions"] == {bob_id: "❤️", alice_id: "😂"}
        react(bob_laptop, "r4", message_id, "")
        removed = alice.expect_type("reaction", ref=None, emoji=None)
        assert removed["by"] == bob_id and removed["reactions"] == {alice_id: "😂"}
        SCHEMA.validate(removed)

        # When bob's laptop sends its command again (its answer was lost), and the same emoji again
        react(bob_laptop, "r4", message_id, "")
        assert bob_laptop.expect_type("ok", ref="r4")
        react(alice, "r5", message_id, "😂")
        assert alice.expect_type("ok", ref="r5")
        # Then nothing changed: alice's next reaction event is the next change, at the next cursor
        react(alice, "r6", message_id, "🙏")
        latest = alice.expect_type("reaction", emoji="🙏")
        assert latest["cursor"] == removed["cursor"] + 1
    finally:
        for client in (alice, bob_phone, bob_laptop):
            client.close()

    # And a device that syncs from the start finds the summary on the message, then each change
    for user in (alice_id, bob_id):
        entries = synced_from_start(node, user)
        for entry in entries:
            SCHEMA.validate(entry)
        assert carrier(entries, message_id)["reactions"] == {alice_id: "🙏"}
        changes = [(e["by"], e["emoji"]) for e in entries if e["type"] == "reaction"]
        assert changes == [
            (bob_id, "👍"),
            (bob_id, "❤️"),
            (alice_id, "😂"),
            (bob_id, None),
            (alice_id, "🙏"),
        ]


def test_bad_reactions_are_refused_and_change_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    dave_id, _ = node.add_user("dave")
    with harness.connect(node, alice_id) as alice_sdk:
        group = alice_sdk.create_group("band", [bob_id])
        early = alice_sdk.send(group.id, "before dave")
        early.wait("sent", timeout=10)
        alice_sdk.add_members(group.id, [dave_id])
        gone = alice_sdk.send(bob_id, "to be deleted")
        gone.wait("sent", timeout=10)
        assert gone.message_id is not None and early.message_id is not None
        node.call(node.node.delete_message(gone.message_id))
    alice = plain_client(node, alice_id, "shell")
    bob = plain_client(node, bob_id, "shell")
    carol = plain_client(node, carol_id, "shell")
    dave = plain_client(node, dave_id, "shell")
    try:
        alice.send(bob_id, "between us", cid="s1")
        private = alice.expect_type("sent", ref="s1")["message"]["id"]
        bob.expect_type("message")
        before = {user: synced_from_start(node, user) for user in (alice_id, bob_id, carol_id, dave_id)}

        cases = [
            (bob, private, "ok", "bad_request"),  # not an emoji
            (bob, private, "👍👍", "bad_request"),  # two emoji
            (bob, private, " 👍", "bad_request"),
            (bob, private, "1", "bad_request"),
            (carol, private, "👍", "not_found"),  # a stranger's message
            (dave, early.message_id, "👍", "not_found"),  # a group message from before he joined
            (bob, "0" * 32, "👍", "not_found"),  # no such message
            (bob, gone.message_id, "👍", "not_found"),  # deleted for everyone
            (alice, gone.message_id, "", "not_found"),
        ]
        for n, (client, message_id, emoji, code) in enumerate(cases):
            react(client, f"bad{n}", message_id, emoji)
            error = client.expect_type("error", ref=f"bad{n}")
            assert error["code"] == code, (emoji, error)
            SCHEMA.validate(error)

        # Then nothing changed for anyone
        after = {user: synced_from_start(node, user) for user in before}
        assert after == before
        # And everyone's connection keeps working
        react(bob, "good", private, "👍")
        assert alice.expect_type("reaction", by=bob_id)["reactions"] == {bob_id: "👍"}
        carol.send(alice_id, "hi", cid="c1")
        carol.expect_type("sent", ref="c1")
    finally:
        for client in (alice, bob, carol, dave):
            client.close()


def test_an_offline_group_member_syncs_the_summary_and_the_changes_after_a_restart(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")  # offline until the end
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        group = alice.create_group("climbing", [bob_id, carol_id])
        out = alice.send(group.id, "saturday at the crag?")
        out.wait("sent", timeout=10)
        message = next_message(bob)
        assert message.reactions == {}

        # When bob and alice react with the SDK, and bob changes his mind
        bob.react(message, "👍")
        assert out.message_id is not None
        alice.react(out.message_id, "🎉")
        bob.react(message.id, "❤️")

        # Then both see every change, in order, with the whole summary
        for client in (alice, bob):
            changes = reactions_of(client, 3)
            assert [(r.by, r.emoji) for r in changes] == [(bob_id, "👍"), (alice_id, "🎉"), (bob_id, "❤️")]
            assert changes[-1].reactions == {bob_id: "❤️", alice_id: "🎉"}
            assert all(r.message_id == out.message_id and r.conversation == group.id for r in changes)
            assert [r.cursor for r in changes] == sorted(r.cursor for r in changes)
        # and the same emoji again changes nothing (answered, no event)
        bob.react(message, "❤️")

    # When the node restarts before carol comes back
    node.stop()
    node.start()

    # Then carol's SDK gets the message with its summary, then the changes in order
    with harness.connect(node, carol_id, auto_delivered=False) as carol:
        # her inbox: the group, the message, three reactions
        assert wait_until(lambda: carol.cursor >= 5, timeout=10)
        seen = list(carol.events(timeout=1))
    copies = [e for e in seen if isinstance(e, Message) and e.id == out.message_id]
    assert [m.reactions for m in copies] == [{bob_id: "❤️", alice_id: "🎉"}]
    changes = [e for e in seen if isinstance(e, Reaction)]
    assert [(r.by, r.emoji) for r in changes] == [(bob_id, "👍"), (alice_id, "🎉"), (bob_id, "❤️")]
    assert seen.index(copies[0]) < seen.index(changes[0])

    # And the sender's new device, after the restart, syncs the summary on its sent message
    with harness.connect(node, alice_id, device="tablet") as tablet:
        assert wait_until(lambda: tablet.cursor >= 5, timeout=10)
        sent = [e for e in tablet.events(timeout=1) if isinstance(e, Sent) and e.message.id == out.message_id]
    assert [s.message.reactions for s in sent] == [{bob_id: "❤️", alice_id: "🎉"}]


def test_the_sdk_unreacts_and_refuses_what_is_not_one_emoji(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with (
        harness.connect(node, alice_id) as alice,
        harness.connect(node, bob_id, device="phone") as phone,
        harness.connect(node, bob_id, device="laptop") as laptop,
    ):
        out = alice.send(bob_id, "new haircut")
        out.wait(Status.DELIVERED, timeout=10)
        message = next_message(phone)

        with pytest.raises(CommandRejected) as refused:
            phone.react(message, "nice")
        assert refused.value.code == "bad_request"
        with pytest.raises(CommandRejected) as refused:
            phone.react(message, "🔥🔥")
        assert refused.value.code == "bad_request"

        phone.react(message, "🔥")
        laptop.unreact(message)  # his other device takes it back

        for client in (alice, phone, laptop):
            added, removed = reactions_of(client, 2)
            assert (added.emoji, added.reactions) == ("🔥", {bob_id: "🔥"})
            assert (removed.emoji, removed.reactions) == (None, {})
            assert removed.by == bob_id
        laptop.unreact(message)  # nothing to remove: answered all the same


def test_the_asyncio_sdk_reacts_and_yields_reactions(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            aio.Client("127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id]) as alice,
            aio.Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob,
        ):
            await alice.wait_synced(timeout=10)
            await bob.wait_synced(timeout=10)
            out = await alice.send(bob_id, "ping")
            await out.wait("sent", timeout=10)
            assert out.message_id is not None
            await bob.react(out.message_id, "🏓")
            async for event in alice.events(timeout=10):
                if isinstance(event, aio.Reaction):
                    assert event.by == bob_id and event.reactions == {bob_id: "🏓"} and event.ref is None
                    break
            else:
                raise AssertionError("no Reaction arrived")
            with pytest.raises(aio.CommandRejected):
                await alice.react("0" * 32, "🏓")
            await bob.unreact(out.message_id)

    asyncio.run(scenario())
