"""History per conversation against a real node, with plain MQTT and with the SDK: pages both
ways by seq, messages as they are now (edited, deleted, hidden, reacted), the receipt state of
one's own messages, a group member sees what came while they were one, a new device reads history
without any sync, and a conversation one is not in is ``forbidden`` whether or not it exists."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import CommandRejected, HistoryPage, Message, ReceiptState, Status, aio
from client_sdk.contract import dm_conversation_id, load_schema
from tests import harness
from tests.harness import RunningNode
from tests.integration.test_delete_for_everyone import synced_from_start
from tests.integration.test_edit_delete import plain
from tests.plain import PlainClient

SCHEMA = Draft202012Validator(load_schema())


def command(kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "type": kind, "id": uuid.uuid4().hex, **fields}


def history(client: PlainClient, conversation: str, **fields: Any) -> dict[str, Any]:
    """The ``history`` answer (checked against the published schema)."""
    cmd = command("history", conversation=conversation, **fields)
    client.publish(cmd)
    answer = client.expect(lambda t, p: isinstance(p, dict) and p.get("ref") == cmd["id"])
    assert answer["type"] == "history", answer
    SCHEMA.validate(answer)
    return dict(answer)


def refused(client: PlainClient, conversation: Any, code: str, **fields: Any) -> str:
    cmd = command("history", conversation=conversation, **fields)
    client.publish(cmd)
    error = client.expect_type("error", ref=cmd["id"])
    assert error["code"] == code, error
    return str(error["message"])


def seqs(answer: dict[str, Any]) -> list[int]:
    return [m["seq"] for m in answer["messages"]]


def carried(node: RunningNode, user: str) -> dict[str, dict[str, Any]]:
    """Each message as the user's inbox carries it (what sync gives), by id."""
    return {
        e["message"]["id"]: e["message"]
        for e in synced_from_start(node, user)
        if e["type"] in ("sent", "message")
    }


def store_message(node: RunningNode, sender: str, to: str, text: str) -> Any:
    store = node.node.store
    assert store is not None
    return store.accept_message(
        sender=sender, command_id=uuid.uuid4().hex, recipient=to, text=text, now=time.time()
    )


