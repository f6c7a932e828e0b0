"""Group chat through the real SDK: five people, two of them offline, one order for all."""

from __future__ import annotations

import pytest

from client_sdk import Client, CommandRejected, GroupEvent, Message, Receipt, Status
from client_sdk._settings import MqttVersion
from tests.harness import RunningNode, wait_until


def client(node: RunningNode, user: str, mqtt_version: MqttVersion = "3.1.1") -> Client:
    return Client("127.0.0.1", node.port, user=user, token=node.tokens[user], mqtt_version=mqtt_version)


def texts(c: Client, timeout: float = 2) -> list[str]:
    return [m.text for m in c.messages(timeout=timeout)]


def test_five_members_two_offline_all_get_every_message_in_the_same_order(
    node: RunningNode, mqtt_version: MqttVersion
) -> None:
    names = [node.add_user(n)[0] for n in ("alice", "bob", "carol", "dave", "erin")]
    alice_id, bob_id, carol_id, dave_id, erin_id = names

    # Given alice, bob and carol online, dave and erin offline
    with (
        client(node, alice_id, mqtt_version) as alice,
        client(node, bob_id, mqtt_version) as bob,
        client(node, carol_id, mqtt_version) as carol,
    ):
        group = alice.create_group("five", [bob_id, carol_id, dave_id, erin_id])
        assert group.members == tuple(names) and group.admins == (alice_id,)

        # When three members send, interleaved
        for sender, text in ((alice, "a1"), (bob, "b1"), (carol, "c1"), (alice, "a2"), (bob, "b2")):
            sender.send(group.id, text).wait("sent", timeout=10)

        # Then the online members see every other member's messages in seq order
        seen = {c.user: list(c.messages(timeout=2)) for c in (alice, bob, carol)}
        for member, messages in seen.items():
            assert all(m.group == group.id for m in messages)
            assert [m.seq for m in messages] == sorted(m.seq for m in messages)
            assert [m.text for m in messages] == [
                t
                for s, t in (
                    (alice_id, "a1"),
                    (bob_id, "b1"),
                    (carol_id, "c1"),
                    (alice_id, "a2"),
                    (bob_id, "b2"),
                )
                if s != member
            ]

    # And the offline members get all five, in the same order, once, when they come back
    for member in (dave_id, erin_id):
        with client(node, member, mqtt_version) as late:
            late.wait_synced(timeout=10)
            got = list(late.messages(timeout=2))
            assert [m.text for m in got] == ["a1", "b1", "c1", "a2", "b2"]
            assert [m.seq for m in got] == [1, 2, 3, 4, 5]
            assert len({m.id for m in got}) == 5


def test_per_member_and_aggregate_receipts_reach_the_sender(
    node: RunningNode, mqtt_version: MqttVersion
) -> None:
    alice_id, bob_id, carol_id, dave_id = (node.add_user(n)[0] for n in ("alice", "bob", "carol", "dave"))
    with (
        client(node, alice_id, mqtt_version) as alice,
        client(node, bob_id, mqtt_version) as bob,
        client(node, carol_id, mqtt_version) as carol,
    ):
        group = alice.create_group("four", [bob_id, carol_id, dave_id])

        # the online members' SDKs acknowledge at once (the server may tell both in one event)
        out = alice.send(group.id, "read me")
        got = {member: next(iter(member.messages(timeout=5))) for member in (bob, carol)}
        assert wait_until(lambda: out.receipts == {bob_id: Status.DELIVERED, carol_id: Status.DELIVERED})
        assert out.status is Status.SENT  # dave is away: one tick

        # dave comes back, syncs and acknowledges: two ticks
        with client(node, dave_id, mqtt_version) as dave:
            dave.wait_synced(timeout=10)
            out.wait("delivered", timeout=10)
        assert out.receipts == dict.fromkeys((bob_id, carol_id, dave_id), Status.DELIVERED)

        for member, message in got.items():
            member.mark_read(message)
        assert wait_until(lambda: out.receipts[bob_id] is out.receipts[carol_id] is Status.READ)
        assert out.status is Status.DELIVERED  # dave has not read it
        reads = [
            (r.by, r.all)
            for r in alice.events(timeout=1)
            if isinstance(r, Receipt) and r.status is Status.READ
        ]
        assert sorted(by for by, _ in reads) == sorted([bob_id, carol_id])  # one Receipt per member
        assert [everyone for _, everyone in reads] == [False, False]


def test_removal_and_leaving_take_effect_at_once(node: RunningNode) -> None:
    alice_id, bob_id, carol_id = (node.add_user(n)[0] for n in ("alice", "bob", "carol"))
    with client(node, alice_id) as alice, client(node, bob_id) as bob, client(node, carol_id) as carol:
        group = alice.create_group("shrinking", [bob_id, carol_id])

        after_removal = alice.remove_members(group.id, [bob_id])
        assert after_removal.members == (alice_id, carol_id)
        alice.send(group.id, "bob is gone").wait("delivered", timeout=10)
        assert texts(carol) == ["bob is gone"]
        bob_saw = list(bob.events(timeout=1))
        assert [e for e in bob_saw if isinstance(e, Message)] == []
        removal = [e for e in bob_saw if isinstance(e, GroupEvent) and e.action == "removed"]
        assert len(removal) == 1 and removal[0].affected == (bob_id,) and removal[0].by == alice_id

        after_leave = carol.leave_group(group.id)
        assert after_leave.members == (alice_id,)
        lonely = alice.send(group.id, "anyone?")
        lonely.wait("sent", timeout=10)
        assert texts(carol, timeout=1) == [] and texts(bob, timeout=1) == []

        # bob, no longer a member, is refused
        refused = bob.send(group.id, "let me back")
        with pytest.raises(CommandRejected) as excinfo:
            refused.wait("sent", timeout=10)
        assert excinfo.value.code == "not_member"


def test_group_management_through_the_sdk(node: RunningNode) -> None:
    alice_id, bob_id, carol_id, dave_id = (node.add_user(n)[0] for n in ("alice", "bob", "carol", "dave"))
    with client(node, alice_id) as alice, client(node, bob_id) as bob:
        group = alice.create_group("club", [bob_id])
        alice.add_members(group, [carol_id])
        alice.promote(group, [bob_id])
        renamed = bob.rename_group(group, "society")
        assert renamed.name == "society" and set(renamed.admins) == {alice_id, bob_id}
        assert [g.id for g in bob.groups()] == [group.id]

        with pytest.raises(CommandRejected) as excinfo:
            alice.add_members(group, [carol_id])
        assert excinfo.value.code == "bad_request"

    # dave, added later while offline, sees the group but none of its history
    with client(node, alice_id) as alice:
        alice.add_members(group.id, [dave_id])
    with client(node, dave_id) as dave:
        dave.wait_synced(timeout=10)
        assert list(dave.messages(timeout=1)) == []
        joined = dave.group(group.id)
        assert joined is not None and dave_id in joined.members
