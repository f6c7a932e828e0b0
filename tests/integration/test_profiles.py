"""Profiles through the real node: the SDK and plain MQTT, contacts and strangers, an offline
contact, a restart, group snapshots, and bad input."""

from __future__ import annotations

import io
from contextlib import AbstractContextManager

import pytest
from PIL import Image

from client_sdk import Client, CommandRejected, ProfileChanged
from tests import harness
from tests.harness import RunningNode, wait_until
from tests.integration.test_aio_sdk import connect as aio_connect
from tests.integration.test_aio_sdk import run
from tests.integration.test_media import http, stored
from tests.media_files import jpeg, png, png_bomb
from tests.plain import PlainClient


def connect(node: RunningNode, user: str) -> AbstractContextManager[Client]:
    return harness.connect(node, user, media_url=node.media_url)


def test_alice_sets_a_name_and_avatar_bob_sees_it_live_carol_cannot(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob, connect(node, carol_id) as carol:
        alice.send(bob_id, "hi").wait("sent", timeout=10)  # bob becomes a contact

        # When alice sets her name and an avatar (a wide PNG)
        mine = alice.set_profile(name="  Alice Liddell ", about="down the rabbit hole")
        assert (mine.name, mine.about) == ("Alice Liddell", "down the rabbit hole")
        mine = alice.set_avatar(io.BytesIO(png(800, 400)))

        # Then the avatar is a square JPEG without metadata
        assert mine.avatar is not None and (mine.avatar.type, mine.avatar.width, mine.avatar.height) == (
            "image/jpeg",
            400,
            400,
        )
        # And bob gets both changes live, and may download the avatar
        changes = [e for e in bob.events(timeout=3) if isinstance(e, ProfileChanged)]
        assert changes[-1].profile == mine and changes[-1].ref is None
        assert bob.profile(alice_id) == mine
        image = Image.open(io.BytesIO(bob.download(mine.avatar)))
        assert image.format == "JPEG" and image.size == (400, 400) and not image.getexif()

        # And carol, a stranger, gets neither the profile nor the avatar
        assert carol.profile(alice_id) is None
        with pytest.raises(CommandRejected) as refused:
            carol.download(mine.avatar)
        assert refused.value.code == "not_found"

        # When alice clears her avatar, its file is gone
        key = mine.avatar.key
        cleared = alice.clear_avatar()
        assert cleared.avatar is None and cleared.name == "Alice Liddell"
        assert wait_until(lambda: not any(path.endswith(key.split("/")[-1]) for path in stored(node)), 5)
        assert wait_until(lambda: bob.profile(alice_id) == cleared, 5)


def test_an_offline_contact_gets_the_change_at_sync_and_a_restart_keeps_it(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, bob_id) as bob:
        group = bob.create_group("crag", [alice_id])
    # Given bob is offline, When alice (a group mate) sets her name
    with connect(node, alice_id) as alice:
        alice.set_profile(name="Alice")
    # Then bob gets it when he comes back
    with connect(node, bob_id) as bob:
        assert wait_until(lambda: (p := bob.profile(alice_id)) is not None and p.name == "Alice", 5)
        # And the group snapshot carries it
        (listed,) = [g for g in bob.groups() if g.id == group.id]
        assert (p := listed.profile(alice_id)) is not None and p.name == "Alice"
    # And after a restart it is still there
    node.stop()
    node.start()
    with connect(node, bob_id) as bob:
        assert (p := bob.profile(alice_id)) is not None and p.name == "Alice"


def test_plain_mqtt_set_and_get(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice, bob = PlainClient(node.port, alice_id, alice_token), PlainClient(node.port, bob_id, bob_token)
    try:
        alice.inbox()
        bob.inbox()
        alice.send(bob_id, "hi")
        alice.publish({"v": 1, "type": "profile_set", "id": "p-1", "name": "Alice"})
        own = alice.expect_type("profile", ref="p-1")
        assert own["profile"]["name"] == "Alice" and own["cursor"] >= 1
        seen = bob.expect_type("profile")
        assert seen["ref"] is None and seen["profile"]["user"] == alice_id

        bob.publish({"v": 1, "type": "profile_get", "id": "g-1", "users": [alice_id, "nobody-here"]})
        answer = bob.expect_type("profiles", ref="g-1")
        assert [p["user"] for p in answer["profiles"]] == [alice_id]

        # Bad input: a clear error, nothing changes
        for cid, body in [
            ("b-1", {"name": "x" * 65}),
            ("b-2", {"name": "tab\there"}),
            ("b-3", {"about": "y" * 141}),
            ("b-4", {}),
        ]:
            alice.publish({"v": 1, "type": "profile_set", "id": cid, **body})
            error = alice.expect_type("error", ref=cid)
            assert error["code"] == "bad_request", error
        alice.publish({"v": 1, "type": "profile_set", "id": "b-5", "name": 5})
        assert alice.expect_type("error", ref="b-5")["code"] == "bad_request"
        bob.publish({"v": 1, "type": "profile_get", "id": "g-2", "users": [alice_id]})
        assert bob.expect_type("profiles", ref="g-2")["profiles"][0]["name"] == "Alice"
    finally:
        alice.close()
        bob.close()


def test_an_avatar_that_is_not_a_sound_image_is_refused(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    with connect(node, alice_id) as alice:
        before = stored(node)
        status, _, _ = http(node, "POST", "/media/avatar?id=a-1", user=alice_id, body=b"just some text")
        assert status == 415
        with pytest.raises(CommandRejected) as bomb:
            alice.set_avatar(io.BytesIO(png_bomb()))
        assert bomb.value.code == "bad_media"
        with pytest.raises(CommandRejected) as cut:
            alice.set_avatar(io.BytesIO(jpeg(200, 200)[:300]))
        assert cut.value.code == "bad_media"
        assert http(node, "POST", "/media/avatar?to=x", user=alice_id, body=jpeg())[0] == 400
        assert http(node, "POST", "/media/avatar?id=a-2", body=jpeg())[0] == 401
        assert wait_until(lambda: stored(node) == before, 5)
        own = alice.profile(alice_id)
        assert own is None or own.avatar is None


def test_the_asyncio_client_sets_and_reads_profiles(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")

    async def scenario() -> None:
        async with (
            aio_connect(node, alice_id, media_url=node.media_url) as alice,
            aio_connect(node, bob_id, media_url=node.media_url) as bob,
        ):
            await (await alice.send(bob_id, "hi")).wait("sent", timeout=10)
            mine = await alice.set_profile(name="Alice", about="hi")
            mine = await alice.set_avatar(io.BytesIO(png(300, 500)))
            assert mine.avatar is not None and mine.avatar.width == mine.avatar.height == 300
            seen = await bob.profile(alice_id)
            assert seen is not None and seen.name == "Alice"
            cleared = await alice.clear_avatar()
            assert cleared.avatar is None

    run(scenario)
