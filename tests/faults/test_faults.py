"""The fault suite: messages keep flowing while, in turn, a worker is killed mid-job, a node is
restarted, Redis (jobs and sessions) restarts empty, and PostgreSQL is briefly down. Afterwards
every message its sender saw as *sent* is stored once and delivered once, in order, to its
recipient, and reaches *delivered*. The counts are printed."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Message, OutgoingMessage, Status
from tests.cluster import Cluster, _reachable
from tests.harness import need

PAIRS = 6
PER_SENDER = 200
SEND_INTERVAL = 0.04  # about 150 messages/s in all, for ~8 s: the faults land mid-stream


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


@pytest.mark.timeout(400)
def test_nothing_accepted_is_lost_or_duplicated_under_faults(cluster: Cluster) -> None:
    senders = [cluster.user(f"s{i}") for i in range(PAIRS)]
    recipients = [cluster.user(f"r{i}") for i in range(PAIRS)]
    # senders on one node, their recipients on the other, half each way
    homes = {u: ("n1" if i % 2 == 0 else "n2") for i, u in enumerate(senders)}
    homes |= {r: ("n2" if i % 2 == 0 else "n1") for i, r in enumerate(recipients)}
    clients = {u: cluster.client(u, homes[u]) for u in senders + recipients}
    for client in clients.values():
        client.connect()
        client.wait_synced(timeout=30)

    received: dict[str, list[Message]] = {r: [] for r in recipients}
    stop_reading = threading.Event()

    def read(user: str) -> None:
        while not stop_reading.is_set():
            received[user].extend(clients[user].messages(timeout=0.5))

    outgoing: dict[str, list[OutgoingMessage]] = {s: [] for s in senders}

    def send(sender: str, recipient: str) -> None:
        for i in range(PER_SENDER):
            outgoing[sender].append(clients[sender].send(recipient, f"{sender}:{i}"))
            time.sleep(SEND_INTERVAL)

    readers = [threading.Thread(target=read, args=(r,)) for r in recipients]
    writers = [threading.Thread(target=send, args=pair) for pair in zip(senders, recipients, strict=True)]
    for thread in readers + writers:
        thread.start()

    # the faults, in turn, while messages flow
    time.sleep(1.0)
    cluster.kill("w1")  # a worker dies mid-job
    cluster.worker("w3")
    time.sleep(1.0)
    cluster.restart("n2")  # a node restarts; its clients reconnect to it
    time.sleep(1.5)
    restart_redis()  # jobs queued in Redis and the session service are gone
    time.sleep(1.5)
    pause_postgres(2.0)  # the database is briefly unavailable

    for thread in writers:
        thread.join()
    for sender in senders:
        for out in outgoing[sender]:
            out.wait("sent", timeout=120)

    expected = {r: [f"{s}:{i}" for i in range(PER_SENDER)] for s, r in zip(senders, recipients, strict=True)}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(len(received[r]) < PER_SENDER for r in recipients):
        time.sleep(0.5)
    stop_reading.set()
    for thread in readers:
        thread.join()
    for sender in senders:
        for out in outgoing[sender]:
            out.wait("delivered", timeout=120)

    sent = sum(len(v) for v in outgoing.values())
    stored = sum(1 for v in outgoing.values() for out in v if out.message_id)
    delivered = sum(len(v) for v in received.values())
    duplicates = sum(len(v) - len({m.id for m in v}) for v in received.values())
    lost = sum(len(set(expected[r]) - {m.text for m in received[r]}) for r in recipients)
    print(
        f"\nfault suite: sent={sent} stored={stored} delivered={delivered}"
        f" duplicates={duplicates} lost={lost}"
    )

    assert (stored, duplicates, lost) == (sent, 0, 0)
    for recipient in recipients:
        messages = received[recipient]
        assert sorted(m.text for m in messages) == sorted(expected[recipient])
        assert [m.seq for m in messages] == sorted(m.seq for m in messages)  # in conversation order
        assert [m.seq for m in messages] == list(range(1, PER_SENDER + 1))  # and nothing skipped
    assert all(out.status in (Status.DELIVERED, Status.READ) for v in outgoing.values() for out in v)
    for client in clients.values():
        client.close()
