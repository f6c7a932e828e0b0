"""The fault suite: messages keep flowing while, in turn, a worker is killed mid-job, a node is
restarted, Redis (jobs and locator) restarts empty, and PostgreSQL is briefly down; and, with the
jobs on RabbitMQ, while RabbitMQ restarts with thousands of messages in flight. Afterwards every
message its sender saw as *sent* is stored once and delivered once, in order, to its recipient,
and reaches *delivered*. The counts are printed.

Everything runs on this machine, on loopback: the machine's Redis and PostgreSQL, and a RabbitMQ
server of the suite's own (tests/faults/rabbitmq.py) that it may stop at will."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster import Cluster, _reachable
from tests.faults.rabbitmq import PrivateRabbit, rabbitmq_server
from tests.faults.traffic import Traffic
from tests.harness import need

PAIRS = 6
PER_SENDER = 200
SEND_INTERVAL = 0.04  # about 150 messages/s in all, for ~8 s: the faults land mid-stream
RABBIT_PER_SENDER = 400
RABBIT_SEND_INTERVAL = 0.01  # 2,400 messages in about 5 s: the restart lands in the second half


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=60)


def restart_redis() -> None:
    """Stop the machine's Redis without saving, and start it again empty (as CI's machine does)."""
    subprocess.run(["redis-cli", "shutdown", "nosave"], capture_output=True, timeout=30)
    _run(
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        "6379",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        "/var/lib/redis",
        "--logfile",
        "/var/log/redis/ci.log",
    )
    deadline = time.monotonic() + 20
    while not _reachable(6379):
        assert time.monotonic() < deadline, "Redis did not come back"
        time.sleep(0.1)


def _cluster_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[0]


def pause_postgres(seconds: float) -> None:
    version = _cluster_version()
    _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop", "-m", "fast")
    try:
        time.sleep(seconds)
    finally:
        _run("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start")


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    need(
        shutil.which("redis-server") is not None and shutil.which("redis-cli") is not None,
        "Redis is not installed",
    )
    need(
        shutil.which("pg_ctlcluster") is not None and Path("/etc/postgresql").is_dir(),
        "no local PostgreSQL cluster",
    )
    running = Cluster(tmp_path, "redis://127.0.0.1:6379/13", postgres_url)
    try:
        running.node("n1")
        running.node("n2")
        running.worker("w1")
        running.worker("w2")
        yield running
    finally:
        running.close()
        if not _reachable(6379):
            restart_redis()
        if not _reachable(5432):
            _run("pg_ctlcluster", "--skip-systemctl-redirect", _cluster_version(), "main", "start")


@pytest.mark.exclusive  # it stops the machine's Redis and PostgreSQL, which the other tests use
@pytest.mark.timeout(400)
def test_nothing_accepted_is_lost_or_duplicated_under_faults(cluster: Cluster) -> None:
    traffic = Traffic(cluster, pairs=PAIRS, per_sender=PER_SENDER, interval=SEND_INTERVAL)
    try:
        traffic.connect()
        traffic.start()
        # the faults, in turn, while messages flow
        time.sleep(1.0)
        cluster.kill("w1")  # a worker dies mid-job
        cluster.worker("w3")
        time.sleep(1.0)
        cluster.restart("n2")  # a node restarts; its clients reconnect to it
        time.sleep(1.5)
        restart_redis()  # jobs queued in Redis and the locator are gone
        time.sleep(1.5)
        pause_postgres(2.0)  # the database is briefly unavailable
        traffic.finish("fault suite")
    finally:
        traffic.close()


@pytest.fixture
def rabbit_cluster(tmp_path: Path, postgres_url: str) -> Iterator[tuple[Cluster, PrivateRabbit]]:
    """Two nodes and two workers whose jobs go through a RabbitMQ server of the test's own."""
    need(rabbitmq_server() is not None, "RabbitMQ (rabbitmq-server) is not installed")
    rabbit = PrivateRabbit(tmp_path / "rabbitmq")
    rabbit.start()
    running: Cluster | None = None
    try:
        running = Cluster(tmp_path, rabbit.url, postgres_url)
        running.node("n1")
        running.node("n2")
        running.worker("w1")
        running.worker("w2")
        yield running, rabbit
    finally:
        if running is not None:
            running.close()
        rabbit.stop()


@pytest.mark.timeout(300)
def test_a_rabbitmq_restart_with_thousands_of_messages_in_flight_loses_and_duplicates_nothing(
    rabbit_cluster: tuple[Cluster, PrivateRabbit],
) -> None:
    cluster, rabbit = rabbit_cluster
    traffic = Traffic(cluster, pairs=PAIRS, per_sender=RABBIT_PER_SENDER, interval=RABBIT_SEND_INTERVAL)
    total = PAIRS * RABBIT_PER_SENDER
    try:
        # Given the workers are frozen mid-stream, so that what the nodes accept piles up in RabbitMQ
        # (queued, or handed to a worker and not yet acknowledged)
        traffic.connect()
        for worker in ("w1", "w2"):
            cluster.pause(worker)
        traffic.start()
        deadline = time.monotonic() + 60
        while traffic.sent_so_far() < total // 2:
            assert time.monotonic() < deadline, "the senders did not get going"
            time.sleep(0.05)
        time.sleep(0.5)  # the nodes have enqueued what they took
        in_flight = traffic.in_flight()

        # When RabbitMQ stops and starts again while the senders go on (the nodes cannot enqueue
        # meanwhile), and only then the workers wake, their connections gone, their jobs unacknowledged
        rabbit.restart()
        for worker in ("w1", "w2"):
            cluster.resume(worker)

        # Then every accepted message is stored once and delivered once, in order
        traffic.finish(f"fault suite, RabbitMQ restart with {in_flight} messages in flight")
        assert in_flight >= total // 2  # nothing could be stored while the workers were frozen
    finally:
        traffic.close()
