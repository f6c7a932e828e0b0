"""Edits, deletes for everyone and deletes for me by users, against a real node, with plain MQTT
and with the SDK: every hearer gets its event live or by sync, a device that syncs later never
reads the old text, a resend changes nothing more, and each refusal changes nothing for anyone."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import (
    Client,
    CommandRejected,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageHidden,
    Status,
    aio,
)
from client_sdk.contract import load_schema
from tests import harness
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration.test_delete_for_everyone import synced_from_start
from tests.integration.test_media import http, stored
from tests.media_files import png
from tests.plain import PlainClient

OLD = "meet at the old mill at nine"
NEW = "meet at the bridge at ten"
SCHEMA = Draft202012Validator(load_schema())


@pytest.fixture
def strict_node(tmp_path: Path) -> Iterator[RunningNode]:
    """A node whose windows are closed: every edit and every sender's delete is too late."""
    settings = node_settings(tmp_path, **{"messages.edit_window": 0.0, "messages.delete_window": 0.0})
    running = RunningNode(settings).start()
    try:
        yield running
    finally:
        running.close()


def plain(node: RunningNode, user: str, device: str = "plain") -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    client.inbox()
    return client


def command(kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "type": kind, "id": uuid.uuid4().hex, **fields}


def edit(message_id: str, text: str) -> dict[str, Any]:
    return command("edit", message=message_id, text=text)


def delete(message_id: str, scope: str) -> dict[str, Any]:
    return command("delete", message=message_id, **{"for": scope})


def valid(event: dict[str, Any]) -> dict[str, Any]:
    SCHEMA.validate(event)
    return event


def refused(client: PlainClient, cmd: dict[str, Any], code: str) -> str:
    client.publish(cmd)
    error = client.expect_type("error", ref=cmd["id"])
    assert error["code"] == code, error
    return str(error["message"])


