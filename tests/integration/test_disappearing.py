"""Disappearing messages against a real node, with plain MQTT and with both SDK clients: a timer
announced to every participant, ``expires_at`` on what is sent under it, and messages (and their
media) that vanish from every device, live and by sync, once they expire, across a restart too.

The node allows a test-only 2-second timer (``messages.disappearing_timers``) and sweeps every
0.2 s, so an expiry comes within a few seconds; the tests wait for its events, never for a time.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client_sdk import CommandRejected, Message, MessagesExpired, TimerChanged, aio
from tests import harness
from tests.harness import RunningNode, node_settings, wait_until
from tests.integration.test_delete_for_everyone import synced_from_start
from tests.integration.test_edit_delete import command, plain, refused, valid
from tests.integration.test_media import stored
from tests.media_files import png
from tests.plain import PlainClient

SHORT = 2
"""The test-only timer (seconds) the node allows besides the default ones."""
DAY = 86_400
SECRET = "the safe code is 4-8-15-16"
EXPIRY_WAIT = 20.0
"""How long a test waits for an expiry's event (the sweep runs every 0.2 s)."""


def disappearing_settings(tmp_path: Path) -> Any:
    return node_settings(
        tmp_path,
        **{
            "messages.disappearing_timers": [SHORT, DAY, 7 * DAY, 90 * DAY],
            "messages.expiry_sweep": 0.2,
        },
    )


@pytest.fixture
def dnode(tmp_path: Path) -> Iterator[RunningNode]:
    running = RunningNode(disappearing_settings(tmp_path)).start()
    try:
        yield running
    finally:
        running.close()


def set_timer(client: PlainClient, to: str, seconds: int) -> dict[str, Any]:
    cmd = command("timer_set", to=to, seconds=seconds)
    client.publish(cmd)
    return valid(client.expect_type("timer", ref=cmd["id"]))


def timer_of(client: PlainClient, to: str) -> int:
    cmd = command("timer_get", to=to)
    client.publish(cmd)
    return int(valid(client.expect_type("timer_info", ref=cmd["id"]))["seconds"])


def expired_ids(client: PlainClient, message_id: str) -> dict[str, Any]:
    """The ``expired`` event that lists ``message_id``."""
    event = client.expect(
        lambda _t, p: p.get("type") == "expired" and message_id in [m["id"] for m in p["messages"]],
        timeout=EXPIRY_WAIT,
    )
    return valid(event)


def carried(entries: list[dict[str, Any]], message_id: str) -> list[dict[str, Any]]:
    return [
        e["message"] for e in entries if e["type"] in ("sent", "message") and e["message"]["id"] == message_id
    ]


def test_a_1_on_1_timer_is_announced_and_its_messages_vanish_everywhere(dnode: RunningNode) -> None:
    alice_id, _ = dnode.add_user("alice")
    bob_id, _ = dnode.add_user("bob")
    alice, phone, bob = plain(dnode, alice_id), plain(dnode, alice_id, "phone"), plain(dnode, bob_id)
    try:
        before = alice.send(bob_id, "this one stays")
        kept = alice.expect_type("sent", ref=before)["message"]
        assert "expires_at" not in kept

        # When bob (either side may) sets the timer
        change = set_timer(bob, alice_id, SHORT)
        # Then both sides, every device, get the announcement with a cursor
        for client, ref in ((alice, None), (phone, None)):
            event = valid(client.expect_type("timer", by=bob_id))
            assert event["ref"] == ref and event["seconds"] == SHORT and isinstance(event["cursor"], int)
            assert event["conversation"] == change["conversation"] == kept["conversation"]
        assert timer_of(alice, bob_id) == SHORT

        # When alice sends under it: the message carries expires_at = its time + the timer
        cid = alice.send(bob_id, SECRET)
        sent = alice.expect_type("sent", ref=cid)["message"]
        assert sent["expires_at"] == pytest.approx(sent["ts"] + SHORT)
        copy = bob.expect(lambda _t, p: p.get("type") == "message" and p["message"]["id"] == sent["id"])
        assert copy["message"]["expires_at"] == sent["expires_at"]

        # Then once it expires every device is told, with the stub that replaces it
        for client in (alice, phone, bob):
            event = expired_ids(client, sent["id"])
            (stub,) = [m for m in event["messages"] if m["id"] == sent["id"]]
            assert stub == {k: sent[k] for k in ("id", "conversation", "seq", "from", "to", "ts")} | {
                "expired": True
            }
    finally:
        for client in (alice, phone, bob):
            client.close()

    # Then a device that syncs from the start reads the stub where it was, never the text
    for user in (alice_id, bob_id):
        entries = synced_from_start(dnode, user)
        assert SECRET not in json.dumps(entries)
        assert carried(entries, sent["id"]) == [stub]
        assert carried(entries, kept["id"])[0]["text"] == "this one stays"
        kinds = [e["type"] for e in entries]
        assert "timer" in kinds and kinds[-1] == "expired"


