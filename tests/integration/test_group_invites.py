"""Group invite links and join requests against a real node, over plain MQTT: joining by a code,
the approval flow with an admin who is offline and syncs later, one answer for a wrong, revoked
and expired code, admins only, and ``groups.max_members``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import RunningNode, node_settings
from tests.plain import PlainClient


@pytest.fixture
def people(node: RunningNode) -> Iterator[list[PlainClient]]:
    clients = []
    for name in ("alice", "bob", "dave", "erin"):
        user, token = node.add_user(name)
        client = PlainClient(node.port, user, token)
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


def link(admin: PlainClient, group: str, cid: str = "link", **fields: Any) -> str:
    command(admin, "group_invite_link", cid, group=group, **fields)
    answer = admin.expect_type("group_invite", ref=cid)
    assert answer["group"] == group
    return str(answer["code"])


def test_whoever_holds_the_link_joins_and_every_member_hears_it(people: list[PlainClient]) -> None:
    alice, bob, dave, _ = people
    group = create(alice, bob)
    code = link(alice, group)
    assert len(code) >= 22  # 128 random bits

    command(dave, "group_join", "join", code=code)

    joined = dave.expect_type("group", ref="join")
    assert joined["action"] == "joined" and joined["group"]["members"] == [alice.user, bob.user, dave.user]
    assert bob.expect_type("group", action="joined")["affected"] == [dave.user]
    cid = dave.send(group, "hi all")
    assert bob.expect_type("message")["message"]["text"] == "hi all"
    dave.expect_type("sent", ref=cid)
    # the same command again: a member already, answered with ok, no second event
    command(dave, "group_join", "join", code=code)
    dave.expect_type("ok", ref="join")


def test_a_wrong_revoked_or_expired_code_gets_one_answer(people: list[PlainClient]) -> None:
    alice, bob, dave, _ = people
    revoked_group, expired_group = create(alice, bob), create(alice, bob)
    revoked = link(alice, revoked_group, "l1")
    command(alice, "group_invite_link", "rv", group=revoked_group, revoke=True)
    assert alice.expect_type("group_invite", ref="rv")["code"] is None
    replaced = link(alice, expired_group, "l2")
    expired = link(alice, expired_group, "l3", expires_in=1)  # replaces the one before
    time.sleep(1.2)  # the code's second runs out on the server's clock

    answers = []
    for i, code in enumerate(["A" * 22, revoked, replaced, expired]):
        command(dave, "group_join", f"j{i}", code=code)
        error = dave.expect_type("error", ref=f"j{i}")
        answers.append((error["code"], error["message"]))

    assert answers == [("not_found", "no such invite")] * 4
    command(dave, "group_list", "list")
    assert dave.expect_type("groups", ref="list")["groups"] == []


def test_only_admins_make_links_and_see_requests(people: list[PlainClient]) -> None:
    alice, bob, dave, _ = people
    group = create(alice, bob)
    for cid, kind, fields in [
        ("l", "group_invite_link", {}),
        ("rv", "group_invite_link", {"revoke": True}),
        ("rq", "group_requests", {}),
        ("ap", "group_approve", {"member": dave.user}),
        ("rj", "group_reject", {"member": dave.user}),
    ]:
        command(bob, kind, cid, group=group, **fields)
        assert bob.expect_type("error", ref=cid)["code"] == "not_admin"
        command(dave, kind, cid, group=group, **fields)
        assert dave.expect_type("error", ref=cid)["code"] == "not_member"


def test_approval_with_an_admin_who_is_offline_and_syncs(
    node: RunningNode, people: list[PlainClient]
) -> None:
    alice, bob, dave, erin = people
    group = create(alice, bob)
    command(alice, "group_promote", "p", group=group, members=[bob.user])
    alice.expect_type("group", ref="p")
    command(alice, "group_set", "s", group=group, approval=True)
    assert alice.expect_type("group", ref="s")["group"]["approval"] is True
    code = link(alice, group)
    bob.close()  # bob, an admin, is offline

    command(dave, "group_join", "j", code=code)
    command(erin, "group_join", "j", code=code)

    pending = dave.expect_type("group_request", ref="j")
    assert (pending["state"], pending["group"], pending["user"]) == ("pending", group, dave.user)
    assert alice.expect_type("group_request", user=dave.user)["state"] == "pending"
    command(alice, "group_requests", "rq", group=group)
    requests = alice.expect_type("group_requests", ref="rq")["requests"]
    assert [r["user"] for r in requests] == [dave.user, erin.user]
    # a pending requester is no member: nothing reaches them, they cannot send
    cid = dave.send(group, "let me in")
    assert dave.expect_type("error", ref=cid)["code"] == "not_member"

    # bob comes back and catches up: the requests are in his inbox
    bob = PlainClient(node.port, bob.user, node.tokens[bob.user])
    bob.inbox()
    command(bob, "sync", "sync", after=0)
    entries = bob.expect_type("sync_page", ref="sync")["entries"]
    asked = [(e["user"], e["state"]) for e in entries if e["type"] == "group_request"]
    assert asked == [(dave.user, "pending"), (erin.user, "pending")]
    command(bob, "group_approve", "a", group=group, member=dave.user)
    command(bob, "group_reject", "r", group=group, member=erin.user)

    approved = bob.expect_type("group", ref="a")
    assert approved["action"] == "approved" and dave.user in approved["group"]["members"]
    assert dave.expect_type("group", action="approved")["affected"] == [dave.user]
    assert erin.expect_type("group_request", state="rejected")["by"] == bob.user
    assert alice.expect_type("group_request", state="rejected")["user"] == erin.user
    command(alice, "group_requests", "rq2", group=group)
    assert alice.expect_type("group_requests", ref="rq2")["requests"] == []
    # resends change nothing more
    command(bob, "group_approve", "a", group=group, member=dave.user)
    bob.expect_type("ok", ref="a")
    bob.close()


def test_a_link_a_pending_request_and_the_settings_survive_a_restart(node: RunningNode) -> None:
    names = ("alice", "dave", "erin")
    ids = [node.add_user(n)[0] for n in names]
    alice, dave, erin = (PlainClient(node.port, user, node.tokens[user]) for user in ids)
    for client in (alice, dave, erin):
        client.inbox()
    group = create(alice, dave)
    command(alice, "group_set", "s", group=group, approval=True, only_admins_send=True)
    alice.expect_type("group", ref="s")
    code = link(alice, group)
    command(erin, "group_join", "j", code=code)
    erin.expect_type("group_request", ref="j")
    for client in (alice, dave, erin):
        client.close()

    node.stop()
    node.start()

    alice, dave = (PlainClient(node.port, user, node.tokens[user]) for user in ids[:2])
    try:
        for client in (alice, dave):
            client.inbox()
        command(alice, "group_requests", "rq", group=group)
        assert [r["user"] for r in alice.expect_type("group_requests", ref="rq")["requests"]] == [ids[2]]
        refused = dave.send(group, "still only admins?")
        assert dave.expect_type("error", ref=refused)["code"] == "not_admin"
        command(alice, "group_approve", "a", group=group, member=ids[2])
        assert ids[2] in alice.expect_type("group", ref="a")["group"]["members"]
        newcomer = PlainClient(node.port, *node.add_user("frank"))
        newcomer.inbox()
        command(newcomer, "group_join", "j2", code=code)  # the link still works
        assert newcomer.expect_type("group_request", ref="j2")["state"] == "pending"
        newcomer.close()
    finally:
        alice.close()
        dave.close()


def test_a_join_past_max_members_is_group_full(tmp_path: Path) -> None:
    small = RunningNode(node_settings(tmp_path, **{"groups.max_members": 2})).start()
    clients = []
    try:
        for name in ("a", "b", "c"):
            client = PlainClient(small.port, *small.add_user(name))
            client.inbox()
            clients.append(client)
        admin, member, late = clients
        group = create(admin, member)
        code = link(admin, group)

        command(late, "group_join", "j", code=code)

        assert late.expect_type("error", ref="j")["code"] == "group_full"
    finally:
        for client in clients:
            client.close()
        small.close()


# ---------------------------------------------------------------- the SDK (blocking and asyncio)
def _first(client: Any, kind: type, **fields: Any) -> Any:
    for event in client.events(timeout=10):
        if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
            return event
    raise AssertionError(f"no {kind.__name__} with {fields}")


def test_the_sdk_joins_by_link_and_runs_the_approval_flow(node: RunningNode) -> None:
    from client_sdk import CommandRejected, GroupEvent, JoinRequest
    from tests.harness import connect

    alice_id, bob_id, dave_id, erin_id = (node.add_user(n)[0] for n in ("alice", "bob", "dave", "erin"))
    with connect(node, alice_id) as alice, connect(node, dave_id) as dave, connect(node, erin_id) as erin:
        group = alice.create_group("crag", [bob_id])
        invite = alice.group_invite_link(group, expires_in=3600)
        assert invite.group == group.id and invite.code and invite.expires_at is not None

        joined = dave.join_group(invite.code)

        assert isinstance(joined, GroupEvent) and joined.action == "joined"
        assert dave.group(group.id) is not None and dave_id in joined.group.members
        assert dave.join_group(invite.code) is None  # a member already
        # revoked: the old code is refused like any wrong one
        assert alice.revoke_group_invite(group).code is None
        with pytest.raises(CommandRejected) as refused:
            erin.join_group(invite.code)
        assert (refused.value.code, refused.value.message) == ("not_found", "no such invite")
        with pytest.raises(ValueError, match="invite code"):
            erin.join_group("not a code!")

        # approval: erin asks, alice (offline meanwhile) approves after catching up
        changed = alice.set_group(group, approval=True)
        assert changed is not None and changed.approval
        code = alice.group_invite_link(group).code
        assert code is not None
    asked = None
    with connect(node, erin_id) as erin:
        asked = erin.join_group(code)
        assert isinstance(asked, JoinRequest) and asked.state == "pending"
    with connect(node, alice_id) as alice:
        pending = _first(alice, JoinRequest, user=erin_id)
        assert (pending.state, pending.group) == ("pending", group.id)
        assert [user for user, _ in alice.group_requests(group)] == [erin_id]
        after = alice.approve(group, erin_id)
        assert after is not None and erin_id in after.members
        assert alice.group_requests(group) == []


def test_the_asyncio_client_joins_and_rejects(node: RunningNode) -> None:
    from client_sdk.aio import CommandRejected, GroupEvent, JoinRequest
    from tests.integration.test_aio_sdk import connect as aio_connect
    from tests.integration.test_aio_sdk import run

    alice_id, dave_id, erin_id = (node.add_user(n)[0] for n in ("alice", "dave", "erin"))

    async def scenario() -> None:
        async with (
            aio_connect(node, alice_id) as alice,
            aio_connect(node, dave_id) as dave,
            aio_connect(node, erin_id) as erin,
        ):
            group = await alice.create_group("crag", [dave_id])
            with pytest.raises(CommandRejected) as not_admin:
                await dave.group_invite_link(group)
            assert not_admin.value.code == "not_admin"
            await alice.set_group(group, approval=True)
            invite = await alice.group_invite_link(group)
            assert invite.code is not None
            asked = await erin.join_group(invite.code)
            assert isinstance(asked, JoinRequest) and asked.state == "pending"
            assert [u for u, _ in await alice.group_requests(group)] == [erin_id]
            await alice.reject(group, erin_id)
            assert await alice.group_requests(group) == []
            await alice.set_group(group, approval=False)
            joined = await erin.join_group(invite.code)
            assert isinstance(joined, GroupEvent) and erin_id in joined.group.members

    run(scenario)
