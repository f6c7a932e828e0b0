"""Persistent sessions across nodes (two `mqchat node`s and a `mqchat worker` on Redis and
PostgreSQL): a device's session made on n1 (MQTT 3.1.1 clean session 0, or MQTT 5 with a Session
Expiry Interval) is resumed on n2 with what it missed, once, in order,
and then after n2 restarts. Run under ``flock /tmp/mqchat-cluster.lock`` (Redis db 13 is shared)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster
from tests.integration.test_persistent_sessions import Persistent, _group, _send_all, _texts
from tests.plain import PlainClient


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


@pytest.mark.parametrize("expiry", [None, 3600], ids=["mqtt311-clean-session-0", "mqtt5-session-expiry"])
def test_a_session_made_on_one_node_is_resumed_on_the_other_and_after_its_restart(
    cluster: Cluster, expiry: int | None
) -> None:
    alice, bob, carol = cluster.user("alice"), cluster.user("bob"), cluster.user("carol")
    writer = PlainClient(cluster.ports["n1"], alice, cluster.tokens[alice], device="phone")
    writer.inbox()
    try:
        # Given bob's device made its session on n1, and is away while alice writes (group and 1-on-1)
        device = Persistent(cluster.ports["n1"], bob, cluster.tokens[bob], "meter", expiry=expiry)
        assert not device.session_present
        device.close()
        group = _group(writer, [bob, carol])
        _send_all(writer, group, ["group 1", "group 2"])
        _send_all(writer, bob, ["direct"])

        # When it connects to n2
        device = Persistent(cluster.ports["n2"], bob, cluster.tokens[bob], "meter", expiry=expiry)

        # Then n2 resumes it from the store: everything, once, in order; then live ones
        assert device.session_present
        events = device.take(5, timeout=20)
        assert _texts(events) == [f"hello {bob}", "group 1", "group 2", "direct"]
        assert [e["cursor"] for e in events] == list(range(events[0]["cursor"], events[0]["cursor"] + 5))
        _send_all(writer, bob, ["live on n2"])
        assert _texts(device.take(1, timeout=20)) == ["live on n2"]
        assert device.quiet(1.0) == []
        device.close()

        # And after n2 restarts (a clean stop writes the cursors), only what came since
        cluster.restart("n2")
        _send_all(writer, bob, ["after restart"])
        device = Persistent(cluster.ports["n2"], bob, cluster.tokens[bob], "meter", expiry=expiry)
        assert device.session_present
        assert _texts(device.take(1, timeout=20)) == ["after restart"]
        assert device.quiet(1.0) == []
        device.close()
    finally:
        writer.close()