def test_only_allowed_timers_and_a_resend_changes_nothing(dnode: RunningNode) -> None:
    alice_id, _ = dnode.add_user("alice")
    bob_id, _ = dnode.add_user("bob")
    alice, bob = plain(dnode, alice_id), plain(dnode, bob_id)
    try:
        # a value the server does not allow, and one past the schema: refused, nothing changes
        refused(alice, command("timer_set", to=bob_id, seconds=3600), "bad_request")
        refused(alice, command("timer_set", to=bob_id, seconds=-1), "bad_request")
        refused(alice, command("timer_set", to="nobody-" + uuid.uuid4().hex[:6], seconds=DAY), "unknown_user")
        assert timer_of(bob, alice_id) == 0
        assert all(p.get("type") != "timer" for _, p in bob.drain())

        # the same command again changes nothing more: ok, and no second announcement
        cmd = command("timer_set", to=bob_id, seconds=DAY)
        alice.publish(cmd)
        alice.expect_type("timer", ref=cmd["id"])
        bob.expect_type("timer", by=alice_id)
        alice.publish(cmd)
        alice.expect_type("ok", ref=cmd["id"])
        assert all(p.get("type") != "timer" for _, p in bob.drain())

        # turning it off: what is sent next does not expire; others keep working
        set_timer(bob, alice_id, 0)
        cid = alice.send(bob_id, "plain again")
        assert "expires_at" not in alice.expect_type("sent", ref=cid)["message"]
    finally:
        alice.close()
        bob.close()


def test_a_group_timer_is_for_admins_and_an_offline_member_never_reads_what_expired(
    dnode: RunningNode,
) -> None:
    alice_id, _ = dnode.add_user("alice")
    bob_id, _ = dnode.add_user("bob")
    carol_id, _ = dnode.add_user("carol")  # offline all along
    alice, bob = plain(dnode, alice_id), plain(dnode, bob_id)
    try:
        create = command("group_create", name="Vault", members=[bob_id, carol_id])
        alice.publish(create)
        group = alice.expect_type("group", ref=create["id"])["group"]["id"]
        bob.expect_type("group")

        # a member who is not an admin may not set it; an outsider is not a member
        refused(bob, command("timer_set", to=group, seconds=SHORT), "not_admin")
        dave_id, _ = dnode.add_user("dave")
        dave = plain(dnode, dave_id)
        try:
            refused(dave, command("timer_set", to=group, seconds=SHORT), "not_member")
            refused(dave, command("timer_get", to=group), "not_member")
        finally:
            dave.close()
        assert timer_of(bob, group) == 0

        # the admin sets it: every member hears of it
        set_timer(alice, group, SHORT)
        assert valid(bob.expect_type("timer", by=alice_id))["conversation"] == group

        # a text and a photo under it, sent by a member
        cid = bob.send(group, SECRET)
        sent = bob.expect_type("sent", ref=cid)["message"]
        assert sent["expires_at"] == pytest.approx(sent["ts"] + SHORT)
        with harness.connect(dnode, bob_id, media_url=dnode.media_url, device="sdk") as sdk:
            photo = sdk.send_media(group, io.BytesIO(png(64, 48)), caption=SECRET)
            photo_id = photo.wait("sent", timeout=15).message_id
        assert photo_id is not None
        media_message = alice.expect(
            lambda _t, p: p.get("type") == "message" and p["message"]["id"] == photo_id
        )["message"]
        assert media_message["expires_at"] == pytest.approx(media_message["ts"] + SHORT)
        keys = [media_message["media"]["key"], media_message["media"]["thumbnail"]["key"]]
        assert set(keys) <= set(stored(dnode))

        for client in (alice, bob):  # one sweep may expire both: then one event lists both
            waiting = {sent["id"], photo_id}
            while waiting:
                waiting -= {m["id"] for m in expired_ids(client, next(iter(waiting)))["messages"]}
    finally:
        alice.close()
        bob.close()

    # Then the photo's objects are gone from media storage
    assert wait_until(lambda: not set(keys) & set(stored(dnode)), timeout=EXPIRY_WAIT)
    # and carol, who syncs only now, reads the announcement and the stubs, never the text
    entries = synced_from_start(dnode, carol_id)
    assert SECRET not in json.dumps(entries)
    assert [m.get("expired") for m in carried(entries, sent["id"]) + carried(entries, photo_id)] == [
        True,
        True,
    ]
    assert any(e["type"] == "timer" and e["seconds"] == SHORT for e in entries)


