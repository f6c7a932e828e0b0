"""Group settings against a real node: description, icon, "only admins can send" and approval,
over plain MQTT and HTTP; admins only (``not_admin`` for every setting); a refused send stores
nothing; hostile icon uploads are refused and leave nothing in storage."""

from __future__ import annotations

import io
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
    assert http(node, "POST", f"{path}&id=n", user=bob.user, body=jpeg())[0] == 202
    assert bob.expect_type("error", ref="n")["code"] == "not_admin"
    assert http(node, "POST", f"{path}&id=s", user=carol.user, body=jpeg())[0] == 202
    assert carol.expect_type("error", ref="s")["code"] == "not_member"
    assert http(node, "POST", "/media/group-icon?group=bob&id=x", user=alice.user, body=jpeg())[0] == 400
    assert http(node, "POST", f"{path}&id=x&to=y", user=alice.user, body=jpeg())[0] == 400
    assert http(node, "POST", f"{path}&id=u", body=jpeg())[0] == 401

    assert wait_until(lambda: stored(node) == before, 5)
    command(alice, "group_list", "l")
    assert "icon" not in alice.expect_type("groups", ref="l")["groups"][0]
