"""The chat list, read state across a user's devices and typing in groups, through a real node:
plain MQTT and the SDK, 1-on-1 and groups, a new device without sync, two devices of one user
(live and after a reconnect), and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from client_sdk import Chat, Client, CommandRejected, Message, ReadState, SyncReset, Typing
from tests.harness import RunningNode, connect, node_settings, wait_until
from tests.integration.test_aio_sdk import connect as aio_connect
from tests.integration.test_aio_sdk import run as aio_run
from tests.integration.test_retention import RETENTION, seed, store_of
from tests.plain import PlainClient


def command(client: PlainClient, kind: str, cid: str, **fields: Any) -> None:
    client.publish({"v": 1, "type": kind, "id": cid, **fields})


def plain(node: RunningNode, user: str, device: str = "plain") -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    client.inbox()
    return client


def next_message(client: Client) -> Message:
    return next(e for e in client.events(timeout=10) if isinstance(e, Message) and e.sender != client.user)


def chat_of(client: Client, conversation: str) -> Chat:
    (found,) = [c for c in client.chats() if c.conversation == conversation]
    return found


def test_plain_mqtt_chat_list_pages_newest_first_with_unread_counts(node: RunningNode) -> None:
    me, _ = node.add_user("me")
    peers = [node.add_user(f"p{i}")[0] for i in range(3)]
    mine = plain(node, me)
    senders = [plain(node, peer) for peer in peers]
    try:
        for i, sender in enumerate(senders):
            for n in range(i + 1):
                cid = sender.send(me, f"from {sender.user} #{n}")
                sender.expect_type("sent", ref=cid)

        # When the user asks for the chat list two at a time
        command(mine, "chat_list", "l1", limit=2)
        first = mine.expect_type("chats", ref="l1")
        command(mine, "chat_list", "l2", limit=2, before=first["next"])
        second = mine.expect_type("chats", ref="l2")

        # Then the chats come newest first, each with its unread count and last message
        chats = first["chats"] + second["chats"]
        assert [c["peer"] for c in chats] == list(reversed(peers))
        assert [c["unread"] for c in chats] == [3, 2, 1]
        assert chats[0]["last_message"]["text"] == f"from {peers[2]} #2"
        assert chats[0]["kind"] == "direct" and chats[0]["read_seq"] == 0 and chats[0]["last_seq"] == 3
        assert chats[0]["presence"]["status"] == "online"
        assert second["next"] is None

        # And bad input: a limit out of range is clamped, a malformed cursor is bad_request
        command(mine, "chat_list", "l3", limit=100000)
        assert len(mine.expect_type("chats", ref="l3")["chats"]) == 3
        command(mine, "chat_list", "l4", limit=-5)
        assert len(mine.expect_type("chats", ref="l4")["chats"]) == 1
        for n, cursor in enumerate(["nope", "c1.!!!", "c1.WzEsMl0", "c1.eyJhIjoxfQ"]):
            command(mine, "chat_list", f"bad{n}", before=cursor)
            assert mine.expect_type("error", ref=f"bad{n}")["code"] == "bad_request"
        # and the connection keeps working
        command(mine, "chat_list", "l5")
        assert len(mine.expect_type("chats", ref="l5")["chats"]) == 3
    finally:
        for client in (mine, *senders):
            client.close()


def test_a_read_on_one_device_clears_unread_on_the_other_live_and_after_a_reconnect(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    conversation = f"dm:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
    with (
        connect(node, alice_id) as alice,
        connect(node, bob_id, device="phone", auto_delivered=True) as phone,
        connect(node, bob_id, device="laptop") as laptop,
    ):
        alice.send(bob_id, "one").wait("sent", timeout=10)
        alice.send(bob_id, "two").wait("sent", timeout=10)
        first = next_message(phone)
        second = next_message(phone)
        assert chat_of(laptop, conversation).unread == 2

        # When bob reads the first message on his phone (a read receipt)
        phone.mark_read(first)

        # Then his laptop learns it live, and its chat list agrees
        read = next(e for e in laptop.events(timeout=10) if isinstance(e, ReadState))
        assert (read.conversation, read.read_seq, read.ref) == (conversation, 1, None)
        assert (chat_of(laptop, conversation).unread, chat_of(laptop, conversation).read_seq) == (1, 1)
        # and alice's receipts say nothing of it
        assert second.seq == 2

    # When bob, offline on the laptop, reads the rest on his phone without read receipts
    with connect(node, bob_id, device="phone") as phone:
        phone.mark_conversation_read(conversation, 2)
        assert chat_of(phone, conversation).unread == 0
    # Then the laptop gets it at sync
    with connect(node, bob_id, device="laptop") as laptop:
        chat = chat_of(laptop, conversation)
        assert (chat.unread, chat.read_seq) == (0, 2)
        # and its sync replays the read event too
        replayed = [e for e in laptop.events(timeout=1) if isinstance(e, ReadState)]
        assert [(e.conversation, e.read_seq) for e in replayed][-1:] == [(conversation, 2)]

    # And after a node restart the read state and the chat list are as they were
    node.stop()
    node.start()
    with connect(node, bob_id, device="tablet") as tablet:
        chat = chat_of(tablet, conversation)
        assert (chat.unread, chat.read_seq, chat.last_seq) == (0, 2, 2)
        assert chat.last_message is not None and chat.last_message.text == "two"


def test_two_plain_devices_agree_and_a_resent_mark_read_changes_nothing(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, phone, laptop = plain(node, alice_id), plain(node, bob_id, "phone"), plain(node, bob_id, "laptop")
    try:
        cid = alice.send(bob_id, "hello")
        sent = alice.expect_type("sent", ref=cid)["message"]
        conversation = sent["conversation"]
        phone.expect_type("message")

        command(phone, "mark_read", "m1", conversation=conversation, seq=1)

        for device in (phone, laptop):
            event = device.expect_type("read", conversation=conversation)
            assert (event["read_seq"], event["ref"]) == (1, "m1") and event["cursor"] >= 1
        # a resend is answered ok and emits nothing more
        command(phone, "mark_read", "m1", conversation=conversation, seq=1)
        phone.expect_type("ok", ref="m1")
        assert not [p for _, p in laptop.drain() if isinstance(p, dict) and p.get("type") == "read"]
        # a conversation bob is not in is forbidden, whether or not it exists
        for n, other in enumerate([f"dm:{alice_id}:zzz-nobody", "g:nosuchgroup"]):
            command(phone, "mark_read", f"x{n}", conversation=other, seq=1)
            assert phone.expect_type("error", ref=f"x{n}")["code"] == "forbidden"
    finally:
        for client in (alice, phone, laptop):
            client.close()


def test_a_new_device_loads_groups_and_chats_without_sync(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with connect(node, alice_id) as alice:
        group = alice.create_group("Crag", [bob_id, carol_id])
        alice.send(group.id, "sunday?").wait("sent", timeout=10)
        alice.send(carol_id, "just you").wait("sent", timeout=10)
        alice.send(bob_id, "and you").wait("sent", timeout=10)

    # a plain client that never syncs: the chat list is all it asks for
    fresh = plain(node, bob_id, "tablet")
    try:
        command(fresh, "chat_list", "l1")
        chats = fresh.expect_type("chats", ref="l1")["chats"]
    finally:
        fresh.close()
    assert [c["kind"] for c in chats] == ["direct", "group"]
    direct, in_group = chats
    assert (direct["peer"], direct["last_message"]["text"], direct["unread"]) == (alice_id, "and you", 1)
    assert in_group["group"] == {"id": group.id, "name": "Crag", "member": True}
    assert (in_group["last_message"]["text"], in_group["unread"]) == ("sunday?", 1)


def test_typing_in_a_group_reaches_online_members_only_from_a_member(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    eve_id, _ = node.add_user("eve")
    with connect(node, alice_id) as alice:
        group = alice.create_group("Crag", [bob_id, carol_id])
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        # When alice types in the group (carol is offline)
        alice.typing(group.id)

        # Then bob sees it, with the group, live
        typing = next(e for e in bob.events(timeout=5) if isinstance(e, Typing))
        assert (typing.sender, typing.state, typing.group) == (alice_id, "composing", group.id)
        # and a second one right away is dropped, but the paused that follows goes through
        alice.typing(group.id)
        alice.typing(group.id, composing=False)
        after = [e for e in bob.events(timeout=1) if isinstance(e, Typing)]
        assert [(e.state, e.group) for e in after] == [("paused", group.id)]

        # And eve, not a member, is refused
        eve_plain = plain(node, eve_id)
        try:
            command(eve_plain, "typing", "t1", to=group.id, state="composing")
            assert eve_plain.expect_type("error", ref="t1")["code"] == "not_member"
        finally:
            eve_plain.close()
        assert not [e for e in bob.events(timeout=0.5) if isinstance(e, Typing)]
    # And carol, offline then, gets nothing of it at sync
    with connect(node, carol_id) as carol:
        assert not [e for e in carol.events(timeout=0.5) if isinstance(e, Typing)]


def test_sdk_chat_pages_and_a_group_left(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        group = alice.create_group("Crag", [bob_id])
        alice.send(group.id, "while bob is in").wait("sent", timeout=10)
        next_message(bob)
        bob.leave_group(group.id)
        alice.send(group.id, "after bob left").wait("sent", timeout=10)
        alice.send(bob_id, "psst").wait("sent", timeout=10)

        page = bob.chats(limit=1)
        assert [c.peer for c in page] == [alice_id] and page.next is not None
        rest = bob.chats(before=page.next)
        (left,) = rest.chats
        assert (left.kind, left.group, left.name, left.member) == ("group", group.id, "Crag", False)
        assert left.last_message is not None and left.last_message.text == "while bob is in"
        assert rest.next is None
        with pytest.raises(CommandRejected) as refused:
            bob.chats(before="not-a-cursor")
        assert refused.value.code == "bad_request"


def test_the_asyncio_client_lists_chats_shares_read_state_and_types_in_a_group(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    conversation = f"dm:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"

    async def scenario() -> None:
        async with (
            aio_connect(node, alice_id) as alice,
            aio_connect(node, bob_id, device="phone") as phone,
            aio_connect(node, bob_id, device="laptop") as laptop,
        ):
            group = await alice.create_group("Crag", [bob_id])
            await (await alice.send(bob_id, "hello")).wait("sent", timeout=10)
            page = await laptop.chats(limit=10)
            assert [(c.kind, c.unread) for c in page] == [("direct", 1), ("group", 0)]
            assert page.next is None and page.chats[0].peer == alice_id

            # read on the phone without receipts: the laptop gets a ReadState
            await phone.mark_conversation_read(conversation, 1)
            read = None
            async for event in laptop.events(timeout=10):
                if isinstance(event, ReadState):
                    read = event
                    break
            assert read is not None and (read.conversation, read.read_seq) == (conversation, 1)
            assert (await laptop.chats()).chats[0].unread == 0

            # typing in the group reaches bob's devices
            await alice.typing(group.id)
            typing = None
            async for event in phone.events(timeout=5):
                if isinstance(event, Typing):
                    typing = event
                    break
            assert typing is not None and (typing.sender, typing.group) == (alice_id, group.id)

    aio_run(scenario)


def test_a_device_reset_after_pruning_rebuilds_a_chat_it_never_saw_from_the_chat_list(tmp_path: Path) -> None:
    node = RunningNode(node_settings(tmp_path, **RETENTION)).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        store = store_of(node)
        # Given bob got a 1-on-1 message long ago, and its inbox entry was pruned since
        seed(store, alice_id, bob_id, "hello, long ago")
        assert wait_until(lambda: store.inbox_floor(bob_id) == 1, 20)

        # When a new device of bob's connects (it knows no conversation), it is reset
        with Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob:
            reset = next(e for e in bob.events(timeout=30) if isinstance(e, SyncReset))

        # Then its rebuild found the 1-on-1 chat in the chat list and loaded its history
        conversation = f"dm:{min(alice_id, bob_id)}:{max(alice_id, bob_id)}"
        assert reset.conversations == ()
        assert [m.text for m in reset.history[conversation].messages] == ["hello, long ago"]
    finally:
        node.close()
