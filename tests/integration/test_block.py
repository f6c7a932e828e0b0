"""Blocking against a real node, with plain MQTT and the SDK: whom alice blocks sends 1-on-1
messages that are answered ``sent`` (on all their devices) but never reach her, live, by sync
after a reconnect, or by push; cannot watch her presence (refused, and an existing subscription
is cut at once); hears no profile change and gets no receipt of hers; adding her to a group lists
her as ``invited`` and tells her nothing; in a group they share, their messages still reach her;
an unblock restores delivery; both devices of alice hear of each change.

Nothing here waits for something not to happen: a later message from someone else (a barrier) is
stored after the one that must not arrive, so when it arrives in cursor order the other one would
have come first."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from client_sdk import Blocking, Client, CommandRejected, Message, PresenceForbidden
from client_sdk.contract import load_schema
from tests.fakes import FakeFcm
from tests.harness import RunningNode, connect, need, node_settings, wait_until
from tests.integration.test_aio_sdk import connect as aio_connect
from tests.plain import PlainClient

SCHEMA = Draft202012Validator(load_schema())
REFUSED = 0x80


def plain(node: RunningNode, user: str, device: str = "plain") -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user], device=device)
    client.inbox()
    return client


def command(client: PlainClient, kind: str, cid: str, **fields: Any) -> None:
    client.publish({"v": 1, "type": kind, "id": cid, **fields})


def synced(client: PlainClient, cid: str) -> list[dict[str, Any]]:
    """Every entry of the client's inbox from the start, by ``sync``."""
    command(client, "sync", cid, after=0, limit=1000)
    page = client.expect_type("sync_page", ref=cid)
    assert not page["more"]
    return list(page["entries"])


def next_message(client: PlainClient) -> dict[str, Any]:
    found: dict[str, Any] = client.expect_type("message")["message"]
    return found


def test_plain_sends_of_a_blocked_user_are_sent_but_never_delivered(node: RunningNode) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    phone, laptop = plain(node, alice, "phone"), plain(node, alice, "laptop")
    bob_phone, bob_laptop, carol_mqtt = (
        plain(node, bob, "phone"),
        plain(node, bob, "laptop"),
        plain(node, carol),
    )
    try:
        # When alice blocks bob from her phone
        command(phone, "block", "b1", user=bob)

        # Then both her devices hear of it, with the command id
        for device in (phone, laptop):
            event = device.expect_type("blocking", ref="b1")
            SCHEMA.validate(event)
            assert (event["user"], event["blocked"]) == (bob, True)

        # When bob writes to her: his message is sent, on both his devices
        bob_phone.send(alice, "are you there?", cid="s1")
        assert bob_phone.expect_type("sent", ref="s1")["message"]["text"] == "are you there?"
        assert bob_laptop.expect_type("sent", ref="s1")["message"]["to"] == alice
        # and carol's message, stored after it, is the next one alice gets: bob's never came
        carol_mqtt.send(alice, "barrier", cid="c1")
        for device in (phone, laptop):
            assert next_message(device)["from"] == carol
        # nor is it in her inbox for a sync
        assert all(e.get("message", {}).get("from") != bob for e in synced(phone, "sync1"))

        # Nor is bob heard typing: his typing is handled before his next command's answer, and
        # alice's answer to a command she sends after that comes with nothing before it
        command(bob_phone, "typing", "t1", to=alice, state="composing")
        command(bob_phone, "blocks", "l0")
        bob_phone.expect_type("blocks", ref="l0")
        command(phone, "blocks", "l1")
        heard = phone.expect(lambda _t, p: p.get("type") in ("typing", "blocks"))
        assert heard["type"] == "blocks" and heard["users"] == [bob]

        # A block sent again changes nothing: ok, and still one blocking event
        command(phone, "block", "b1", user=bob)
        phone.expect_type("ok", ref="b1")
        assert [e["type"] for e in synced(laptop, "sync2")].count("blocking") == 1

        # Bad input: herself, nobody; nothing changes
        command(phone, "block", "b2", user=alice)
        assert phone.expect_type("error", ref="b2")["code"] == "bad_request"
        command(phone, "block", "b3", user="nobody-here")
        assert phone.expect_type("error", ref="b3")["code"] == "unknown_user"

        # When she unblocks him, his next message reaches her (the one sent while blocked does not)
        command(laptop, "unblock", "u1", user=bob)
        assert phone.expect_type("blocking", ref="u1")["blocked"] is False
        bob_phone.send(alice, "hello again", cid="s2")
        assert next_message(phone)["text"] == "hello again"
        texts = [e["message"]["text"] for e in synced(phone, "sync3") if e["type"] == "message"]
        assert texts == ["barrier", "hello again"]
    finally:
        for client in (phone, laptop, bob_phone, bob_laptop, carol_mqtt):
            client.close()


