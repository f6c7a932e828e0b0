"""MQTT 5 request/response in a cluster: two `mqchat node`s and a `mqchat worker` on Redis or
RabbitMQ (jobs), Redis (locator) and PostgreSQL. The reply target crosses the commands queue in
the command's envelope and the answer comes back to the node that received the command, on the
device's own response topic, while the sequenced copy reaches the user's devices on every node."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import QUEUES, Cluster, running_cluster
from tests.integration.test_mqtt5_reqresp import cmd, on, on_topic, request
from tests.plain import PlainClient


@pytest.fixture(params=QUEUES)
def cluster(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    with running_cluster(tmp_path, request.param, postgres_url) as running:
        yield running


def test_answers_cross_the_job_queue_back_to_the_asking_devices_node(cluster: Cluster) -> None:
    alice, bob = cluster.user("alice"), cluster.user("bob")
    phone_topic, laptop_topic = f"chat/{alice}/reply/phone", f"chat/{alice}/reply/laptop"
    token = cluster.tokens[alice]
    phone = PlainClient(cluster.ports["n1"], alice, token, device="phone", mqtt5=True)
    laptop = PlainClient(cluster.ports["n2"], alice, token, device="laptop", mqtt5=True)
    b = PlainClient(cluster.ports["n2"], bob, cluster.tokens[bob], device="d1")  # 3.1.1
    try:
        assert phone.subscribe(phone_topic) == [1] and laptop.subscribe(laptop_topic) == [1]
        assert phone.inbox() == laptop.inbox() == b.inbox() == [1]

        hello = cmd("send", to=bob, text="across")
        assert phone.publish(hello, properties=request(phone_topic, b"ph-1", [("k", "v")])) == 0
        sent = on(phone, phone_topic, "sent", hello["id"])
        assert (sent.properties.CorrelationData, sent.properties.UserProperty) == (b"ph-1", [("k", "v")])
        # the laptop, on the other node, gets the sequenced sent in its inbox, not the answer
        assert json.loads(on(laptop, f"chat/{alice}/in", "sent", hello["id"]).payload) == json.loads(
            sent.payload
        )
        assert b.expect_type("message")["message"]["text"] == "across"

        listing = cmd("group_list")
        assert laptop.publish(listing, properties=request(laptop_topic, b"lp-1")) == 0
        groups = on(laptop, laptop_topic, "groups", listing["id"])
        assert groups.properties.CorrelationData == b"lp-1"

        for client in (phone, laptop):
            client.drain(0.5)
        assert [p["ref"] for p in on_topic(phone, phone_topic)] == [hello["id"]]
        assert [p["ref"] for p in on_topic(laptop, laptop_topic)] == [listing["id"]]
    finally:
        for client in (phone, laptop, b):
            client.close()
