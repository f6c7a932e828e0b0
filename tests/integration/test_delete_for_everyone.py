"""Deleting a message for everyone against a real node (moderation: ``Node.delete_message``, the
function the admin API calls, and ``mqchat messages delete``): connected devices get ``deleted``
live, an offline member learns it by sync and never sees the text, media files are gone, and a
restart changes nothing."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from broker import cli
from client_sdk import Client, Message, MessageDeleted, Status, aio
from client_sdk.contract import load_schema
from tests import harness
from tests.harness import RunningNode, wait_until
from tests.integration.test_media import http, stored
from tests.media_files import png
from tests.plain import PlainClient
from workers.errors import CommandError

SECRET = "meet me at the old mill at midnight"


def deletion_of(client: Client, message_id: str, timeout: float = 10) -> MessageDeleted:
    for event in client.events(timeout=timeout):
        if isinstance(event, MessageDeleted) and event.message_id == message_id:
            return event
    raise AssertionError(f"no deletion of {message_id} arrived")


def next_message(client: Client, timeout: float = 10) -> Message:
    for message in client.messages(timeout=timeout):
        return message
    raise AssertionError("no message arrived")


def synced_from_start(node: RunningNode, user: str) -> list[dict[str, Any]]:
    """Everything a plain MQTT client of ``user`` gets when it syncs its whole inbox."""
    plain = PlainClient(node.port, user, node.tokens[user], device="fresh")
    try:
        plain.inbox()
        plain.publish({"v": 1, "type": "sync", "id": "s1", "after": 0, "limit": 200})
        page = plain.expect_type("sync_page", ref="s1")
        assert not page["more"]
        entries: list[dict[str, Any]] = page["entries"]
        return entries
    finally:
        plain.close()


def test_a_deleted_message_reaches_every_connected_device_as_a_tombstone(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        plain = PlainClient(node.port, bob_id, node.tokens[bob_id], device="shell")
        plain.inbox()
        try:
            out = alice.send(bob_id, SECRET)
            out.wait(Status.DELIVERED, timeout=10)
            assert next_message(bob).text == SECRET
            plain.expect_type("message")

            # When the moderation deletes it
            deletion = node.call(node.node.delete_message(out.message_id))
            assert deletion.changed

            # Then the sender's and the recipient's SDKs get MessageDeleted with the tombstone
            for client in (alice, bob):
                event = deletion_of(client, out.message_id)
                assert event.by == "admin" and event.message.deleted and event.message.text == ""
                assert event.message.sender == alice_id and event.seq == event.message.seq
            # and a plain MQTT client gets the deleted event with its cursor
            raw = plain.expect_type("deleted", message_id=out.message_id)
            assert isinstance(raw["cursor"], int) and raw["message"]["deleted"] is True
            assert "text" not in raw["message"] and raw["by"] == "admin"
            Draft202012Validator(load_schema()).validate(raw)  # as published
        finally:
            plain.close()

    # Then a device that syncs afterwards finds the tombstone where the message was, never the text
    schema = Draft202012Validator(load_schema())
    for user in (alice_id, bob_id):
        entries = synced_from_start(node, user)
        assert SECRET not in json.dumps(entries)
        for entry in entries:
            schema.validate(entry)
        kinds = [e["type"] for e in entries if e.get("message", {}).get("id") == out.message_id]
        assert kinds[-1] == "deleted" and kinds[0] in {"sent", "message"}

    # And deleting it again changes nothing; an unknown id is not_found
    assert not node.call(node.node.delete_message(out.message_id)).changed
    with pytest.raises(CommandError) as refused:
        node.call(node.node.delete_message("0" * 32))
    assert refused.value.code == "not_found"


def test_an_offline_group_member_syncs_only_the_tombstone_even_after_a_restart(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")  # offline throughout
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        group = alice.create_group("mill", [bob_id, carol_id])
        out = alice.send(group.id, SECRET)
        out.wait("sent", timeout=10)
        assert next_message(bob).text == SECRET

        node.call(node.node.delete_message(out.message_id))

        assert deletion_of(bob, out.message_id).message.deleted
        assert deletion_of(alice, out.message_id).message.group == group.id

    # When the node restarts before carol comes back
    node.stop()
    node.start()

    # Then carol's SDK gets the message only as a tombstone, then its deletion
    with harness.connect(node, carol_id) as carol:
        seen: list[Any] = []
        for event in carol.events(timeout=5):
            seen.append(event)
            if isinstance(event, MessageDeleted):
                break
    copies = [e for e in seen if isinstance(e, Message) and e.id == out.message_id]
    assert copies and all(m.deleted and m.text == "" for m in copies)
    assert isinstance(seen[-1], MessageDeleted) and seen[-1].message_id == out.message_id
    assert SECRET not in json.dumps(synced_from_start(node, carol_id))


def test_a_deleted_image_is_gone_from_media_storage(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with (
        harness.connect(node, alice_id, media_url=node.media_url) as alice,
        harness.connect(node, bob_id, media_url=node.media_url) as bob,
    ):
        out = alice.send_media(bob_id, io.BytesIO(png(64, 48)), caption=SECRET)
        out.wait("sent", timeout=15)
        message = next_message(bob, timeout=15)
        media = message.media
        assert media is not None and media.thumbnail is not None
        keys = [media.key, media.thumbnail.key]
        assert http(node, "GET", f"/media/{media.key}", user=bob_id)[0] == 302

        deletion = node.call(node.node.delete_message(out.message_id))

        assert sorted(deletion.media_keys) == sorted(keys)
        assert deletion_of(bob, out.message_id).message.media is None
        for key in keys:
            for user in (alice_id, bob_id):
                assert http(node, "GET", f"/media/{key}", user=user)[0] == 404
        assert not set(keys) & set(stored(node))


def test_an_operator_deletes_with_the_cli_and_devices_learn_it_at_their_next_sync(
    node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with harness.connect(node, alice_id) as alice:
        out = alice.send(bob_id, SECRET)
        out.wait("sent", timeout=10)

    # When the operator deletes it from the command line (a single node: nothing live)
    data_dir = str(node.settings.data_dir)
    assert cli.main(["--data-dir", data_dir, "messages", "delete", out.message_id]) == 0
    assert "deleted for everyone" in capsys.readouterr().out
    assert cli.main(["--data-dir", data_dir, "messages", "delete", "0" * 32]) == 1

    # Then bob, connecting later, gets the tombstone and the deletion, never the text
    with harness.connect(node, bob_id) as bob:
        assert wait_until(lambda: bob.cursor >= 2, timeout=5)
        seen = list(bob.events(timeout=1))
    assert any(isinstance(e, MessageDeleted) and e.message_id == out.message_id for e in seen)
    assert all(not isinstance(e, Message) or (e.deleted and e.text == "") for e in seen)


def test_the_asyncio_sdk_yields_message_deleted(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            aio.Client("127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id]) as alice,
            aio.Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob,
        ):
            await alice.wait_synced(timeout=10)
            await bob.wait_synced(timeout=10)
            out = await alice.send(bob_id, SECRET)
            await out.wait("sent", timeout=10)
            await asyncio.to_thread(node.call, node.node.delete_message(out.message_id))
            async for event in bob.events(timeout=10):
                if isinstance(event, aio.MessageDeleted):
                    assert event.message_id == out.message_id and event.message.deleted
                    return
            raise AssertionError("no MessageDeleted arrived")

    asyncio.run(scenario())