def test_sdk_block_on_one_device_holds_on_the_other_and_after_a_reconnect(node: RunningNode) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    with connect(node, alice, device="phone") as phone, connect(node, alice, device="laptop") as laptop:
        phone.block(bob)
        event = next(e for e in laptop.events(timeout=10) if isinstance(e, Blocking))
        assert (event.user, event.blocked) == (bob, True)
        assert laptop.blocked() == [bob]
        with pytest.raises(CommandRejected) as refused:
            laptop.block(alice)
        assert refused.value.code == "bad_request"

        with connect(node, bob) as bob_client:
            assert bob_client.send(alice, "blocked text").wait("sent", timeout=10).status is not None
        with connect(node, carol) as carol_client:
            carol_client.send(alice, "barrier").wait("sent", timeout=10)
        for device in (phone, laptop):
            message = next(e for e in device.events(timeout=10) if isinstance(e, Message))
            assert message.sender == carol

    # A fresh device of alice syncs her whole inbox: bob's message is not there
    with connect(node, alice, device="tablet") as tablet:
        got = [e for e in tablet.events(timeout=0.5) if isinstance(e, Message)]
        assert [m.sender for m in got] == [carol]
        tablet.unblock(bob)
        assert tablet.blocked() == []


def test_a_blocker_sends_no_receipts_to_the_blocked(node: RunningNode) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    alice_mqtt, bob_mqtt, carol_mqtt = plain(node, alice), plain(node, bob), plain(node, carol)
    try:
        bob_mqtt.send(alice, "before the block", cid="s1")
        message_id = next_message(alice_mqtt)["id"]
        command(alice_mqtt, "block", "b1", user=bob)
        alice_mqtt.expect_type("blocking", ref="b1")

        # When alice reads bob's earlier message
        command(alice_mqtt, "receipt", "r1", status="read", messages=[message_id])
        alice_mqtt.expect_type("ok", ref="r1")

        # Then bob hears nothing: carol's later message is his next event, and sync has no receipt
        carol_mqtt.send(bob, "barrier", cid="c1")
        arrived = bob_mqtt.expect(
            lambda t, p: isinstance(p, dict) and p.get("type") in ("receipt", "message")
        )
        assert arrived["type"] == "message" and arrived["message"]["from"] == carol
        assert [e["type"] for e in synced(bob_mqtt, "sync1")] == ["sent", "message"]
    finally:
        for client in (alice_mqtt, bob_mqtt, carol_mqtt):
            client.close()


def test_presence_is_refused_and_an_existing_subscription_cut(node: RunningNode) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    node.make_contacts(alice, bob)
    node.make_contacts(carol, bob)
    alice_mqtt, bob_mqtt = plain(node, alice), plain(node, bob)
    carol_mqtt = PlainClient(node.port, carol, node.tokens[carol])
    try:
        assert bob_mqtt.subscribe(f"presence/{alice}") == [1]
        assert bob_mqtt.subscribe(f"presence/{carol}") == [1]
        bob_mqtt.expect(lambda t, p: t == f"presence/{alice}" and p.get("status") == "online")

        # When alice blocks bob (her blocking event is published with the cut, in one pass)
        command(alice_mqtt, "block", "b1", user=bob)
        alice_mqtt.expect_type("blocking", ref="b1")

        # Then her going offline does not reach him: carol's offline, after it, is what he hears
        alice_mqtt.close()
        carol_mqtt.close()
        heard = bob_mqtt.expect(lambda t, p: t.startswith("presence/") and p.get("status") == "offline")
        assert heard["user"] == carol

        # And a new subscription is refused, as a stranger's is
        assert bob_mqtt.subscribe(f"presence/{alice}") == [REFUSED]
        with connect(node, bob) as bob_client, pytest.raises(PresenceForbidden):
            bob_client.watch_presence(alice)
    finally:
        bob_mqtt.close()


def test_profile_changes_are_withheld_from_the_blocked(node: RunningNode) -> None:
    alice, bob = node.add_user("alice")[0], node.add_user("bob")[0]
    node.make_contacts(alice, bob)
    with connect(node, alice) as alice_client, connect(node, bob) as bob_client:
        alice_client.set_profile(name="Alice")
        assert bob_client.profile(alice) is not None
        alice_client.block(bob)

        alice_client.set_profile(about="not for bob")

        cached = bob_client.profile(alice)  # what bob last heard: no later change came
        assert cached is not None and cached.about is None
    bob_mqtt = plain(node, bob)
    try:
        command(bob_mqtt, "profile_get", "p1", users=[alice])
        assert bob_mqtt.expect_type("profiles", ref="p1")["profiles"] == []  # as for a stranger
        abouts = [e["profile"].get("about") for e in synced(bob_mqtt, "sync1") if e["type"] == "profile"]
        assert "not for bob" not in abouts
    finally:
        bob_mqtt.close()


