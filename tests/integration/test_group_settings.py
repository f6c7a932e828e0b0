"""Group settings against a real node: description, icon, "only admins can send" and approval,
over plain MQTT and HTTP; admins only (``not_admin`` for every setting); a refused send stores
nothing; hostile icon uploads are refused and leave nothing in storage."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.harness import RunningNode, wait_until
from tests.integration.test_media import http, stored
from tests.media_files import jpeg, png, png_bomb
from tests.plain import PlainClient


@pytest.fixture
def trio(node: RunningNode) -> Iterator[list[PlainClient]]:
    clients = []
    for name in ("alice", "bob", "carol"):
        client = PlainClient(node.port, *node.add_user(name))
        client.inbox()
        clients.append(client)
    yield clients
    for client in clients:
        client.close()


def command(client: PlainClient, kind: str, cid: str, **fields: Any) -> None:
    client.publish({"v": 1, "type": kind, "id": cid, **fields})


def create(admin: PlainClient, *members: PlainClient) -> str:
    command(admin, "group_create", "create", name="crag", members=[m.user for m in members])
    return str(admin.expect_type("group", ref="create")["group"]["id"])


def test_an_admin_sets_description_and_toggles_every_member_sees_them(trio: list[PlainClient]) -> None:
    alice, bob, carol = trio
    group = create(alice, bob, carol)

    command(
        alice, "group_set", "s1", group=group, description="  Sundays at the crag\nbring rope ", approval=True
    )

    mine = alice.expect_type("group", ref="s1")
    assert mine["action"] == "settings"
    for member in (bob, carol):
        seen = member.expect_type("group", action="settings")["group"]
        assert seen["description"] == "Sundays at the crag\nbring rope" and seen["approval"] is True
        assert "only_admins_send" not in seen and "icon" not in seen
    command(bob, "group_list", "l")
    (listed,) = bob.expect_type("groups", ref="l")["groups"]
    assert listed["description"] == "Sundays at the crag\nbring rope" and listed["approval"] is True
    # the same command again changes nothing: ok, no second event
    command(
        alice, "group_set", "s1", group=group, description="Sundays at the crag\nbring rope", approval=True
    )
    alice.expect_type("ok", ref="s1")
    # clearing: an empty description and approval off leave them out
    command(alice, "group_set", "s2", group=group, description="", approval=False)
    cleared = alice.expect_type("group", ref="s2")["group"]
    assert "description" not in cleared and "approval" not in cleared


def test_a_member_who_is_not_admin_changes_no_setting(trio: list[PlainClient]) -> None:
    alice, bob, _ = trio
    group = create(alice, bob)
    for cid, fields in [
        ("d", {"description": "mine now"}),
        ("o", {"only_admins_send": True}),
        ("a", {"approval": True}),
        ("i", {"remove_icon": True}),
    ]:
        command(bob, "group_set", cid, group=group, **fields)
        assert bob.expect_type("error", ref=cid)["code"] == "not_admin"
    command(bob, "group_list", "l")
    (listed,) = bob.expect_type("groups", ref="l")["groups"]
    assert set(listed) == {"id", "name", "members", "admins"}


def test_bad_settings_are_refused_and_change_nothing(trio: list[PlainClient]) -> None:
    alice, bob, _ = trio
    group = create(alice, bob)
    for cid, fields, code in [
        ("long", {"description": "x" * 513}, "bad_request"),
        ("ctrl", {"description": "tab\there"}, "bad_request"),
        ("none", {}, "bad_request"),
        ("type", {"approval": "yes"}, "bad_request"),
        ("grp", {"group": "g:missing", "approval": True}, "unknown_group"),
    ]:
        command(alice, "group_set", cid, **{"group": group, **fields})
        assert alice.expect_type("error", ref=cid)["code"] == code, cid
    command(alice, "group_list", "l")
    assert set(alice.expect_type("groups", ref="l")["groups"][0]) == {"id", "name", "members", "admins"}


def test_only_admins_can_send_refuses_a_member_and_stores_nothing(
    node: RunningNode, trio: list[PlainClient]
) -> None:
    alice, bob, carol = trio
    group = create(alice, bob, carol)
    before = bob.send(group, "before the rule")
    bob.expect_type("sent", ref=before)
    command(alice, "group_set", "s", group=group, only_admins_send=True)
    assert alice.expect_type("group", ref="s")["group"]["only_admins_send"] is True
    carol.close()  # carol is offline and syncs later

    refused = bob.send(group, "am I heard?")
    assert bob.expect_type("error", ref=refused)["code"] == "not_admin"
    before_upload = stored(node)
    status, _, body = http(node, "POST", f"/media?to={group}&id=photo", user=bob.user, body=jpeg())
    assert (status, json.loads(body)["code"]) == (403, "not_admin")
    assert stored(node) == before_upload
    news = alice.send(group, "announcement")
    alice.expect_type("sent", ref=news)

    carol = PlainClient(node.port, carol.user, node.tokens[carol.user])
    carol.inbox()
    command(carol, "sync", "sync", after=0)
    entries = carol.expect_type("sync_page", ref="sync")["entries"]
    texts = [e["message"]["text"] for e in entries if e["type"] == "message"]
    assert texts == ["before the rule", "announcement"]
    # promoted, bob may send
    command(alice, "group_promote", "p", group=group, members=[bob.user])
    alice.expect_type("group", ref="p")
    ok = bob.send(group, "now I am heard")
    bob.expect_type("sent", ref=ok)
    assert carol.expect_type("message")["message"]["text"] == "now I am heard"
    carol.close()


def test_an_admin_sets_an_icon_members_download_it_strangers_do_not(
    node: RunningNode, trio: list[PlainClient]
) -> None:
    alice, bob, carol = trio
    group = create(alice, bob)

    status, _, body = http(
        node, "POST", f"/media/group-icon?group={group}&id=icon-1", user=alice.user, body=png(600, 300)
    )

    assert status == 202, body
    icon = alice.expect_type("group", ref="icon-1")["group"]["icon"]
    assert (icon["type"], icon["width"], icon["height"]) == ("image/jpeg", 300, 300)
    assert bob.expect_type("group", action="settings")["group"]["icon"] == icon
    status, headers, _ = http(node, "GET", f"/media/{icon['key']}", user=bob.user)
    assert status == 302
    status, _, data = http(node, "GET", headers["Location"].removeprefix(node.media_url))
    assert status == 200 and Image.open(io.BytesIO(data)).format == "JPEG"
    assert http(node, "GET", f"/media/{icon['key']}", user=carol.user)[0] == 404
    # a new icon replaces the old one, which is deleted; removing it leaves none
    http(node, "POST", f"/media/group-icon?group={group}&id=icon-2", user=alice.user, body=jpeg(100, 100))
    newer = alice.expect_type("group", ref="icon-2")["group"]["icon"]
    assert wait_until(lambda: icon["key"] not in stored(node), 5)
    command(alice, "group_set", "rm", group=group, remove_icon=True)
    assert "icon" not in alice.expect_type("group", ref="rm")["group"]
    assert wait_until(lambda: newer["key"] not in stored(node), 5)


def test_hostile_or_unauthorised_icons_are_refused_and_leave_nothing(
    node: RunningNode, trio: list[PlainClient]
) -> None:
    alice, bob, carol = trio
    group = create(alice, bob)
    before = stored(node)

    path = f"/media/group-icon?group={group}"
    assert http(node, "POST", f"{path}&id=t", user=alice.user, body=b"just some text")[0] == 415
    assert http(node, "POST", f"{path}&id=b", user=alice.user, body=png_bomb())[0] == 202
    assert alice.expect_type("error", ref="b")["code"] == "bad_media"
    assert http(node, "POST", f"{path}&id=c", user=alice.user, body=jpeg(200, 200)[:300])[0] == 202
    assert alice.expect_type("error", ref="c")["code"] == "bad_media"
    status, _, body = http(node, "POST", f"{path}&id=n", user=bob.user, body=jpeg())
    assert (status, json.loads(body)["code"]) == (403, "not_admin")
    status, _, body = http(node, "POST", f"{path}&id=s", user=carol.user, body=jpeg())
    assert (status, json.loads(body)["code"]) == (403, "not_member")
    status, _, body = http(
        node, "POST", "/media/group-icon?group=g:missing&id=m", user=alice.user, body=jpeg()
    )
    assert (status, json.loads(body)["code"]) == (404, "unknown_group")
    assert http(node, "POST", "/media/group-icon?group=bob&id=x", user=alice.user, body=jpeg())[0] == 400
    assert http(node, "POST", f"{path}&id=x&to=y", user=alice.user, body=jpeg())[0] == 400
    assert http(node, "POST", f"{path}&id=u", body=jpeg())[0] == 401

    assert wait_until(lambda: stored(node) == before, 5)
    command(alice, "group_list", "l")
    assert "icon" not in alice.expect_type("groups", ref="l")["groups"][0]


# ---------------------------------------------------------------- the SDK (blocking and asyncio)
def test_the_sdk_sets_settings_and_an_icon_and_members_see_them(node: RunningNode) -> None:
    from client_sdk import CommandRejected
    from tests.harness import connect

    alice_id, bob_id, carol_id = (node.add_user(n)[0] for n in ("alice", "bob", "carol"))
    url = node.media_url
    with (
        connect(node, alice_id, media_url=url) as alice,
        connect(node, bob_id, media_url=url) as bob,
        connect(node, carol_id, media_url=url) as carol,
    ):
        group = alice.create_group("crag", [bob_id])

        changed = alice.set_group(group, description="Sundays", only_admins_send=True)
        with_icon = alice.set_group_icon(group, io.BytesIO(png(400, 200)))

        assert changed is not None and (changed.description, changed.only_admins_send) == ("Sundays", True)
        assert with_icon.icon is not None and (with_icon.icon.width, with_icon.icon.height) == (200, 200)
        assert wait_until(lambda: (g := bob.group(group.id)) is not None and g.icon == with_icon.icon)
        assert Image.open(io.BytesIO(bob.download(with_icon.icon))).size == (200, 200)
        with pytest.raises(CommandRejected) as stranger:
            carol.download(with_icon.icon)
        assert stranger.value.code == "not_found"
        # only admins send: bob's message is refused, alice's goes out
        with pytest.raises(CommandRejected) as refused:
            bob.send(group.id, "me too?").wait("sent", timeout=10)
        assert refused.value.code == "not_admin"
        alice.send(group.id, "news").wait("sent", timeout=10)
        for cid, call in [
            ("d", lambda: bob.set_group(group, description="mine")),
            ("a", lambda: bob.set_group(group, approval=True)),
            ("i", lambda: bob.set_group_icon(group, io.BytesIO(jpeg()))),
            ("r", lambda: bob.remove_group_icon(group)),
        ]:
            with pytest.raises(CommandRejected) as not_admin:
                call()
            assert not_admin.value.code == "not_admin", cid
        with pytest.raises(CommandRejected) as bomb:
            alice.set_group_icon(group, io.BytesIO(png_bomb()))
        assert bomb.value.code == "bad_media"
        removed = alice.remove_group_icon(group)
        assert removed is not None and removed.icon is None
        with pytest.raises(ValueError, match="at least one"):
            alice.set_group(group)


def test_the_asyncio_client_sets_settings_and_an_icon(node: RunningNode) -> None:
    from tests.integration.test_aio_sdk import connect as aio_connect
    from tests.integration.test_aio_sdk import run

    alice_id, bob_id = (node.add_user(n)[0] for n in ("alice", "bob"))

    async def scenario() -> None:
        async with aio_connect(node, alice_id, media_url=node.media_url) as alice:
            group = await alice.create_group("crag", [bob_id])
            changed = await alice.set_group(group, description="Sundays", approval=True)
            assert changed is not None and changed.description == "Sundays" and changed.approval
            with_icon = await alice.set_group_icon(group, io.BytesIO(jpeg(300, 100)))
            assert with_icon.icon is not None and with_icon.icon.width == 100
            removed = await alice.remove_group_icon(group)
            assert removed is not None and removed.icon is None

    run(scenario)