def test_a_message_expires_even_if_the_node_was_down_when_its_time_came(tmp_path: Path) -> None:
    running = RunningNode(disappearing_settings(tmp_path)).start()
    try:
        alice_id, _ = running.add_user("alice")
        bob_id, _ = running.add_user("bob")
        alice = plain(running, alice_id)
        try:
            set_timer(alice, bob_id, SHORT)
            cid = alice.send(bob_id, SECRET)
            sent = alice.expect_type("sent", ref=cid)["message"]
        finally:
            alice.close()
        # When the node stops before the message expires, and starts again after
        running.stop()
        time.sleep(max(0.0, sent["expires_at"] - time.time()) + 0.5)  # its time passes while down
        running.start()

        # Then the first sweeps expire it: bob, offline all along, syncs only the stub
        def gone() -> bool:
            return carried(synced_from_start(running, bob_id), sent["id"]) == [
                {k: sent[k] for k in ("id", "conversation", "seq", "from", "to", "ts")} | {"expired": True}
            ]

        assert wait_until(gone, timeout=EXPIRY_WAIT, interval=0.3)
        assert SECRET not in json.dumps(synced_from_start(running, bob_id))
    finally:
        running.close()


def test_the_sdk_sets_timers_and_sees_messages_expire(dnode: RunningNode) -> None:
    alice_id, _ = dnode.add_user("alice")
    bob_id, _ = dnode.add_user("bob")
    with harness.connect(dnode, alice_id) as alice, harness.connect(dnode, bob_id) as bob:
        alice.set_timer(bob_id, SHORT)
        assert bob.get_timer(alice_id) == SHORT
        with pytest.raises(CommandRejected) as bad:
            alice.set_timer(bob_id, 60)
        assert bad.value.code == "bad_request"

        out = alice.send(bob_id, SECRET)
        out.wait("sent", timeout=10)
        seen: list[Any] = []
        for event in bob.events(timeout=EXPIRY_WAIT):
            seen.append(event)
            if isinstance(event, MessagesExpired) and out.message_id in event.ids:
                break
        timers = [e for e in seen if isinstance(e, TimerChanged)]
        assert [(t.seconds, t.by, t.ref) for t in timers] == [(SHORT, alice_id, None)]
        (message,) = [e for e in seen if isinstance(e, Message) and e.id == out.message_id]
        assert message.text == SECRET and message.expires_at == pytest.approx(message.ts + SHORT)
        expiry = seen[-1]
        assert isinstance(expiry, MessagesExpired) and out.message_id in expiry.ids
        assert all(m.expired and m.text == "" for m in expiry.messages)
        alice.set_timer(bob_id, 0)
        assert alice.get_timer(bob_id) == 0


def test_the_asyncio_client_sets_and_reads_a_timer(dnode: RunningNode) -> None:
    alice_id, _ = dnode.add_user("alice")
    bob_id, _ = dnode.add_user("bob")

    async def scenario() -> tuple[int, list[str]]:
        async with aio.Client("127.0.0.1", dnode.port, user=alice_id, token=dnode.tokens[alice_id]) as alice:
            await alice.wait_synced(timeout=10)
            await alice.set_timer(bob_id, SHORT)
            seconds = await alice.get_timer(bob_id)
            out = await alice.send(bob_id, SECRET)
            await out.wait("sent", timeout=10)
            ids: list[str] = []
            async for event in alice.events(timeout=EXPIRY_WAIT):
                if isinstance(event, MessagesExpired):
                    ids.extend(event.ids)
                    if out.message_id in ids:
                        break
            return seconds, [str(out.message_id), *ids]

    seconds, (sent_id, *expired) = asyncio.run(scenario())
    assert seconds == SHORT and sent_id in expired
