"""A privacy change reaches presence on every node: two ``mqchat node``s and a worker on Redis and
PostgreSQL (tests/cluster.py; run under ``flock /tmp/mqchat-cluster.lock``). The user is on node 1,
their watchers on node 2: the subscription the new setting no longer allows is cut there too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.harness import wait_until
from tests.integration.test_privacy import command
from tests.plain import PlainClient


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    running = Cluster(tmp_path, "redis://127.0.0.1:6379/13", postgres_url)
    # the operator lets anyone watch anyone: what a user's own setting narrows
    running.config.write_text(
        running.config.read_text().replace("[presence]\n", '[presence]\nvisibility = "everyone"\n')
    )
    try:
        running.node("n1")
        running.node("n2")
        running.worker("w1")
        yield running
    finally:
        print(running.report())  # pytest shows it when the test failed
        running.close()


def plain(cluster: Cluster, user: str, node: str) -> PlainClient:
    client = PlainClient(cluster.ports[node], user, cluster.tokens[user])
    assert client.inbox() == [1]
    return client


def test_a_change_on_one_node_cuts_a_watcher_on_another(cluster: Cluster) -> None:
    alice_id, bob_id, mallory_id = cluster.user("alice"), cluster.user("bob"), cluster.user("mallory")
    alice = plain(cluster, alice_id, "n1")
    alice.send(bob_id, "hi")  # bob becomes a contact
    alice.expect_type("sent")
    bob, mallory = plain(cluster, bob_id, "n2"), plain(cluster, mallory_id, "n2")
    topic = f"presence/{alice_id}"
    for watcher in (bob, mallory):
        assert watcher.subscribe(topic) == [1]
        watcher.expect(lambda t, p: t == topic)

    # When alice, on node 1, lets only her contacts see her online status
    cid = command(alice, "privacy_set", online="contacts")
    alice.expect_type("privacy", ref=cid)

    # Then node 2 refuses mallory from now on (it heard of the change from node 1)
    assert wait_until(lambda: mallory.subscribe(topic) == [0x80], 15)

    # And her existing subscription there was cut: when alice's presence next changes (her last
    # seen now hidden), bob on node 2 gets it and mallory gets nothing of it
    cid = command(alice, "privacy_set", last_seen="nobody")
    alice.expect_type("privacy", ref=cid)
    assert bob.expect(lambda t, p: t == topic and "last_seen" not in p, 15)["status"] == "online"
    assert mallory.subscribe(f"presence/{mallory_id}") == [1]
    mallory.expect(lambda t, p: t == f"presence/{mallory_id}")
    got = [p for t, p in mallory.drain(0) if t == topic]
    assert all("last_seen" in p for p in got), got
    for client in (alice, bob, mallory):
        client.close()
