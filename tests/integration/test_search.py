"""Search through the real node: plain MQTT and both SDKs; a member who left a group, a stranger,
edits and deletes, paging, and hostile strings and bad input (nobody's state changes, the
connection keeps working)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import CommandRejected, SearchResults, aio
from client_sdk.contract import load_schema
from tests import harness
from tests.harness import RunningNode
from tests.plain import PlainClient

SCHEMA = Draft202012Validator(load_schema())


def plain(node: RunningNode, user: str, device: str = "plain") -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    client.inbox()
    return client


def ask(client: PlainClient, **fields: Any) -> dict[str, Any]:
    """A search command and its answer (``search_results`` or ``error``), checked against the schema."""
    cid = uuid.uuid4().hex
    client.publish({"v": 1, "type": "search", "id": cid, **fields})
    answer = client.expect(lambda _t, p: isinstance(p, dict) and p.get("ref") == cid)
    SCHEMA.validate(answer)
    return dict(answer)


def texts(answer: dict[str, Any]) -> list[str]:
    assert answer["type"] == "search_results", answer
    return [hit["text"] for hit in answer["hits"]]


def test_plain_mqtt_search_finds_my_messages_newest_first_a_page_at_a_time(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    alice, bob, carol = plain(node, alice_id), plain(node, bob_id), plain(node, carol_id)
    try:
        for i in range(5):
            alice.expect_type("sent", ref=alice.send(bob_id, f"Invoice {i} is attached"))
        alice.expect_type("sent", ref=alice.send(carol_id, "invoices for carol"))

        # When bob searches a page of 2 at a time
        first = ask(bob, query="INVOICE", limit=2)
        # Then he gets his newest hits first, and a cursor for the rest
        assert texts(first) == ["Invoice 4 is attached", "Invoice 3 is attached"]
        assert first["more"] is True and isinstance(first["next"], str)
        second = ask(bob, query="invoice", limit=2, before=first["next"])
        assert texts(second) == ["Invoice 2 is attached", "Invoice 1 is attached"]
        last = ask(bob, query="invoice", limit=2, before=second["next"])
        assert texts(last) == ["Invoice 0 is attached"] and last["more"] is False and last["next"] is None

        # And alice finds hers in every conversation, or in one
        assert len(texts(ask(alice, query="invoic"))) == 6
        conversation = first["hits"][0]["conversation"]
        assert len(texts(ask(alice, query="invoice", conversation=conversation))) == 5
        # And carol finds only hers; a conversation she is not in is forbidden
        assert texts(ask(carol, query="invoice")) == ["invoices for carol"]
        refused = ask(carol, query="invoice", conversation=conversation)
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        assert conversation not in refused["message"]  # it says nothing of what it is
    finally:
        for client in (alice, bob, carol):
            client.close()


def test_bad_search_input_is_refused_and_hostile_strings_are_just_words(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    try:
        alice.expect_type("sent", ref=alice.send(bob_id, "the key is under the mat"))
        for bad, code in (
            ({"query": "key", "before": "not a cursor"}, "bad_request"),
            ({"query": "key", "before": "1' OR '1'='1"}, "bad_request"),
            ({"query": ""}, "bad_request"),
            ({"query": "k" * 201}, "bad_request"),
            ({"query": "key", "limit": "20"}, "bad_request"),
            ({"query": {"$gt": ""}}, "bad_request"),
        ):
            answer = ask(bob, **bad)
            assert answer["type"] == "error" and answer["code"] == code, (bad, answer)
        for hostile in (
            '"key" OR *',
            "key')) --",
            "$where",
            '{"$gt": ""}',
            "NEAR(key mat)",
            "key\\",
            "\x00key",
        ):
            found = texts(ask(bob, query=hostile))
            assert found in ([], ["the key is under the mat"]), (hostile, found)
        assert texts(ask(bob, query="(KEY) AND mat*")) == []  # "and" is a word too: not in the text
        assert texts(ask(bob, query="(KEY) -mat*")) == ["the key is under the mat"]
        # a limit out of range is clamped, not refused
        assert texts(ask(bob, query="key", limit=10_000)) == ["the key is under the mat"]
        assert texts(ask(bob, query="key", limit=-5)) == ["the key is under the mat"]
        # And the connection and everything else keep working
        alice.expect_type("sent", ref=alice.send(bob_id, "still here"))
        bob.expect_type("message")
    finally:
        alice.close()
        bob.close()


def test_a_member_who_left_finds_old_group_messages_not_new_ones_and_a_stranger_nothing(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    mallory_id, _ = node.add_user("mallory")
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        group = alice.create_group("hikers", [bob_id])
        alice.send(group.id, "summit at dawn").wait("sent", timeout=10)
        bob.leave_group(group.id)
        alice.send(group.id, "summit moved to noon").wait("sent", timeout=10)

        # Then bob finds what was sent while he was in it, in all his messages or in the group
        assert [m.text for m in bob.search("summit").hits] == ["summit at dawn"]
        page = bob.search("summit", conversation=group.id)
        assert isinstance(page, SearchResults) and [m.text for m in page.hits] == ["summit at dawn"]
        assert page.hits[0].group == group.id and page.hits[0].sender == alice_id
        assert [m.text for m in alice.search("summit").hits] == ["summit moved to noon", "summit at dawn"]
    with harness.connect(node, mallory_id) as mallory:
        assert mallory.search("summit").hits == ()
        with pytest.raises(CommandRejected) as refused:
            mallory.search("summit", conversation=group.id)
        assert refused.value.code == "forbidden"


def test_edits_and_deletes_are_reflected_for_both_sides(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        edited = alice.send(bob_id, "lunch at the pier")
        edited.wait("sent", timeout=10)
        gone = alice.send(bob_id, "lunch is cancelled")
        gone.wait("sent", timeout=10)
        mine = alice.send(bob_id, "lunch tomorrow then")
        mine.wait("sent", timeout=10)
        assert len(bob.search("lunch").hits) == 3

        alice.edit(_id(edited), "dinner at the pier")
        alice.delete(_id(gone))
        bob.delete(_id(mine), everyone=False)

        for client in (alice, bob):
            assert [m.text for m in client.search("pier").hits] == ["dinner at the pier"]
            assert client.search("cancelled").hits == ()
        hit = bob.search("dinner").hits[0]
        assert hit.edited_at is not None and hit.id == _id(edited)
        assert [m.text for m in bob.search("lunch").hits] == []  # hidden for him
        assert [m.text for m in alice.search("lunch").hits] == ["lunch tomorrow then"]


def _id(out: Any) -> str:
    """The message id of a message the server stored (an OutgoingMessage once ``sent``)."""
    message_id = out.message_id
    assert isinstance(message_id, str), "not stored yet"
    return message_id


def test_the_asyncio_sdk_searches(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            aio.Client("127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id]) as alice,
            aio.Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob,
        ):
            await alice.wait_synced(timeout=10)
            await bob.wait_synced(timeout=10)
            for i in range(3):
                out = await alice.send(bob_id, f"🎉 party number {i} 中文消息")
                await out.wait("sent", timeout=10)
            page = await bob.search("PARTY", limit=2)
            assert [m.text for m in page.hits] == ["🎉 party number 2 中文消息", "🎉 party number 1 中文消息"]
            assert page.more and page.next is not None
            rest = await bob.search("party", limit=2, before=page.next)
            assert [m.text for m in rest.hits] == ["🎉 party number 0 中文消息"] and not rest.more
            assert len((await bob.search("中文")).hits) == 3
            with pytest.raises(CommandRejected):
                await bob.search("party", conversation="dm:someone:else")

    asyncio.run(scenario())