def test_plain_history_pages_both_ways_with_messages_as_they_are_now(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    conversation = dm_conversation_id(alice_id, bob_id)
    try:
        sent = []
        for i in range(1, 7):
            sender, to = (alice, bob_id) if i % 2 else (bob, alice_id)
            cid = sender.send(to, f"message {i}")
            sent.append(sender.expect_type("sent", ref=cid)["message"])
        # edited, deleted for everyone, hidden by bob, reacted, read by bob
        alice.publish(command("edit", message=sent[0]["id"], text="message 1, edited"))
        alice.expect_type("edited", message_id=sent[0]["id"])
        alice.publish(command("delete", message=sent[2]["id"], **{"for": "everyone"}))
        alice.expect_type("deleted", message_id=sent[2]["id"])
        bob.publish(command("delete", message=sent[4]["id"], **{"for": "me"}))
        bob.expect_type("hidden", message_id=sent[4]["id"])
        bob.publish(command("react", message=sent[0]["id"], emoji="👍"))
        bob.expect_type("reaction", message_id=sent[0]["id"])
        bob.publish(command("receipt", status="read", messages=[sent[0]["id"]]))
        alice.expect_type("receipt", message_id=sent[0]["id"], status="read")

        # paging back from the end, two at a time
        latest = history(alice, conversation, limit=2)
        assert seqs(latest) == [5, 6] and latest["more"] and latest["conversation"] == conversation
        middle = history(alice, conversation, before=5, limit=2)
        assert seqs(middle) == [3, 4] and middle["more"]
        first = history(alice, conversation, before=3, limit=2)
        assert seqs(first) == [1, 2] and not first["more"]
        # and forwards from the start
        forwards = history(bob, conversation, after=0, limit=4)
        assert seqs(forwards) == [1, 2, 3, 4] and forwards["more"]
        rest = history(bob, conversation, after=4, limit=4)
        assert seqs(rest) == [5, 6] and not rest["more"]

        # each message exactly as that user's own inbox carries it now
        everything = history(alice, conversation)["messages"]
        mine = carried(node, alice_id)
        assert everything == [mine[m["id"]] for m in everything]
        theirs = history(bob, conversation)["messages"]
        assert theirs == [carried(node, bob_id)[m["id"]] for m in theirs]
        one, three, five = everything[0], everything[2], theirs[4]
        assert one["text"] == "message 1, edited" and one["edited_at"] and one["reactions"] == {bob_id: "👍"}
        assert three["deleted"] is True and "text" not in three
        assert five["hidden"] is True and everything[4]["text"] == "message 5"  # hidden for bob only
        # receipt state for the sender's own messages only
        receipts = history(alice, conversation)["receipts"]
        assert receipts[sent[0]["id"]] == {"status": "read", "recipients": 1, "delivered": 1, "read": 1}
        assert set(receipts) == {m["id"] for m in everything if m["from"] == alice_id}
    finally:
        alice.close()
        bob.close()


def test_a_group_member_reads_from_while_they_were_one_and_strangers_learn_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    dave_id, _ = node.add_user("dave")
    eve_id, _ = node.add_user("eve")
    alice, carol, dave, eve = (plain(node, u) for u in (alice_id, carol_id, dave_id, eve_id))
    try:
        alice.publish(command("group_create", name="climbing", members=[bob_id, carol_id]))
        group = alice.expect_type("group")["group"]["id"]
        before = alice.send(group, "before anyone left")
        alice.expect_type("sent", ref=before)
        carol.publish(command("group_leave", group=group))
        carol.expect_type("group", action="left")
        during = alice.send(group, "carol is gone")
        alice.expect_type("sent", ref=during)
        alice.publish(command("group_add", group=group, members=[dave_id]))
        alice.expect_type("group", action="added")
        after = alice.send(group, "dave is here")
        alice.expect_type("sent", ref=after)

        assert [m["text"] for m in history(alice, group)["messages"]] == [
            "before anyone left",
            "carol is gone",
            "dave is here",
        ]
        assert [m["text"] for m in history(carol, group)["messages"]] == ["before anyone left"]
        assert [m["text"] for m in history(dave, group)["messages"]] == ["dave is here"]
        assert history(dave, group, before=3)["messages"] == []  # a member: nothing from before
        page = history(alice, group)
        recipients = [page["receipts"][m["id"]]["recipients"] for m in page["messages"]]
        assert recipients == [2, 1, 2]  # bob and carol; bob alone; bob and dave

        # a stranger: forbidden, the same words for a group that exists and one that does not
        known = refused(eve, group, "forbidden")
        nowhere = "g:" + uuid.uuid4().hex[:12]
        assert refused(eve, nowhere, "forbidden") == known.replace(group, nowhere)
        refused(eve, group, "forbidden", before=2)
        refused(eve, dm_conversation_id(alice_id, bob_id), "forbidden")
        # bad input: a malformed id or seq, a 1-on-1 id out of order
        for bad in ("alice", "dm:" + alice_id, f"dm:{alice_id}:{bob_id}:x", "g:", 5, None):
            refused(alice, bad, "bad_request")
        low, high = sorted((alice_id, bob_id))
        assert "order" in refused(alice, f"dm:{high}:{low}", "bad_request")
        for fields in ({"before": -1}, {"after": "3"}, {"limit": 2.5}, {"before": True}):
            refused(alice, group, "bad_request", **fields)
        # limits are clamped, not refused
        assert len(history(alice, group, limit=0)["messages"]) == 1
        assert len(history(alice, group, limit=100_000)["messages"]) == 3
        # and everyone carries on
        cid = dave.send(group, "still working")
        dave.expect_type("sent", ref=cid)
    finally:
        for client in (alice, carol, dave, eve):
            client.close()


def test_a_new_device_reads_the_last_messages_without_any_sync(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    for i in range(60):
        store_message(node, alice_id if i % 2 else bob_id, bob_id if i % 2 else alice_id, f"m{i}")
    laptop = plain(node, bob_id, device="new-laptop")  # subscribes, never syncs
    try:
        page = history(laptop, dm_conversation_id(alice_id, bob_id))
        assert seqs(page) == list(range(11, 61)) and page["more"]
        assert [m["text"] for m in page["messages"]][-1] == "m59"
        assert all(p.get("type") != "sync_page" for _, p in laptop.drain())
    finally:
        laptop.close()


def test_the_sdk_pages_history_with_typed_messages_and_receipts(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        for i in range(5):
            alice.send(bob_id, f"hello {i}").wait("delivered", timeout=10)
        conversation = dm_conversation_id(alice_id, bob_id)

        page = alice.history(conversation, limit=3)

        assert isinstance(page, HistoryPage) and page.more and page.conversation == conversation
        assert [m.text for m in page.messages] == ["hello 2", "hello 3", "hello 4"]
        assert all(isinstance(m, Message) and m.cursor == 0 for m in page.messages)
        assert page.receipts[page.messages[0].id] == ReceiptState(Status.DELIVERED, 1, 1, 0)
        older = alice.history(conversation, before=page.first_seq, limit=3)
        assert [m.text for m in older.messages] == ["hello 0", "hello 1"] and not older.more
        newer = bob.history(conversation, after=older.last_seq)
        assert [m.seq for m in newer.messages] == [3, 4, 5] and newer.receipts == {}
        with pytest.raises(CommandRejected) as rejected:
            bob.history("g:" + uuid.uuid4().hex[:10])
        assert rejected.value.code == "forbidden"
        with pytest.raises(ValueError, match="conversation"):
            bob.history("not a conversation")


def test_the_asyncio_sdk_pages_history_too(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    for i in range(4):
        store_message(node, alice_id, bob_id, f"m{i}")

    async def scenario() -> tuple[HistoryPage, HistoryPage]:
        async with aio.Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob:
            await bob.wait_synced(timeout=10)
            conversation = dm_conversation_id(alice_id, bob_id)
            last = await bob.history(conversation, limit=2)
            return last, await bob.history(conversation, before=last.first_seq)

    last, first = asyncio.run(scenario())
    assert [m.text for m in first.messages + last.messages] == ["m0", "m1", "m2", "m3"]
    assert last.more and not first.more
