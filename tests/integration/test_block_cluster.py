"""Blocking across nodes (two `mqchat node`s and a `mqchat worker` on Redis and PostgreSQL): a
block made through node n1 holds on node n2 at once: alice's other device there hears of it, bob's
messages from n2 are sent but never delivered, and bob's subscription to her presence on n2 is
cut (then refused). Run under ``flock /tmp/mqchat-cluster.lock`` (Redis db 13 is shared)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Blocking, Message
from tests.cluster import Cluster
from tests.plain import PlainClient

REFUSED = 0x80


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    running = Cluster(tmp_path, "redis://127.0.0.1:6379/13", postgres_url)
    try:
        running.node("n1")
        running.node("n2")
        running.worker("w1")
        yield running
    finally:
        print(running.report())  # pytest shows it when the test failed
        running.close()


def plain(cluster: Cluster, user: str, node: str, device: str) -> PlainClient:
    client = PlainClient(cluster.ports[node], user, cluster.tokens[user], device=device)
    client.inbox()
    return client


def test_a_block_made_on_one_node_stops_delivery_and_presence_on_the_other(cluster: Cluster) -> None:
    alice, bob, carol = cluster.user("alice"), cluster.user("bob"), cluster.user("carol")
    alice_phone = plain(cluster, alice, "n1", "phone")
    carol_mqtt = plain(cluster, carol, "n1", "phone")
    bob_mqtt = plain(cluster, bob, "n2", "phone")
    try:
        # Given bob (on n2) is a contact of alice and carol (on n1) and watches their presence
        for other in (alice_phone, carol_mqtt):
            other.send(bob, "hello", cid="hello")
            other.expect_type("sent", ref="hello")
        for user in (alice, carol):
            assert bob_mqtt.subscribe(f"presence/{user}") == [1]
            bob_mqtt.expect(lambda t, p, u=user: t == f"presence/{u}" and p.get("status") == "online")

        with cluster.client(alice, "n2", device="laptop") as laptop:
            laptop.wait_synced(timeout=15)

            # When alice blocks bob through n1
            alice_phone.publish({"v": 1, "type": "block", "id": "b1", "user": bob})
            alice_phone.expect_type("blocking", ref="b1")

            # Then her laptop on n2 hears of it
            event = next(e for e in laptop.events(timeout=15) if isinstance(e, Blocking))
            assert (event.user, event.blocked, event.ref) == (bob, True, "b1")

            # bob's message from n2 is sent, and carol's after it is the next message alice gets
            bob_mqtt.send(alice, "let me in", cid="s1")
            bob_mqtt.expect_type("sent", ref="s1")
            carol_mqtt.send(alice, "barrier", cid="c1")
            first = alice_phone.expect(
                lambda _t, p: p.get("type") == "message" and p["message"]["from"] != alice
            )
            assert first["message"]["from"] == carol
            message = next(e for e in laptop.events(timeout=15) if isinstance(e, Message))
            assert message.sender == carol

        # and bob's subscription to her presence on n2 is gone: once a message alice sends him
        # after the block has reached him, her going offline does not, carol's after it does
        alice_phone.send(bob, "after the block", cid="s2")
        bob_mqtt.expect(
            lambda _t, p: p.get("type") == "message" and p["message"]["text"] == "after the block", 15
        )
        alice_phone.close()
        carol_mqtt.close()
        heard = bob_mqtt.expect(lambda t, p: t.startswith("presence/") and p.get("status") == "offline", 15)
        assert heard["user"] == carol, cluster.report()
        assert bob_mqtt.subscribe(f"presence/{alice}") == [REFUSED]
    finally:
        bob_mqtt.close()
