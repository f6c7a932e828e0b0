"""MQTT 5 request/response against the real node: paho in MQTTv5 mode and Debian's mosquitto_rr.
A command with a Response Topic gets its direct answer there with its Correlation Data and User
Properties; another user's reply topic is refused (PUBACK 0x87) and readable by nobody else; two
devices of a user each get their own answers; a 3.1.1 device of the same user sees what it always
saw. Typing reaches MQTT 5 subscribers with a message expiry."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.harness import RunningNode, wait_until
from tests.plain import PlainClient


def request(
    topic: str, correlation: bytes | None = None, user_properties: list[tuple[str, str]] | None = None
) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = topic
    if correlation is not None:
        props.CorrelationData = correlation
    if user_properties:
        props.UserProperty = user_properties
    return props


def cmd(kind: str, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "type": kind, "id": uuid.uuid4().hex, **fields}


def on(client: PlainClient, topic: str, kind: str | None = None, ref: str | None = None) -> mqtt.MQTTMessage:
    """The first message received on ``topic`` (of that type and ref), as paho gave it."""

    def found() -> mqtt.MQTTMessage | None:
        for msg in list(client.received):
            payload = json.loads(msg.payload)
            if msg.topic == topic and kind in (None, payload["type"]) and ref in (None, payload.get("ref")):
                return msg
        return None

    assert wait_until(lambda: found() is not None), (
        f"nothing on {topic}: {[m.topic for m in client.received]}"
    )
    msg = found()
    assert msg is not None
    return msg


def on_topic(client: PlainClient, topic: str) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in list(client.received) if m.topic == topic]


@contextmanager
def clients(node: RunningNode, *specs: tuple[str, str, bool]) -> Iterator[list[PlainClient]]:
    """``(user, device, mqtt5)`` each, connected."""
    made: list[PlainClient] = []
    try:
        for user, device, v5 in specs:
            made.append(PlainClient(node.port, user, node.tokens[user], device=device, mqtt5=v5))
        yield made
    finally:
        for client in made:
            client.close()


def test_send_sync_and_groups_are_answered_on_the_response_topic_with_correlation_data(
    node: RunningNode,
) -> None:
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    reply = f"chat/{alice}/reply/phone"
    with clients(node, (alice, "phone", True), (bob, "d1", False)) as (phone, b):
        assert phone.inbox() == [1] and phone.subscribe(reply) == [1] and b.inbox() == [1]

        # send: PUBACK 0, sent on the response topic with the correlation data and the user
        # properties, in order, and in the inbox too (it has a cursor); bob gets the message
        hello = cmd("send", to=bob, text="hi")
        trace = [("trace", "t-1"), ("app", "demo"), ("trace", "t-2")]
        assert phone.publish(hello, properties=request(reply, b"\x00corr-1", trace)) == 0
        answer = on(phone, reply, "sent", hello["id"])
        assert answer.properties.CorrelationData == b"\x00corr-1"
        assert answer.properties.UserProperty == trace
        assert answer.properties.ContentType == "application/json"
        assert not hasattr(answer.properties, "ResponseTopic")
        sent = json.loads(answer.payload)
        inbox_copy = on(phone, f"chat/{alice}/in", "sent", hello["id"])
        assert json.loads(inbox_copy.payload) == sent and isinstance(sent["cursor"], int)
        assert b.expect_type("message")["message"]["text"] == "hi"

        # sync: the page on the response topic only
        sync = cmd("sync", after=0)
        assert phone.publish(sync, properties=request(reply, b"corr-2")) == 0
        page = on(phone, reply, "sync_page", sync["id"])
        assert page.properties.CorrelationData == b"corr-2"
        assert [e["type"] for e in json.loads(page.payload)["entries"]] == ["sent"]

        # the groups listing, and an error found after the PUBACK, the same way
        create = cmd("group_create", name="trip", members=[bob])
        assert phone.publish(create, properties=request(reply, b"corr-3")) == 0
        assert on(phone, reply, "group", create["id"]).properties.CorrelationData == b"corr-3"
        listing = cmd("group_list")
        assert phone.publish(listing, properties=request(reply, b"corr-4")) == 0
        groups = on(phone, reply, "groups", listing["id"])
        assert groups.properties.CorrelationData == b"corr-4"
        assert [g["name"] for g in json.loads(groups.payload)["groups"]] == ["trip"]
        wrong = cmd("send", to="nobody-" + uuid.uuid4().hex[:6], text="?")
        assert phone.publish(wrong, properties=request(reply, b"corr-5")) == 0
        error = on(phone, reply, "error", wrong["id"])
        assert (json.loads(error.payload)["code"], error.properties.CorrelationData) == (
            "unknown_user",
            b"corr-5",
        )

        phone.drain(0.5)
        inbox_live = {p["type"] for p in on_topic(phone, f"chat/{alice}/in") if "cursor" not in p}
        assert inbox_live == set()  # no live answer went to the inbox
        assert on_topic(b, f"chat/{bob}/reply") == []


def test_another_users_reply_topic_is_refused_and_unreadable(node: RunningNode) -> None:
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    with clients(node, (alice, "d1", True), (bob, "d1", True)) as (a, b):
        assert a.inbox() == [1] and b.inbox() == [1]
        # bob may read his own reply topic only; nobody publishes there
        assert b.subscribe(f"chat/{bob}/reply/#") == [1]
        assert b.subscribe(f"chat/{alice}/reply/#") == [0x87]
        assert b.subscribe("chat/+/reply/#") == [0x87]
        assert a.publish(b'{"v":1}', topic=f"chat/{bob}/reply/x") == 0x87

        # alice names bob's reply topic: refused, nothing runs, the error on her inbox
        listing = cmd("group_list")
        assert a.publish(listing, properties=request(f"chat/{bob}/reply/x", b"steal")) == 0x87
        refused = a.expect_type("error", ref=listing["id"])
        assert refused["code"] == "forbidden" and f"chat/{alice}/reply" in refused["message"]
        # a wildcard and the inbox are no response topics either
        assert a.publish(cmd("group_list"), properties=request(f"chat/{alice}/reply/+")) == 0x87
        assert a.publish(cmd("group_list"), properties=request(f"chat/{alice}/in")) == 0x87
        # too many user properties: refused, with a clear error
        many = cmd("group_list")
        props = request(f"chat/{alice}/reply", b"c", [("k", "v")] * 17)
        assert a.publish(many, properties=props) == 0x97
        assert "at most 16 user properties" in a.expect_type("error", ref=many["id"])["message"]

        b.drain(0.5)
        assert [m.topic for m in b.received if "/reply" in m.topic] == []


def test_two_devices_each_get_only_their_own_answers_and_a_311_device_is_unaffected(
    node: RunningNode,
) -> None:
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    phone_topic, laptop_topic = f"chat/{alice}/reply/phone", f"chat/{alice}/reply/laptop"
    with clients(node, (alice, "phone", True), (alice, "laptop", True), (alice, "old", False)) as (
        phone,
        laptop,
        old,
    ):
        assert phone.subscribe(phone_topic) == [1] and laptop.subscribe(laptop_topic) == [1]
        assert phone.inbox() == laptop.inbox() == old.inbox() == [1]

        ask_phone, ask_laptop = cmd("group_list"), cmd("group_list")
        assert phone.publish(ask_phone, properties=request(phone_topic, b"p")) == 0
        assert laptop.publish(ask_laptop, properties=request(laptop_topic, b"l")) == 0
        by_old = old.send(bob, "from 3.1.1")  # the 3.1.1 device: sent on the inbox, as ever

        assert on(phone, phone_topic, "groups", ask_phone["id"]).properties.CorrelationData == b"p"
        assert on(laptop, laptop_topic, "groups", ask_laptop["id"]).properties.CorrelationData == b"l"
        assert old.expect_type("sent", ref=by_old)["ref"] == by_old
        for client in (phone, laptop, old):
            client.drain(0.5)
        assert [p["ref"] for p in on_topic(phone, phone_topic)] == [ask_phone["id"]]
        assert [p["ref"] for p in on_topic(laptop, laptop_topic)] == [ask_laptop["id"]]
        assert [m.topic for m in old.received if "/reply" in m.topic] == []
        # the 3.1.1 device's own answer reached every device's inbox (sequenced); none of the
        # MQTT 5 devices' live answers did
        assert all(
            p["type"] != "groups" for c in (phone, laptop, old) for p in on_topic(c, f"chat/{alice}/in")
        )


def test_typing_reaches_mqtt5_subscribers_with_a_message_expiry(node: RunningNode) -> None:
    alice, _ = node.add_user("alice")
    bob, _ = node.add_user("bob")
    node.make_contacts(alice, bob)
    with clients(node, (alice, "d1", False), (bob, "v5", True)) as (a, b):
        assert b.inbox() == [1]
        a.publish(cmd("typing", to=bob, state="composing"), qos=0)
        typing = on(b, f"chat/{bob}/in", "typing")
        assert 0 < typing.properties.MessageExpiryInterval <= 5


@pytest.mark.skipif(
    shutil.which("mosquitto_rr") is None, reason="mosquitto_rr (mosquitto-clients) is not installed"
)
def test_mosquitto_rr_gets_the_answer_to_its_request(node: RunningNode) -> None:
    alice, token = node.add_user("alice")
    listing = cmd("group_list")
    done = subprocess.run(
        [
            "mosquitto_rr", "-h", "127.0.0.1", "-p", str(node.port), "-u", alice, "-P", token,
            "-i", f"{alice}/rr", "-t", f"chat/{alice}/out", "-e", f"chat/{alice}/reply/rr",
            "-q", "1", "-m", json.dumps(listing), "-W", "10",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"v": 1, "type": "groups", "ref": listing["id"], "groups": []}


@pytest.mark.skipif(
    shutil.which("mosquitto_pub") is None, reason="mosquitto_pub (mosquitto-clients) is not installed"
)
def test_mosquitto_pub_naming_another_users_reply_topic_is_refused(node: RunningNode) -> None:
    alice, token = node.add_user("alice")
    bob, _ = node.add_user("bob")
    with clients(node, (bob, "d1", True)) as (b,):
        assert b.subscribe(f"chat/{bob}/reply/#") == [1]
        done = subprocess.run(
            [
                "mosquitto_pub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", str(node.port), "-u", alice,
                "-P", token, "-i", f"{alice}/pub", "-q", "1", "-t", f"chat/{alice}/out",
                "-D", "publish", "response-topic", f"chat/{bob}/reply/x",
                "-D", "publish", "correlation-data", "steal", "-m", json.dumps(cmd("group_list")),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )  # fmt: skip
        b.drain(0.5)
        assert b.received == []
    assert "not authorized" in (done.stdout + done.stderr).lower(), done
