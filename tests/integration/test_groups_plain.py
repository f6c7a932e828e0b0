"""Groups over the plain JSON contract, and the bad inputs every group command can get."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness import RunningNode, unique
from tests.plain import PlainClient


@pytest.fixture
def trio(node: RunningNode):  # type: ignore[no-untyped-def]
    clients = []
    for name in ("alice", "bob", "carol"):
        user, token = node.add_user(name)
        client = PlainClient(node.port, user, token)
        client.inbox()
        clients.append(client)
    yield clients
    for client in clients:
        client.close()


def command(client: PlainClient, kind: str, cid: str, **fields: Any) -> None:
    client.publish({"v": 1, "type": kind, "id": cid, **fields})


def create(alice: PlainClient, *members: PlainClient) -> str:
    command(alice, "group_create", "create", name="team", members=[m.user for m in members])
    event = alice.expect_type("group", ref="create")
    assert event["action"] == "created"
    return str(event["group"]["id"])


def test_create_send_and_receipts_over_plain_mqtt(trio: list[PlainClient]) -> None:
    alice, bob, carol = trio
    group = create(alice, bob, carol)
    for member in (bob, carol):
        assert member.expect_type("group")["group"]["members"] == [alice.user, bob.user, carol.user]

    cid = alice.send(group, "hello team")
    sent = alice.expect_type("sent", ref=cid)["message"]
    for member in (bob, carol):
        message = member.expect_type("message")["message"]
        assert (message["id"], message["seq"], message["to"]) == (sent["id"], 1, group)
        member.publish(
            {"v": 1, "type": "receipt", "id": "d", "status": "delivered", "messages": [message["id"]]}
        )

    # alice hears of both: in two events, or in one naming the second in `also_by` (both receipts
    # in one batch of the server's); the last one for all (two ticks)
    receipts = [alice.expect_type("receipt", status="delivered")]
    while not receipts[-1]["all"]:
        receipts.append(alice.expect_type("receipt", status="delivered"))
    named = [member for r in receipts for member in (r["by"], *r.get("also_by", []))]
    assert sorted(named) == sorted([bob.user, carol.user])
    assert all(r["message_id"] == sent["id"] for r in receipts)


def test_group_list(trio: list[PlainClient]) -> None:
    alice, bob, carol = trio
    group = create(alice, bob, carol)

    command(bob, "group_list", "list")

    listed = bob.expect_type("groups", ref="list")["groups"]
    assert listed == [
        {"id": group, "name": "team", "members": [alice.user, bob.user, carol.user], "admins": [alice.user]}
    ]


BAD = [
    ("group_create", {"name": "x", "members": []}, "bad_request"),
    ("group_create", {"name": "", "members": ["bob"]}, "bad_request"),
    ("group_create", {"name": "x", "members": ["dup", "dup"]}, "bad_request"),
    ("group_create", {"name": "x", "members": "bob"}, "bad_request"),
    ("group_add", {"group": "not-a-group-id", "members": ["bob"]}, "bad_request"),
    ("group_add", {"group": "g:missing", "members": ["bob"]}, "unknown_group"),
    ("group_leave", {"group": "g:missing"}, "unknown_group"),
]


@pytest.mark.parametrize(("kind", "fields", "code"), BAD)
def test_bad_group_commands_get_clear_errors(
    trio: list[PlainClient], kind: str, fields: dict[str, Any], code: str
) -> None:
    alice, bob, _ = trio

    command(alice, kind, "bad", **fields)

    error = alice.expect_type("error", ref="bad")
    assert error["code"] == code and error["message"]
    cid = alice.send(bob.user, "still fine")
    alice.expect_type("sent", ref=cid)


def test_permission_errors_over_the_wire(trio: list[PlainClient], node: RunningNode) -> None:
    alice, bob, carol = trio
    group = create(alice, bob)
    outsider_id, outsider_token = node.add_user("outsider")
    outsider = PlainClient(node.port, outsider_id, outsider_token)
    outsider.inbox()

    command(bob, "group_add", "b1", group=group, members=[carol.user])
    assert bob.expect_type("error", ref="b1")["code"] == "not_admin"
    outsider.send(group, "let me in", cid="o1")
    assert outsider.expect_type("error", ref="o1")["code"] == "not_member"
    command(alice, "group_add", "a1", group=group, members=[unique("ghost")])
    assert alice.expect_type("error", ref="a1")["code"] == "unknown_user"
    command(alice, "group_add", "a2", group=group, members=[bob.user])
    assert alice.expect_type("error", ref="a2")["code"] == "bad_request"
    outsider.close()


def test_group_full(tmp_path: Any) -> None:
    from tests.harness import node_settings

    small = RunningNode(node_settings(tmp_path, **{"groups.max_members": 3})).start()
    try:
        people = [small.add_user(n) for n in ("a", "b", "c", "d")]
        admin = PlainClient(small.port, *people[0])
        admin.inbox()
        command(admin, "group_create", "full", name="x", members=[p[0] for p in people[1:]])
        assert admin.expect_type("error", ref="full")["code"] == "group_full"
        command(admin, "group_create", "ok", name="x", members=[people[1][0], people[2][0]])
        group = admin.expect_type("group", ref="ok")["group"]["id"]
        command(admin, "group_add", "more", group=group, members=[people[3][0]])
        assert admin.expect_type("error", ref="more")["code"] == "group_full"
        admin.close()
    finally:
        small.close()
