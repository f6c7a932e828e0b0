"""Retention against a real node: the node's periodic prune drops old inbox entries (and keeps
going across a restart, its floor stored), a ``sync`` from before what is kept is answered
``sync_reset`` (plain MQTT) instead of a page that silently skips, and the SDK recovers from it:
it rebuilds from history, resumes at the cursor the server gave and goes on receiving."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from client_sdk import Client, Message, SyncReset, aio
from client_sdk.contract import dm_conversation_id, load_schema
from tests import harness
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration.test_media import http, stored
from tests.media_files import png
from tests.plain import PlainClient
from workers.retention import Pruner
from workers.stores import Store, open_store

SCHEMA = Draft202012Validator(load_schema())
LONG_AGO = 3600.0
"""Seeded messages are this many seconds old."""
RETENTION = {"retention.inbox_days": 60 / 86_400, "retention.interval": 0.2}
"""Inbox entries older than a minute are pruned, checked five times a second."""


def store_of(node: RunningNode) -> Store:
    store = node.node.store
    assert store is not None
    return store


def seed(store: Store, sender: str, to: str, text: str, *, age: float = LONG_AGO) -> Any:
    return store.accept_message(
        sender=sender, command_id=uuid.uuid4().hex, recipient=to, text=text, now=time.time() - age
    ).message


def sync(client: PlainClient, after: int) -> dict[str, Any]:
    cid = uuid.uuid4().hex
    client.publish({"v": 1, "type": "sync", "id": cid, "after": after, "limit": 200})
    answer = client.expect(lambda t, p: isinstance(p, dict) and p.get("ref") == cid)
    SCHEMA.validate(answer)
    return dict(answer)


def test_the_node_prunes_old_entries_and_a_sync_from_before_them_is_reset_even_after_a_restart(
    tmp_path: Path,
) -> None:
    node = RunningNode(node_settings(tmp_path, **RETENTION)).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        old = [seed(store_of(node), alice_id, bob_id, f"old {i}") for i in range(3)]

        # Then the node's prune drops bob's three old entries and records where it stopped
        assert wait_until(lambda: store_of(node).inbox_floor(bob_id) == 3, 20)
        bob = PlainClient(node.port, bob_id, node.tokens[bob_id], device="phone")
        bob.inbox()
        try:
            # When bob's device syncs from before that: a clear reset, not an empty page
            reset = sync(bob, 0)
            assert reset == {
                "v": 1,
                "type": "sync_reset",
                "ref": reset["ref"],
                "after": 0,
                "cursor": 3,
                "reason": "pruned",
            }
            assert sync(bob, 2)["type"] == "sync_reset"
            # from the cursor it gave, sync goes on; the messages themselves are kept
            resumed = sync(bob, 3)
            assert resumed["type"] == "sync_page" and resumed["entries"] == [] and not resumed["more"]
            cid = uuid.uuid4().hex
            bob.publish({"v": 1, "type": "history", "id": cid, "conversation": old[0].conversation})
            page = bob.expect_type("history", ref=cid)
            assert [m["text"] for m in page["messages"]] == ["old 0", "old 1", "old 2"]
        finally:
            bob.close()

        # When the node restarts, and alice writes again
        node.stop()
        node.start()
        alice = PlainClient(node.port, alice_id, node.tokens[alice_id])
        alice.inbox()
        try:
            alice.send(bob_id, "new")
            alice.expect_type("sent")
        finally:
            alice.close()
        laptop = PlainClient(node.port, bob_id, node.tokens[bob_id], device="laptop")
        laptop.inbox()
        try:
            # Then the floor is still known, and what came after it is all there
            assert sync(laptop, 1)["cursor"] == 3
            page = sync(laptop, 3)
            assert [(e["cursor"], e["message"]["text"]) for e in page["entries"]] == [(4, "new")]
        finally:
            laptop.close()
    finally:
        node.close()


def test_the_sdk_rebuilds_from_history_after_a_reset_and_resumes_across_a_restart(tmp_path: Path) -> None:
    # a node without retention on a fixed port, so the client can reconnect after the restart
    first = RunningNode(node_settings(tmp_path)).start()
    port = first.port
    alice_id, _ = first.add_user("alice")
    bob_id, _ = first.add_user("bob")
    tokens = dict(first.tokens)
    first.close()
    node = RunningNode(node_settings(tmp_path, **{"broker.mqtt_port": port})).start()
    node.tokens = tokens
    chat = dm_conversation_id(alice_id, bob_id)
    try:
        store = store_of(node)
        seed(store, alice_id, bob_id, "hello from long ago")
        group = store.create_group(
            creator=alice_id,
            name="old friends",
            members=[bob_id],
            now=time.time() - LONG_AGO,
            ref="g1",
            max_members=8,
        ).group.id
        seed(store, alice_id, group, "group, long ago")
        with Client(
            "127.0.0.1", port, user=bob_id, token=tokens[bob_id], state_file=tmp_path / "bob.json"
        ) as bob:
            bob.wait_synced(timeout=10)
            seen = bob.cursor
            assert seen == 3  # the message, the group's creation, the group message
            drained = list(bob.events(timeout=0.5))
            assert {e.text for e in drained if isinstance(e, Message)} == {
                "hello from long ago",
                "group, long ago",
            }

            # When the node goes down, more old messages are stored for bob, and retention prunes
            # his inbox while the node is down (what the node's own sweep does at start)
            node.stop()
            assert wait_until(lambda: not bob.connected, 10)
            offline = open_store(node.settings.store_url)
            try:
                seed(offline, alice_id, bob_id, "missed 1")
                seed(offline, alice_id, group, "missed 2")
                settings = node.settings.with_overrides(**RETENTION).retention
                pruner = Pruner(offline, settings, holder=node.settings.node_id)  # the lease is its
                assert pruner.sweep().inbox_entries >= 5
                assert offline.inbox_floor(bob_id) == 5
            finally:
                offline.close()
            node.start()

            # Then bob's client gets the reset, rebuilt from the history of both conversations
            reset = next(e for e in bob.events(timeout=30) if isinstance(e, SyncReset))
            assert (reset.after, reset.cursor) == (seen, 5)
            assert set(reset.conversations) == {chat, group}
            assert [m.text for m in reset.history[chat].messages] == ["hello from long ago", "missed 1"]
            assert [m.text for m in reset.history[group].messages] == ["group, long ago", "missed 2"]
            # and it resumes at that cursor, receiving what comes next
            bob.wait_synced(timeout=10)
            assert bob.cursor == 5
            alice = PlainClient(port, alice_id, tokens[alice_id])
            alice.inbox()
            try:
                alice.send(bob_id, "welcome back")
                alice.expect_type("sent")
            finally:
                alice.close()
            message = next(e for e in bob.events(timeout=10) if isinstance(e, Message))
            assert message.text == "welcome back" and message.cursor == 6
        assert (tmp_path / "bob.json").read_text() == '{"cursor": 6}'
    finally:
        node.close()


def test_old_messages_go_with_their_media_files_and_their_chat_keeps_numbering(tmp_path: Path) -> None:
    # messages (and so inbox entries) are kept for five seconds here
    keep = {"retention.messages_days": 5 / 86_400, "retention.interval": 0.2}
    node = RunningNode(node_settings(tmp_path, **keep)).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        with (
            harness.connect(node, alice_id, media_url=node.media_url) as alice,
            harness.connect(node, bob_id, media_url=node.media_url) as bob,
        ):
            photo = alice.send_media(bob_id, io.BytesIO(png(64, 48)), caption="the view")
            photo.wait("sent", timeout=15)
            media = next(e for e in bob.events(timeout=10) if isinstance(e, Message)).media
            assert media is not None and media.thumbnail is not None
            keys = {media.key, media.thumbnail.key}
            assert keys <= set(stored(node))
            message_id = photo.message_id
            assert message_id is not None

            # Then once it is older than that, the message goes, and its files with it
            assert wait_until(lambda: store_of(node).message_views([message_id], viewer=bob_id) == {}, 30)
            assert wait_until(lambda: not keys & set(stored(node)), 15)
            assert http(node, "GET", f"/media/{media.key}", user=bob_id)[0] == 404
            chat = dm_conversation_id(alice_id, bob_id)
            assert bob.history(chat).messages == ()
            # and the conversation goes on after it: the next message is seq 2
            alice.send(bob_id, "still here").wait("sent", timeout=10)
            assert [m.seq for m in bob.history(chat).messages] == [2]
    finally:
        node.close()


def test_the_asyncio_sdk_rebuilds_a_fresh_device_from_the_groups_history(tmp_path: Path) -> None:
    node = RunningNode(node_settings(tmp_path, **RETENTION)).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        store = store_of(node)
        group = store.create_group(
            creator=alice_id,
            name="old friends",
            members=[bob_id],
            now=time.time() - LONG_AGO,
            ref="g1",
            max_members=8,
        ).group.id
        seed(store, alice_id, group, "group, long ago")
        assert wait_until(lambda: store.inbox_floor(bob_id) == 2, 20)

        async def first_reset() -> SyncReset:
            async with aio.Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob:
                async for event in bob.events(timeout=20):
                    if isinstance(event, SyncReset):
                        await bob.wait_synced(timeout=10)
                        assert bob.cursor == 2
                        return event
            raise AssertionError("no sync reset")

        # Then a new device (it knows no conversation yet) is rebuilt from the groups the server lists
        reset = asyncio.run(first_reset())
        assert (reset.after, reset.cursor, reset.conversations) == (0, 2, ())
        assert [m.text for m in reset.history[group].messages] == ["group, long ago"]
    finally:
        node.close()
