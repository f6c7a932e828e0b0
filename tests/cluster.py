"""Several mqchat processes on the machine's Redis, RabbitMQ and PostgreSQL, for cluster and fault tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.targets import free_port
from client_sdk import Client
from tests.harness import need, unique
from workers.credentials import hash_token, new_token
from workers.stores import Store, open_store

NODE_TTL = 2.0
ADMIN_KEY = "the-cluster-tests-admin-key-0123456789"
SIGN_OUT_SWEEP = 60.0
"""Nodes look for sign-outs recorded by other processes this rarely, so that a device signed out
through one node's admin API is cut off on another by the node-to-node hand-off alone."""


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


QUEUES = ["redis", "rabbitmq"]
"""The job queues a cluster test runs on (a fixture's ``params``)."""


def queue_url(kind: str) -> str:
    """The machine's Redis (db 13) or RabbitMQ as a cluster's job queue; RabbitMQ skips when down."""
    if kind == "redis":
        return "redis://127.0.0.1:6379/13"
    need(_reachable(5672), "RabbitMQ is not running on 127.0.0.1:5672")
    return "amqp://guest:guest@127.0.0.1:5672/%2F"


@contextlib.contextmanager
def running_cluster(tmp: Path, kind: str, store_url: str, *, workers: int = 1) -> Iterator[Cluster]:
    """Nodes ``n1`` and ``n2`` and ``workers`` workers on the job queue ``kind``; the processes'
    last log lines are printed at the end (pytest shows them when the test failed)."""
    running = Cluster(tmp, queue_url(kind), store_url)
    try:
        running.node("n1")
        running.node("n2")
        for n in range(1, workers + 1):
            running.worker(f"w{n}")
        yield running
    finally:
        print(running.report())
        running.close()


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
            f'[locator]\nurl = "redis://127.0.0.1:6379/13"\nnode_ttl = {NODE_TTL}\n'
            f"[presence]\nmin_interval = 0.0\nsign_out_sweep = {SIGN_OUT_SWEEP}\n"
            f'[admin]\nkey = "{ADMIN_KEY}"\n'
            "[media]\nhttp_port = 0\n"
        )
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.logs: dict[str, list[str]] = {}
        self.readers: dict[str, threading.Thread] = {}
        self.ports: dict[str, int] = {}
        self.tokens: dict[str, str] = {}
        self.suffix = unique("c")
        self._schema_made = False

    def _open_store(self) -> Store:
        """The cluster's store; the schema is made by the first call only (tests make several users)."""
        store = open_store(self.store_url)
        if not self._schema_made:
            store.create_schema()
            self._schema_made = True
        return store

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

    def node(self, name: str, port: int | None = None) -> int:
        port = port or free_port()
        self._spawn(name, "node", "--port", str(port), "--no-ws", "--node-id", f"{name}-{self.suffix}")
        self.ports[name] = port
        return port

    def worker(self, name: str) -> None:
        self._spawn(name, "worker")

    def user(self, name: str) -> str:
        store = self._open_store()
        user, token = unique(name), new_token()
        store.create_user(user, now=time.time())
        store.add_credential(user, kind="token", secret_hash=hash_token(token), now=time.time())
        store.close()
        self.tokens[user] = token
        return user

    def device_token(self, user: str, device: str) -> str:
        """A token of ``user`` that logs in only as ``<user>/<device>``."""
        store = self._open_store()
        token = new_token()
        store.add_credential(
            user, kind="token", secret_hash=hash_token(token), now=time.time(), device=device
        )
        store.close()
        return token

    def admin(self, node: str, method: str, path: str) -> tuple[int, Any]:
        """Call node ``name``'s admin HTTP API (``/admin/v1`` + ``path``)."""
        connection = http.client.HTTPConnection("127.0.0.1", self._http_port(node), timeout=15)
        try:
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            connection.request(method, "/admin/v1" + path, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"null")
        finally:
            connection.close()

    def _http_port(self, node: str) -> int:
        """The node's HTTP port, from the line of its banner that says where media is served."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for line in list(self.logs[node]):
                if line.strip().startswith("media "):
                    return int(line.strip().rsplit(":", 1)[1])
            time.sleep(0.05)
        raise AssertionError(f"{node} did not say where its HTTP port is")

    def client(self, user: str, node: str, **kwargs: object) -> Client:
        return Client("127.0.0.1", self.ports[node], user=user, token=self.tokens[user], **kwargs)  # type: ignore[arg-type]

    def restart(self, name: str) -> None:
        """Stop node ``name`` cleanly and start it again on the same port."""
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        self._reap(name, process)
        self.node(name, self.ports[name])

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGKILL)
        self._reap(name, process)

    def pause(self, name: str) -> None:
        """Freeze process ``name`` (SIGSTOP): its connections stay open, it does nothing."""
        self.processes[name].send_signal(signal.SIGSTOP)

    def resume(self, name: str) -> None:
        self.processes[name].send_signal(signal.SIGCONT)

    def report(self) -> str:
        return "\n".join(f"--- {name}\n{''.join(lines[-40:])}" for name, lines in self.logs.items())

    def close(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)  # a paused process could not stop
            process.send_signal(signal.SIGTERM)
        for name, process in self.processes.items():
            self._reap(name, process)
