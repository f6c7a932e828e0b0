"""Several processes: two `mqchat node`s and two `mqchat worker`s on Redis (sessions) and on Redis
or RabbitMQ (jobs), PostgreSQL (messages). Users on different nodes chat, groups span nodes, and
the users of a node that dies go offline and catch up on another node."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Client, Status
from tests.harness import need, unique
from workers.credentials import hash_token, new_token
from workers.stores import open_store

NODE_TTL = 2.0


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, tmp: Path, queue_url: str, store_url: str) -> None:
        need(_reachable(6379), "Redis is not running on 127.0.0.1:6379")
        import redis

        redis.Redis(db=13).flushdb()
        self.store_url = store_url
        self.config = tmp / "cluster.toml"
        self.config.write_text(
            f'data_dir = "{tmp}"\n'
            f'[store]\nurl = "{store_url}"\n'
            f'[workers]\nqueue_url = "{queue_url}"\n'
            f'[sessions]\nurl = "redis://127.0.0.1:6379/13"\nnode_ttl = {NODE_TTL}\n'
            "[presence]\nmin_interval = 0.0\n"
            "[media]\nhttp_port = 0\n"
        )
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.logs: dict[str, list[str]] = {}
        self.readers: dict[str, threading.Thread] = {}
        self.ports: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        self.suffix = unique("c")

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "broker.cli", "--config", str(self.config), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ},
        )
        assert process.stdout is not None
        self.processes[name] = process
        seen = []
        while not seen or "running" not in seen[-1]:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"{name} did not start:\n{''.join(seen)}")
            seen.append(line)
        # keep reading, so a chatty process never blocks on a full pipe; kept for failure reports
        self.logs[name] = seen
        reader = threading.Thread(target=lambda: seen.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
        reader.start()
        self.readers[name] = reader
        return process

    def _reap(self, name: str, process: subprocess.Popen[str]) -> None:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.readers[name].join(10)
        assert process.stdout is not None
        process.stdout.close()

    def node(self, name: str) -> int:
        port = _free_port()
        self._spawn(name, "node", "--port", str(port), "--no-ws", "--node-id", f"{name}-{self.suffix}")
        self.ports[name] = port
        return port

    def worker(self, name: str) -> None:
        self._spawn(name, "worker")

    def user(self, name: str) -> str:
        store = open_store(self.store_url)
        store.create_schema()
        user, token = unique(name), new_token()
        store.create_user(user, now=time.time())
        store.add_credential(user, kind="token", secret_hash=hash_token(token), now=time.time())
        store.close()
        self.tokens[user] = token
        return user

    def client(self, user: str, node: str, **kwargs: object) -> Client:
        return Client("127.0.0.1", self.ports[node], user=user, token=self.tokens[user], **kwargs)  # type: ignore[arg-type]

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        self._reap(name, process)

    def report(self) -> str:
        return "\n".join(f"--- {name}\n{''.join(lines[-40:])}" for name, lines in self.logs.items())

    def close(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            self._reap(name, process)


@pytest.fixture(params=["redis", "rabbitmq"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    if request.param == "redis":
        queue_url = "redis://127.0.0.1:6379/13"
    else:
        need(_reachable(5672), "RabbitMQ is not running on 127.0.0.1:5672")
        queue_url = "amqp://guest:guest@127.0.0.1:5672/%2F"
    running = Cluster(tmp_path, queue_url, postgres_url)
    try:
        running.node("n1")
        running.node("n2")
        running.worker("w1")
        running.worker("w2")
        yield running
    finally:
        print(running.report())  # pytest shows it when the test failed
        running.close()


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
