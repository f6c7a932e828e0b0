"""Operators' endpoints: health and Prometheus metrics on the node's HTTP port and a worker's."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.harness import RunningNode
from tests.plain import PlainClient


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_health_and_metrics_of_a_node(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice, bob = PlainClient(node.port, alice_id, alice_token), PlainClient(node.port, bob_id, bob_token)
    alice.inbox()
    bob.inbox()
    alice.send(bob_id, "counted")
    bob.expect_type("message")
    alice.publish(b"not json")
    alice.expect_type("error")

    status, body = get(f"http://127.0.0.1:{node.node.http_port}/healthz")
    health = json.loads(body)
    assert (
        status == 200
        and health["status"] == "ok"
        and health["connections"] >= 2
        and health["users_online"] >= 2
    )

    _, metrics = get(f"http://127.0.0.1:{node.node.http_port}/metrics")
    assert 'mqchat_commands_total{type="send"}' in metrics
    assert 'mqchat_commands_refused_total{code="bad_json"}' in metrics
    assert "mqchat_delivery_latency_seconds_count" in metrics
    assert "mqchat_connected_users" in metrics and "mqchat_job_queue_depth" in metrics
    alice.close()
    bob.close()


def test_health_of_a_worker() -> None:
    from workers.health import HealthServer

    healthy = HealthServer("127.0.0.1", 0, lambda: {"role": "worker"})
    healthy.start()
    try:
        status, body = get(f"http://127.0.0.1:{healthy.port}/healthz")
        assert status == 200 and json.loads(body) == {"status": "ok", "role": "worker"}
        assert "python_info" in get(f"http://127.0.0.1:{healthy.port}/metrics")[1]
    finally:
        healthy.close()

    def broken() -> dict[str, object]:
        raise RuntimeError("no live worker thread")

    sick = HealthServer("127.0.0.1", 0, broken)
    sick.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as excinfo:
            get(f"http://127.0.0.1:{sick.port}/healthz")
        assert excinfo.value.code == 503
        assert json.loads(excinfo.value.read())["error"] == "no live worker thread"
    finally:
        sick.close()
