"""Replies (quotes) and forwards against a real node, with plain MQTT and with the SDK (blocking and
asyncio): in 1-on-1 and groups with a member who syncs later, on two devices, with media (a
forwarded image is downloadable by its new recipients only, and outlives its original's deletion),
and every bad input refused with nothing stored."""

from __future__ import annotations

import asyncio
import io
import json
from contextlib import AbstractContextManager

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Client, CommandRejected, Message, Reply, Sent, aio
from client_sdk.contract import load_schema
from tests import harness
from tests.harness import RunningNode
from tests.integration.test_delete_for_everyone import deletion_of, next_message, synced_from_start
from tests.integration.test_media import http, stored
from tests.media_files import png
from tests.plain import PlainClient

SECRET = "the combination is 12-34-56, " + "and then some more words " * 6
SCHEMA = Draft202012Validator(load_schema())


def plain(node: RunningNode, user: str, device: str = "plain") -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    client.inbox()
    return client


def sent_of(client: Client, ref: str, timeout: float = 10) -> Sent:
    for event in client.events(timeout=timeout):
        if isinstance(event, Sent) and event.ref == ref:
            return event
    raise AssertionError(f"no sent for {ref} arrived")


# -- plain MQTT ----------------------------------------------------------------------------------------


def test_a_plain_client_replies_and_forwards_and_the_others_see_quote_and_mark(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    alice, bob, carol = plain(node, alice_id), plain(node, bob_id), plain(node, carol_id)
    try:
        alice.send(bob_id, SECRET, cid="a-1")
        original = bob.expect_type("message")["message"]

        # When bob replies to it, and forwards it to carol
        bob.publish(
            {
                "v": 1,
                "type": "send",
                "id": "b-1",
                "to": alice_id,
                "text": "got it",
                "reply_to": original["id"],
            }
        )
        bob.publish({"v": 1, "type": "forward", "id": "b-2", "message": original["id"], "to": carol_id})

        # Then alice gets the reply with the quote, carol the forward, and bob two sent answers
        quote = {"id": original["id"], "from": alice_id, "seq": original["seq"], "excerpt": SECRET[:100]}
        reply = alice.expect_type("message")
        assert reply["message"]["reply"] == quote and reply["message"]["text"] == "got it"
        forward = carol.expect_type("message")
        assert forward["message"]["forwarded"] is True and forward["message"]["text"] == SECRET
        assert forward["message"]["from"] == bob_id and "reply" not in forward["message"]
        sent_reply = bob.expect_type("sent", ref="b-1")
        sent_forward = bob.expect_type("sent", ref="b-2")
        assert sent_reply["message"]["reply"] == quote and sent_forward["message"]["forwarded"] is True
        for event in (reply, forward, sent_reply, sent_forward):
            SCHEMA.validate(event)

        # And a resent forward is answered again with the same message, stored once
        bob.publish({"v": 1, "type": "forward", "id": "b-2", "message": original["id"], "to": carol_id})
        again = bob.expect_type("sent", ref="b-2")
        assert again["message"]["id"] == sent_forward["message"]["id"]
        assert again["cursor"] == sent_forward["cursor"]
        bob.publish(
            {
                "v": 1,
                "type": "send",
                "id": "b-1",
                "to": alice_id,
                "text": "got it",
                "reply_to": original["id"],
            }
        )
        assert bob.expect_type("sent", ref="b-1")["cursor"] == sent_reply["cursor"]
        carol.send(bob_id, "thanks", cid="c-0")  # a marker: nothing came before it
        bob.expect_type("message")
        carol.expect_type("sent", ref="c-0")
        assert not [p for _t, p in carol.drain() if p.get("type") == "message"]
        assert not [p for _t, p in alice.drain() if p.get("type") == "message"]
    finally:
        for client in (alice, bob, carol):
            client.close()


def test_bad_replies_and_forwards_are_refused_and_change_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    alice, carol = plain(node, alice_id), plain(node, carol_id)
    try:
        alice.send(bob_id, SECRET, cid="a-1")
        to_bob = alice.expect_type("sent", ref="a-1")["message"]["id"]
        alice.send(carol_id, "hi carol", cid="a-2")
        alice.expect_type("sent", ref="a-2")
        carol.expect_type("message")
        bob_group = harness_group(node, bob_id, [alice_id])

        bad = [
            (carol, {"type": "send", "to": alice_id, "text": "?", "reply_to": to_bob}, "not_found"),
            (alice, {"type": "send", "to": carol_id, "text": "?", "reply_to": "0" * 32}, "not_found"),
            (alice, {"type": "send", "to": carol_id, "text": "?", "reply_to": to_bob}, "bad_request"),
            (carol, {"type": "forward", "message": to_bob, "to": alice_id}, "not_found"),
            (carol, {"type": "forward", "message": "0" * 32, "to": alice_id}, "not_found"),
            (carol, {"type": "forward", "message": to_bob, "to": bob_group}, "not_found"),
            (alice, {"type": "forward", "message": to_bob, "to": "g:nobody-here"}, "unknown_group"),
            (alice, {"type": "forward", "message": to_bob, "to": "nobody-at-all"}, "unknown_user"),
            (alice, {"type": "forward", "message": to_bob}, "bad_request"),  # no target
        ]
        for n, (client, command, code) in enumerate(bad):
            client.publish({"v": 1, "id": f"bad-{n}", **command})
            error = client.expect_type("error", ref=f"bad-{n}")
            assert error["code"] == code, (n, error)
            if code == "bad_request" and "reply_to" in command:
                assert error["message"] == "reply_to is in another conversation"
        # a forward to a group carol is not in, of a message she can read
        carol.publish({"v": 1, "type": "forward", "id": "bad-g", "message": "0" * 32, "to": bob_group})
        assert carol.expect_type("error", ref="bad-g")["code"] == "not_found"

        # Then nothing was stored for anyone, and the clients carry on
        for user in (alice_id, bob_id, carol_id):
            entries = synced_from_start(node, user)
            assert not [e for e in entries if str(e.get("ref", "")).startswith("bad-")]
            assert not [e for e in entries if e.get("message", {}).get("text") == "?"]
        alice.send(carol_id, "still here", cid="a-3")
        assert carol.expect_type("message")["message"]["text"] == "still here"
    finally:
        alice.close()
        carol.close()


def media_objects(node: RunningNode) -> list[str]:
    """The stored objects of messages (not the uploads, which their media job removes after it)."""
    return [key for key in stored(node) if key.startswith("m/")]


def harness_group(node: RunningNode, owner: str, members: list[str]) -> str:
    with harness.connect(node, owner) as client:
        return client.create_group("elsewhere", members).id


def test_forward_of_a_message_you_can_read_to_a_group_you_are_not_in_is_not_member(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    dave_id, _ = node.add_user("dave")
    group = harness_group(node, bob_id, [dave_id])
    alice = plain(node, alice_id)
    try:
        alice.send(bob_id, "mine", cid="a-1")
        mine = alice.expect_type("sent", ref="a-1")["message"]["id"]
        alice.publish({"v": 1, "type": "forward", "id": "f-1", "message": mine, "to": group})
        assert alice.expect_type("error", ref="f-1")["code"] == "not_member"
    finally:
        alice.close()


# -- the SDK -------------------------------------------------------------------------------------------


def test_sdk_replies_reach_both_devices_and_a_group_member_who_syncs_later(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")  # offline until the end
    with (
        harness.connect(node, alice_id) as alice,
        harness.connect(node, bob_id, device="phone") as phone,
        harness.connect(node, bob_id, device="laptop") as laptop,
    ):
        # 1-on-1: bob answers on his phone; alice sees the quote, his laptop the sent reply
        question = alice.send(bob_id, SECRET).wait("sent", timeout=10)
        got = next_message(phone)
        out = phone.reply(got, "on my way")
        answer = next_message(alice)
        assert answer.reply == Reply(
            id=question.message_id or "", sender=alice_id, seq=got.seq, excerpt=SECRET[:100]
        )
        assert answer.text == "on my way" and not answer.forwarded
        echoed = sent_of(laptop, out.id)
        assert echoed.message.reply == answer.reply

        # a group: carol is offline; bob replies to alice's group message, alice forwards it
        group = alice.create_group("mill", [bob_id, carol_id])
        first = alice.send(group.id, "who brings the rope?").wait("sent", timeout=10)
        in_group = next(m for m in phone.messages(timeout=10) if m.group == group.id)
        phone.reply(in_group, "me").wait("sent", timeout=10)
        reply = next(m for m in alice.messages(timeout=10) if m.group == group.id)
        assert reply.reply is not None and reply.reply.excerpt == "who brings the rope?"
        alice.forward(answer, group.id).wait("sent", timeout=10)

    # When the node restarts and carol comes online, she syncs both: the quote although she was
    # away when the quoted message came, and the forward
    node.stop()
    node.start()
    with harness.connect(node, carol_id) as carol:
        seen = list(carol.messages(timeout=3))
    quoted = next(m for m in seen if m.reply is not None)
    assert quoted.reply == Reply(
        id=first.message_id or "", sender=alice_id, seq=1, excerpt="who brings the rope?"
    )
    forwarded = next(m for m in seen if m.forwarded)
    assert forwarded.text == "on my way" and forwarded.sender == alice_id and forwarded.reply is None


def test_a_reply_to_a_message_of_another_conversation_is_rejected_in_the_sdk(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with harness.connect(node, alice_id) as alice:
        to_bob = alice.send(bob_id, "for bob").wait("sent", timeout=10)
        with pytest.raises(CommandRejected) as refused:
            alice.reply(to_bob.message_id or "", "x", to=carol_id).wait("sent", timeout=10)
        assert refused.value.code == "bad_request"
        with pytest.raises(CommandRejected) as refused:
            alice.forward("0" * 32, carol_id).wait("sent", timeout=10)
        assert refused.value.code == "not_found"
        assert alice.send(carol_id, "fine").wait("sent", timeout=10).seq == 1  # nothing else stored there


def test_the_asyncio_sdk_replies_and_forwards(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")

    async def scenario() -> None:
        def client(user: str) -> aio.Client:
            return aio.Client("127.0.0.1", node.port, user=user, token=node.tokens[user])

        async with client(alice_id) as alice, client(bob_id) as bob, client(carol_id) as carol:
            for each in (alice, bob, carol):
                await each.wait_synced(timeout=10)
            await (await alice.send(bob_id, "async hello")).wait("sent", timeout=10)
            got = await anext(aiter(bob.messages(timeout=10)))
            await (await bob.reply(got, "async reply")).wait("sent", timeout=10)
            await (await bob.forward(got, carol_id)).wait("sent", timeout=10)
            answer = await anext(aiter(alice.messages(timeout=10)))
            assert answer.reply is not None and answer.reply.excerpt == "async hello"
            forwarded = await anext(aiter(carol.messages(timeout=10)))
            assert forwarded.forwarded and forwarded.text == "async hello"

    asyncio.run(scenario())


# -- media ---------------------------------------------------------------------------------------------


def media_client(node: RunningNode, user: str) -> AbstractContextManager[Client]:
    return harness.connect(node, user, media_url=node.media_url)


def photo_for(sender: Client, receiver: Client, to: str) -> tuple[str, Message, list[str]]:
    """``sender`` sends ``to`` (``receiver``'s user) a photo captioned SECRET: its message id, the
    message ``receiver`` got, and the keys of its objects."""
    out = sender.send_media(to, io.BytesIO(png(64, 48)), caption=SECRET).wait("sent", timeout=15)
    photo = next_message(receiver, timeout=15)
    assert out.message_id is not None and photo.media is not None and photo.media.thumbnail is not None
    return out.message_id, photo, [photo.media.key, photo.media.thumbnail.key]


def test_a_photo_answers_a_photo_and_a_forwarded_photo_is_shared_only_with_its_new_recipients(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    mallory_id, _ = node.add_user("mallory")

    with (
        media_client(node, alice_id) as alice,
        media_client(node, bob_id) as bob,
        media_client(node, carol_id) as carol,
    ):
        # Given a photo alice sent bob, and bob's answer to it with a photo of his own
        _original, photo, keys = photo_for(alice, bob, bob_id)
        bob.send_media(alice_id, io.BytesIO(png(32, 32)), reply_to=photo).wait("sent", timeout=15)
        answer = next_message(alice, timeout=15)
        assert answer.reply is not None and answer.reply.media_type == "image/png"
        assert answer.reply.excerpt == SECRET[:100] and answer.media is not None
        objects = media_objects(node)

        # When bob forwards the photo to carol
        bob.forward(photo, carol_id).wait("sent", timeout=10)
        forwarded = next_message(carol)

        # Then carol gets the same objects (nothing stored again) and may download them; no stranger may
        assert forwarded.forwarded and forwarded.media == photo.media and forwarded.text == SECRET
        assert media_objects(node) == objects
        assert carol.download(forwarded) == bob.download(photo)
        for key in keys:
            assert http(node, "GET", f"/media/{key}", user=carol_id)[0] == 302
            assert http(node, "GET", f"/media/{key}", user=mallory_id)[0] == 404


def test_deleting_the_original_keeps_the_forward_and_scrubs_the_quote(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    mallory_id, _ = node.add_user("mallory")

    with (
        media_client(node, alice_id) as alice,
        media_client(node, bob_id) as bob,
        media_client(node, carol_id) as carol,
    ):
        original, photo, keys = photo_for(alice, bob, bob_id)
        bob.reply(photo, "nice").wait("sent", timeout=10)
        assert next_message(alice).reply is not None
        bob.forward(photo, carol_id).wait("sent", timeout=10)
        forwarded = next_message(carol)
        before = carol.download(forwarded)
        assert http(node, "GET", f"/media/{keys[0]}", user=mallory_id)[0] == 404

        # When the original is deleted for everyone
        deletion = node.call(node.node.delete_message(original))
        assert deletion.changed and deletion.media_keys == []
        deletion_of(bob, original)

        # Then the forward's media still downloads for carol, and the objects are still stored
        assert carol.download(forwarded) == before
        for key in keys:
            assert http(node, "GET", f"/media/{key}", user=carol_id)[0] == 302
            assert http(node, "GET", f"/media/{key}", user=alice_id)[0] == 404
        assert set(keys) <= set(stored(node))

        # And when the forward goes too, the objects go
        last = node.call(node.node.delete_message(forwarded.id))
        assert sorted(last.media_keys) == sorted(keys)
        assert not set(keys) & set(stored(node))

    # And a device that syncs afterwards never sees the caption: not in the quote, nowhere
    for user in (alice_id, bob_id, carol_id):
        entries = synced_from_start(node, user)
        assert SECRET[:40] not in json.dumps(entries)
        for entry in entries:
            SCHEMA.validate(entry)
    quotes = [
        e["message"]["reply"] for e in synced_from_start(node, alice_id) if "reply" in e.get("message", {})
    ]
    assert quotes == [{"id": original, "from": alice_id, "seq": photo.seq, "deleted": True}]


def test_an_upload_that_replies_to_what_it_cannot_see_is_refused(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with harness.connect(node, alice_id, media_url=node.media_url) as alice:
        before = stored(node)
        with pytest.raises(CommandRejected) as refused:
            alice.send_media(bob_id, io.BytesIO(png(16, 16)), reply_to="0" * 32).wait("sent", timeout=15)
        assert refused.value.code == "not_found"
        assert stored(node) == before
    assert not [e for e in synced_from_start(node, bob_id) if e["type"] == "message"]