def carriers(entries: list[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    return [
        e["message"] for e in entries if e["type"] in ("sent", "message") and e["message"]["id"] == message_id
    ]


def test_an_edit_reaches_both_sides_and_every_device_and_sync_has_only_the_new_text(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, phone, bob = plain(node, alice_id), plain(node, alice_id, "phone"), plain(node, bob_id)
    try:
        cid = alice.send(bob_id, OLD)
        message = alice.expect_type("sent", ref=cid)["message"]
        bob.expect_type("message")

        # When alice edits it
        change = edit(message["id"], NEW)
        alice.publish(change)

        # Then her devices get the edited event with her command id, bob's with ref null
        for client, ref in ((alice, change["id"]), (phone, change["id"]), (bob, None)):
            event = valid(client.expect_type("edited", message_id=message["id"]))
            assert event["ref"] == ref and event["by"] == alice_id and event["text"] == NEW
            assert isinstance(event["cursor"], int) and event["seq"] == message["seq"]
            assert event["message"] == {**message, "text": NEW, "edited_at": event["edited_at"]}

        # When she sends the same edit again: nothing changes, she is told ok
        alice.publish(change)
        alice.expect_type("ok", ref=change["id"])
        assert all(p.get("type") != "edited" for _, p in bob.drain())
    finally:
        for client in (alice, phone, bob):
            client.close()

    # Then a device that syncs from the start reads the new text where the message was, once edited
    for user in (alice_id, bob_id):
        entries = synced_from_start(node, user)
        assert OLD not in json.dumps(entries)
        for entry in entries:
            valid(entry)
        (carried,) = carriers(entries, message["id"])
        assert carried["text"] == NEW and carried["edited_at"] > message["ts"]
        assert [e["type"] for e in entries].count("edited") == 1


def test_bad_edits_and_deletes_are_refused_and_change_nothing(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    eve_id, _ = node.add_user("eve")
    alice, bob, eve = plain(node, alice_id), plain(node, bob_id), plain(node, eve_id)
    try:
        cid = alice.send(bob_id, OLD)
        message_id = alice.expect_type("sent", ref=cid)["message"]["id"]
        bob.expect_type("message")
        before = synced_from_start(node, bob_id)

        refused(bob, edit(message_id, NEW), "forbidden")  # not the sender
        refused(bob, delete(message_id, "everyone"), "forbidden")
        refused(eve, edit(message_id, NEW), "not_found")  # cannot see it
        refused(eve, delete(message_id, "everyone"), "not_found")
        refused(eve, delete(message_id, "me"), "not_found")
        refused(alice, edit("0" * 32, NEW), "not_found")
        alice.publish({**edit(message_id, NEW), "text": ""})  # the schema's text limits
        assert alice.expect_type("error")["code"] == "bad_request"

        assert synced_from_start(node, bob_id) == before  # nothing changed for anyone
        left = [p.get("type") for client in (alice, bob) for _, p in client.drain()]
        assert set(left) <= {"error", "sync_page"}, left  # no event about the message

        # When alice deletes it for everyone: both sides get deleted, hers with her command id
        gone = delete(message_id, "everyone")
        alice.publish(gone)
        mine = valid(alice.expect_type("deleted", message_id=message_id))
        theirs = valid(bob.expect_type("deleted", message_id=message_id))
        assert mine["ref"] == gone["id"] and theirs["ref"] is None and theirs["by"] == alice_id
        assert theirs["message"]["deleted"] is True and "text" not in theirs["message"]

        # Then an edit of the tombstone is not_found and says why; deleting again is ok
        assert "deleted" in refused(alice, edit(message_id, NEW), "not_found")
        again = delete(message_id, "everyone")
        alice.publish(again)
        alice.expect_type("ok", ref=again["id"])
        # and the others carry on
        cid = bob.send(alice_id, "still here")
        alice.expect_type("message")
        bob.expect_type("sent", ref=cid)
    finally:
        for client in (alice, bob, eve):
            client.close()
    assert OLD not in json.dumps(synced_from_start(node, bob_id))


def test_past_the_windows_the_sender_is_too_late_and_a_group_admin_still_deletes(
    strict_node: RunningNode,
) -> None:
    node = strict_node
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice, bob = plain(node, alice_id), plain(node, bob_id)
    try:
        alice.publish(command("group_create", name="mill", members=[bob_id]))
        group = alice.expect_type("group")["group"]["id"]
        cid = bob.send(group, OLD)
        message_id = bob.expect_type("sent", ref=cid)["message"]["id"]
        alice.expect_type("message")

        refused(bob, edit(message_id, NEW), "too_late")
        refused(bob, delete(message_id, "everyone"), "too_late")

        # the group admin may delete it at any time
        alice.publish(delete(message_id, "everyone"))
        assert valid(bob.expect_type("deleted", message_id=message_id))["by"] == alice_id
    finally:
        alice.close()
        bob.close()


def ident(out: Any) -> str:
    """The message id of a message the server stored (an OutgoingMessage once ``sent``)."""
    message_id = out.message_id
    assert isinstance(message_id, str), "not stored yet"
    return message_id


def next_event(client: Client, kind: type[Any], message_id: str) -> Any:
    for event in client.events(timeout=10):
        if isinstance(event, kind) and event.message_id == message_id:
            return event
    raise AssertionError(f"no {kind.__name__} of {message_id}")


def first_message(client: Client) -> Message:
    for message in client.messages(timeout=10):
        return message
    raise AssertionError("no message arrived")


def test_a_group_edit_and_delete_reach_an_offline_member_who_never_sees_the_old_text_after_a_restart(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")  # offline until the end
    with harness.connect(node, alice_id) as alice, harness.connect(node, bob_id) as bob:
        group = alice.create_group("mill", [bob_id, carol_id])
        edited = alice.send(group.id, OLD)
        edited.wait("sent", timeout=10)
        deleted = alice.send(group.id, "a second secret")
        deleted.wait("sent", timeout=10)
        assert first_message(bob).text == OLD

        # When alice edits the first and deletes the second
        alice.edit(ident(edited), NEW)
        alice.delete(ident(deleted))

        # Then bob's SDK sees the edit and the deletion; his own edit of hers is forbidden
        event = next_event(bob, MessageEdited, ident(edited))
        assert event.text == NEW and event.by == alice_id and event.ref is None
        assert event.message.edited_at == event.edited_at and event.message.text == NEW
        assert next_event(bob, MessageDeleted, ident(deleted)).by == alice_id
        with pytest.raises(CommandRejected) as refusal:
            bob.edit(ident(edited), "mine now")
        assert refusal.value.code == "forbidden"

    # When the node restarts before carol comes back
    node.stop()
    node.start()

    # Then carol, syncing later, gets the new text and the tombstone, never the old texts
    with harness.connect(node, carol_id) as carol:
        assert wait_until(lambda: carol.cursor >= 5, timeout=10)
        seen = list(carol.events(timeout=1))
    copies = {e.id: e for e in seen if isinstance(e, Message)}
    assert copies[ident(edited)].text == NEW and copies[ident(edited)].edited_at is not None
    assert copies[ident(deleted)].deleted and copies[ident(deleted)].text == ""
    assert any(isinstance(e, MessageEdited) for e in seen)
    synced = json.dumps(synced_from_start(node, carol_id))
    assert OLD not in synced and "a second secret" not in synced


def test_delete_for_me_hides_it_on_my_devices_only_and_later_edits_do_not_bring_it_back(
    node: RunningNode,
) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with (
        harness.connect(node, alice_id) as alice,
        harness.connect(node, bob_id) as bob,
        harness.connect(node, bob_id, device="tablet") as tablet,
    ):
        out = alice.send(bob_id, OLD)
        out.wait(Status.DELIVERED, timeout=10)

        bob.delete(ident(out), everyone=False)

        for device in (bob, tablet):
            hidden = next_event(device, MessageHidden, ident(out))
        assert hidden.message_id == ident(out)
        bob.delete(ident(out), everyone=False)  # again: nothing to do, no error
        alice.edit(ident(out), NEW)
        assert next_event(alice, MessageEdited, ident(out)).text == NEW
        assert not any(isinstance(e, MessageEdited) for e in tablet.events(timeout=0.5))

    # Then bob's inbox holds the message only as a hidden stub, alice's the new text
    bob_entries = synced_from_start(node, bob_id)
    (stub,) = carriers(bob_entries, ident(out))
    assert stub["hidden"] is True and "text" not in stub
    assert OLD not in json.dumps(bob_entries) and NEW not in json.dumps(bob_entries)
    assert [e["type"] for e in bob_entries].count("hidden") == 1
    assert carriers(synced_from_start(node, alice_id), ident(out))[0]["text"] == NEW
    with harness.connect(node, bob_id, device="laptop") as laptop:
        assert wait_until(lambda: laptop.cursor >= len(bob_entries), timeout=10)
        copies = [e for e in laptop.events(timeout=0.5) if isinstance(e, Message)]
    assert [m.hidden for m in copies if m.id == ident(out)] == [True]


@pytest.mark.parametrize("in_child", [True, False], ids=["commands-process", "inline"])
def test_a_user_deleting_an_image_removes_its_files_from_storage(tmp_path: Path, in_child: bool) -> None:
    node = RunningNode(node_settings(tmp_path, **{"workers.commands_process": in_child})).start()
    try:
        alice_id, _ = node.add_user("alice")
        bob_id, _ = node.add_user("bob")
        with (
            harness.connect(node, alice_id, media_url=node.media_url) as alice,
            harness.connect(node, bob_id, media_url=node.media_url) as bob,
        ):
            out = alice.send_media(bob_id, io.BytesIO(png(64, 48)), caption=OLD)
            out.wait("sent", timeout=15)
            media = first_message(bob).media
            assert media is not None and media.thumbnail is not None
            keys = {media.key, media.thumbnail.key}
            assert keys <= set(stored(node))

            alice.edit(ident(out), NEW)  # a caption may be edited
            assert next_event(bob, MessageEdited, ident(out)).message.media == media
            alice.delete(ident(out))

            assert next_event(bob, MessageDeleted, ident(out)).message.media is None
            assert http(node, "GET", f"/media/{media.key}", user=bob_id)[0] == 404
            # the cleanup job removes the files once the deletion is stored
            assert wait_until(lambda: not keys & set(stored(node)), timeout=15)
    finally:
        node.close()


def test_the_asyncio_sdk_edits_and_deletes(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            aio.Client("127.0.0.1", node.port, user=alice_id, token=node.tokens[alice_id]) as alice,
            aio.Client("127.0.0.1", node.port, user=bob_id, token=node.tokens[bob_id]) as bob,
        ):
            await alice.wait_synced(timeout=10)
            await bob.wait_synced(timeout=10)
            out = await alice.send(bob_id, OLD)
            await out.wait("sent", timeout=10)
            await alice.edit(ident(out), NEW)
            await bob.delete(ident(out), everyone=False)
            with pytest.raises(CommandRejected):
                await bob.delete(ident(out))  # not hers to delete for everyone
            kinds = []
            async for event in bob.events(timeout=10):
                kinds.append(type(event))
                if isinstance(event, aio.MessageHidden):
                    break
            assert kinds.index(aio.MessageEdited) < kinds.index(aio.MessageHidden)

    asyncio.run(scenario())
