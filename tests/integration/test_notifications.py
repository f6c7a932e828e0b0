"""Push to offline users through pyfcm against a local FCM, and the SMS fallback."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Client
from tests.fakes import FakeFcm
from tests.harness import RunningNode, need, node_settings, wait_until
from tests.plain import PlainClient

COLLAPSE = 0.6
SMS_DELAY = 1.5


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
            "push.collapse_seconds": COLLAPSE,
            "push.sms_delay": SMS_DELAY,
        },
    )
    node = RunningNode(settings).start()
    yield node
    node.close()


def register(node: RunningNode, user: str, token: str, *, preview: bool = True) -> None:
    with Client("127.0.0.1", node.port, user=user, token=node.tokens[user], device="phone") as device:
        device.register_push(token, "android", preview=preview)


def burst(node: RunningNode, sender: str, to: str, texts: list[str]) -> None:
    with Client("127.0.0.1", node.port, user=sender, token=node.tokens[sender]) as client:
        outs = [client.send(to, text) for text in texts]
        for out in outs:
            out.wait("sent", timeout=10)


def test_an_offline_user_gets_one_push_per_burst(push_node: RunningNode, fcm: FakeFcm) -> None:
    # Given bob registered a push token and went offline
    alice, bob = push_node.add_user("alice")[0], push_node.add_user("bob")[0]
    register(push_node, bob, "bob-token")

    # When alice sends him five messages in a burst
    burst(push_node, alice, bob, [f"m{i}" for i in range(5)])

    # Then exactly one push reaches his device, with the preview of the last one
    assert wait_until(lambda: len(fcm.to("bob-token")) == 1, 10)
    time.sleep(COLLAPSE * 2)
    pushes = fcm.to("bob-token")
    assert len(pushes) == 1
    assert pushes[0]["notification"] == {"title": "5 new messages", "body": f"{alice}: m4"}
    assert pushes[0]["data"]["count"] == "5"
    assert pushes[0]["android"]["collapse_key"] == f"mqchat-{bob}"

    # And a later burst is another push
    burst(push_node, alice, bob, ["again"])
    assert wait_until(lambda: len(fcm.to("bob-token")) == 2, 10)
    assert fcm.to("bob-token")[1]["notification"] == {"title": alice, "body": "again"}


def test_no_push_while_the_user_is_online(push_node: RunningNode, fcm: FakeFcm) -> None:
    alice, bob = push_node.add_user("alice")[0], push_node.add_user("bob")[0]
    register(push_node, bob, "online-token")

    with Client("127.0.0.1", push_node.port, user=bob, token=push_node.tokens[bob]) as online:
        burst(push_node, alice, bob, ["you are here"])
        assert [m.text for m in online.messages(timeout=2)] == ["you are here"]
        time.sleep(COLLAPSE * 2)

    assert fcm.attempts["online-token"] == 0


def test_no_push_for_a_message_delivered_before_the_burst_ends(tmp_path: Path, fcm: FakeFcm) -> None:
    settings = node_settings(
        tmp_path,
        **{
            "push.fcm_service_account": fcm.service_account(tmp_path),
            "push.fcm_endpoint": f"{fcm.url}/v1/projects",
            "push.collapse_seconds": 3.0,
        },
    )
    node = RunningNode(settings).start()
    try:
        alice, bob = node.add_user("alice")[0], node.add_user("bob")[0]
        register(node, bob, "quick-token")
        burst(node, alice, bob, ["quick"])
        # bob comes back within the window: his SDK syncs and acknowledges delivery
        with Client("127.0.0.1", node.port, user=bob, token=node.tokens[bob]) as back:
            assert [m.text for m in back.messages(timeout=2)] == ["quick"]
        time.sleep(3.5)
        assert fcm.attempts["quick-token"] == 0
    finally:
        node.close()


def test_a_transient_fcm_error_is_retried(push_node: RunningNode, fcm: FakeFcm) -> None:
    alice, bob = push_node.add_user("alice")[0], push_node.add_user("bob")[0]
    register(push_node, bob, "flaky-token")
    fcm.script("flaky-token", [503, 503])

    burst(push_node, alice, bob, ["eventually"])

    assert wait_until(lambda: len(fcm.to("flaky-token")) == 1, 20)
    assert fcm.attempts["flaky-token"] == 3


def test_an_unregistered_token_is_removed(push_node: RunningNode, fcm: FakeFcm) -> None:
    alice, bob = push_node.add_user("alice")[0], push_node.add_user("bob")[0]
    register(push_node, bob, "stale-token")
    register(push_node, bob, "fresh-token")
    fcm.script("stale-token", [404])
    store = push_node.node.store
    assert store is not None

    burst(push_node, alice, bob, ["hello"])

    # (the stale token may be dropped before the push to the fresh one is done: wait for both)
    assert wait_until(lambda: [t.token for t in store.push_tokens(bob)] == ["fresh-token"], 10)
    assert wait_until(lambda: len(fcm.to("fresh-token")) == 1, 10)


def test_a_device_can_turn_the_preview_off(push_node: RunningNode, fcm: FakeFcm) -> None:
    alice, bob = push_node.add_user("alice")[0], push_node.add_user("bob")[0]
    register(push_node, bob, "private-token", preview=False)

    burst(push_node, alice, bob, ["secret plans"])

    assert wait_until(lambda: len(fcm.to("private-token")) == 1, 10)
    assert fcm.to("private-token")[0]["notification"] == {"title": "mqchat", "body": "1 new message"}


def test_group_messages_push_too_and_tokens_can_be_unregistered(push_node: RunningNode, fcm: FakeFcm) -> None:
    alice, bob, carol = (push_node.add_user(n)[0] for n in ("alice", "bob", "carol"))
    register(push_node, bob, "bob-group-token")
    register(push_node, carol, "carol-token")
    with Client("127.0.0.1", push_node.port, user=carol, token=push_node.tokens[carol]) as c:
        c.unregister_push("carol-token")
    with Client("127.0.0.1", push_node.port, user=alice, token=push_node.tokens[alice]) as a:
        group = a.create_group("g", [bob, carol])
        a.send(group.id, "to the group").wait("sent", timeout=10)

    assert wait_until(lambda: len(fcm.to("bob-group-token")) == 1, 10)
    time.sleep(COLLAPSE * 2)
    assert fcm.attempts["carol-token"] == 0


def test_sms_fallback_fires_after_the_delay_only_when_still_undelivered(push_node: RunningNode) -> None:
    alice, bob, carol = (push_node.add_user(n)[0] for n in ("alice", "bob", "carol"))
    store = push_node.node.store
    assert store is not None
    store.set_phone(bob, "+15550000001")
    store.set_phone(carol, "+15550000002")
    register(push_node, bob, "bob-sms-token")
    register(push_node, carol, "carol-sms-token")

    burst(push_node, alice, bob, ["still waiting"])
    burst(push_node, alice, carol, ["carol will see this"])
    with Client("127.0.0.1", push_node.port, user=carol, token=push_node.tokens[carol]) as back:
        assert [m.text for m in back.messages(timeout=1)] == ["carol will see this"]

    # before the delay: nothing; after it: one SMS to bob, none to carol (her message was delivered)
    assert store.sms_outbox(bob) == []
    assert wait_until(lambda: len(store.sms_outbox(bob)) == 1, 10)
    time.sleep(SMS_DELAY)
    (sms,) = store.sms_outbox(bob)
    assert sms.phone == "+15550000001" and sms.body == f"mqchat: {alice}: still waiting"
    assert store.sms_outbox(carol) == []


def test_without_a_push_token_the_sms_goes_at_the_end_of_the_burst(push_node: RunningNode) -> None:
    alice, bob = push_node.add_user("alice")[0], push_node.add_user("bob")[0]
    store = push_node.node.store
    assert store is not None
    store.set_phone(bob, "+15550000003")

    burst(push_node, alice, bob, ["one", "two"])

    assert wait_until(lambda: len(store.sms_outbox(bob)) == 1, COLLAPSE + 1.0)
    assert store.sms_outbox(bob)[0].body == f"mqchat: 2 unread messages from {alice}"
    time.sleep(SMS_DELAY + 0.5)
    assert len(store.sms_outbox(bob)) == 1  # the delayed check does not text the same messages again


def test_bad_push_commands_get_clear_errors(push_node: RunningNode) -> None:
    user, token = push_node.add_user("alice")
    client = PlainClient(push_node.port, user, token)
    client.inbox()
    for cmd, code in (
        ({"type": "push_register", "token": "", "platform": "android"}, "bad_request"),
        ({"type": "push_register", "token": "t", "platform": "nokia"}, "bad_request"),
        ({"type": "push_unregister", "token": "never-registered"}, "bad_request"),
    ):
        client.publish({"v": 1, "id": "p", **cmd})
        assert client.expect_type("error", ref="p")["code"] == code
    client.close()