def test_groups_list_a_blocker_as_invited_and_shared_groups_still_deliver(node: RunningNode) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    with (
        connect(node, alice) as alice_client,
        connect(node, bob) as bob_client,
        connect(node, carol) as carol_client,
    ):
        shared = carol_client.create_group("shared", [alice, bob])
        alice_client.block(bob)

        # In a group they share, bob's messages still reach alice
        bob_client.send(shared.id, "hi all").wait("sent", timeout=10)
        message = next(
            e
            for e in alice_client.events(timeout=10)
            if isinstance(e, Message) and e.conversation == shared.id
        )
        assert message.sender == bob and message.text == "hi all"

        # When bob adds alice to his own group, she is listed as invited on his event only
        bob_mqtt = plain(node, bob)
        try:
            command(bob_mqtt, "group_create", "g1", name="bob's", members=[carol])
            group_id = bob_mqtt.expect_type("group", ref="g1")["group"]["id"]
            command(bob_mqtt, "group_add", "g2", group=group_id, members=[alice])
            added = bob_mqtt.expect_type("group", ref="g2")
            SCHEMA.validate(added)
            assert added["invited"] == [alice] and added["affected"] == []
            assert alice not in [m["user"] if isinstance(m, dict) else m for m in added["group"]["members"]]
        finally:
            bob_mqtt.close()
        # and nothing reaches alice: carol's message after it is her next event of any group kind
        carol_client.send(alice, "barrier").wait("sent", timeout=10)
        nxt = next(e for e in alice_client.events(timeout=10) if not isinstance(e, Blocking))
        assert isinstance(nxt, Message) and nxt.sender == carol


@pytest.fixture
def fcm() -> Iterator[FakeFcm]:
    server = FakeFcm()
    yield server
    server.close()


@pytest.fixture
def push_node(tmp_path: Path, fcm: FakeFcm) -> Iterator[RunningNode]:
    need(shutil.which("openssl") is not None, "openssl is needed to make the test service-account key")
    settings = node_settings(
        tmp_path,
        **{
            "push.fcm_service_account": fcm.service_account(tmp_path),
            "push.fcm_endpoint": f"{fcm.url}/v1/projects",
            "push.collapse_seconds": 0.2,
        },
    )
    running = RunningNode(settings).start()
    yield running
    running.close()


def test_no_push_for_a_blocked_users_message(push_node: RunningNode, fcm: FakeFcm) -> None:
    alice, bob, carol = (push_node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    with Client(
        "127.0.0.1", push_node.port, user=alice, token=push_node.tokens[alice], device="phone"
    ) as phone:
        phone.register_push("alice-token", "android", preview=True)
        phone.block(bob)
    # alice is offline now
    with connect(push_node, bob) as bob_client:
        bob_client.send(alice, "let me in").wait("sent", timeout=10)
    with connect(push_node, carol) as carol_client:
        carol_client.send(alice, "barrier").wait("sent", timeout=10)

    assert wait_until(lambda: len(fcm.to("alice-token")) >= 1, 10)
    pushes = fcm.to("alice-token")
    assert pushes[0]["notification"] == {"title": carol, "body": "barrier"}
    assert all(bob not in str(push) for push in pushes)


def test_asyncio_sdk_blocks_reports_and_unblocks(node: RunningNode) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))

    async def scenario() -> None:
        async with (
            aio_connect(node, alice) as alice_client,
            aio_connect(node, bob) as bob_client,
            aio_connect(node, carol) as carol_client,
        ):
            await bob_client.send(alice, "first")
            got = await anext(alice_client.messages(timeout=10))
            await alice_client.report(bob, messages=[got], reason="spam", block=True)
            assert await alice_client.blocked() == [bob]

            await (await bob_client.send(alice, "while blocked")).wait("sent", timeout=10)
            await (await carol_client.send(alice, "barrier")).wait("sent", timeout=10)
            assert (await anext(alice_client.messages(timeout=10))).sender == carol

            await alice_client.unblock(bob)
            assert await alice_client.blocked() == []
            await bob_client.send(alice, "after")
            assert (await anext(alice_client.messages(timeout=10))).text == "after"

    asyncio.run(scenario())
    store = node.node.store
    assert store is not None
    (report,) = store.reports_page(after=None, limit=5)
    assert [m["text"] for m in report.messages] == ["first"]


def test_a_block_holds_after_a_restart_and_group_messages_still_arrive(
    node: RunningNode,
) -> None:
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    with connect(node, alice) as alice_client, connect(node, carol) as carol_client:
        group = carol_client.create_group("shared", [alice, bob])
        alice_client.block(bob)

    # When the node restarts while alice is offline
    node.stop()
    node.start()

    # Then bob's 1-on-1 message is still sent and never delivered, his group message is
    with connect(node, bob) as bob_client:
        bob_client.send(alice, "1-on-1 while blocked").wait("sent", timeout=10)
        bob_client.send(group.id, "to the group").wait("sent", timeout=10)
    with connect(node, carol) as carol_client:
        carol_client.send(alice, "barrier").wait("sent", timeout=10)
    with connect(node, alice, device="tablet") as tablet:  # a new device: everything by sync
        assert tablet.blocked() == [bob]
        got = []
        for event in tablet.events(timeout=10):
            if isinstance(event, Message):
                got.append((event.sender, event.text))
                if event.text == "barrier":
                    break
        assert got == [(bob, "to the group"), (carol, "barrier")]
