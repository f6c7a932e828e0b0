"""Several processes: two `mqchat node`s and two `mqchat worker`s on Redis (locator) and on Redis
or RabbitMQ (jobs), PostgreSQL (messages). Users on different nodes chat, groups span nodes, and
the users of a node that dies go offline and catch up on another node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Client, Status
from tests.cluster import NODE_TTL, QUEUES, SIGN_OUT_SWEEP, Cluster, running_cluster
from tests.harness import wait_until


@pytest.fixture(params=QUEUES)
def cluster(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    with running_cluster(tmp_path, request.param, postgres_url, workers=2) as running:
        yield running


def test_users_on_two_nodes_chat_with_receipts_and_groups_span_nodes(cluster: Cluster) -> None:
    alice, bob, carol = cluster.user("alice"), cluster.user("bob"), cluster.user("carol")
    with cluster.client(alice, "n1") as a, cluster.client(bob, "n2") as b, cluster.client(carol, "n1") as c:
        for client in (a, b, c):
            client.wait_synced(timeout=15)
        out = a.send(bob, "across nodes")
        message = next(iter(b.messages(timeout=15)))
        assert message.text == "across nodes"
        out.wait("delivered", timeout=15)
        b.mark_read(message)
        out.wait("read", timeout=15)

        reply = b.send(alice, "back to node 1")
        assert next(iter(a.messages(timeout=15))).text == "back to node 1"
        reply.wait("delivered", timeout=15)

        group = a.create_group("spanning", [bob, carol], timeout=15)
        sent = b.send(group.id, "hello both nodes")
        assert next(iter(a.messages(timeout=15))).text == "hello both nodes"
        assert next(iter(c.messages(timeout=15))).text == "hello both nodes"
        sent.wait("delivered", timeout=15)
        assert sent.receipts == {alice: Status.DELIVERED, carol: Status.DELIVERED}

        # presence crosses nodes too
        a.watch_presence(bob)
        assert a.wait_presence(bob, "online", timeout=15).online


def test_a_dead_nodes_users_go_offline_and_catch_up_on_another_node(cluster: Cluster) -> None:
    alice, bob = cluster.user("alice"), cluster.user("bob")
    with cluster.client(alice, "n1") as a:
        a.wait_synced(timeout=15)
        a.send(bob, "hi").wait("sent", timeout=15)  # contacts see each other's presence
        a.watch_presence(bob)
        b = cluster.client(bob, "n2", reconnect=False)
        b.connect()
        b.wait_synced(timeout=15)
        a.wait_presence(bob, "online", timeout=15)
        cursor = b.cursor

        # When node 2 dies without a word
        cluster.kill("n2")

        # Then bob goes offline for alice within the node's time to live
        offline = a.wait_presence(bob, "offline", timeout=NODE_TTL * 5)
        assert not offline.online
        b.close()

        # And what alice sends meanwhile reaches bob when he comes back on node 1
        for i in range(3):
            a.send(bob, f"while you were away {i}").wait("sent", timeout=15)
        with cluster.client(bob, "n1", cursor=cursor) as back:
            back.wait_synced(timeout=15)
            assert [m.text for m in back.messages(timeout=3)] == [
                f"while you were away {i}" for i in range(3)
            ]


def test_a_device_signed_out_through_one_node_is_cut_off_on_another_at_once(cluster: Cluster) -> None:
    # Given alice's phone on n2 (a token bound to it) and her laptop on n1
    alice, bob = cluster.user("alice"), cluster.user("bob")
    phone_token = cluster.device_token(alice, "phone")
    phone = Client(
        "127.0.0.1", cluster.ports["n2"], user=alice, token=phone_token, device="phone", reconnect=False
    )
    with phone, cluster.client(alice, "n1", device="laptop") as laptop, cluster.client(bob, "n2") as b:
        for client in (phone, laptop, b):
            client.wait_synced(timeout=15)

        # When the admin signs the phone out through n1's admin API
        status, answer = cluster.admin("n1", "DELETE", f"/users/{alice}/devices/phone")

        # Then n2 closes the phone's connection at once (well before its sweep of sign-outs), and
        # the laptop, on n1, keeps chatting with bob on n2
        assert (status, answer["revoked"]) == (200, 1)
        assert wait_until(lambda: not phone.connected, timeout=SIGN_OUT_SWEEP / 4), cluster.report()
        laptop.send(bob, "still connected").wait("delivered", timeout=15)
        assert next(iter(b.messages(timeout=15))).text == "still connected"
