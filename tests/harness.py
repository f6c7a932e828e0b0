"""Test helpers: a real node on free ports in a background event loop, and unique users."""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from broker.node import Node
from client_sdk import Client
from config.settings import Settings
from workers.credentials import hash_password, hash_token, new_token

T = TypeVar("T")

IN_CI = bool(os.environ.get("CI"))


def need(condition: bool, reason: str) -> None:
    """Skip locally when a service is missing; fail in CI, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


_TEMPLATE: list[Path] = []


def empty_sqlite_store(path: Path) -> None:
    """Put at ``path`` (unless a file is there) a SQLite store with its schema and nothing in it: a
    copy of one this process made once, because creating the schema is most of the time a test
    node takes to start. What a fresh file would get is still made and checked: by that first
    creation, by the node's own (idempotent) ``create_schema`` on the copy, and by the tests that
    start from an empty data directory without this harness (CLI, fresh install, cluster)."""
    if path.exists():
        return
    if not _TEMPLATE:
        from workers.stores import open_store

        folder = Path(tempfile.mkdtemp(prefix="mqchat-schema-"))
        atexit.register(shutil.rmtree, folder, True)
        store = open_store(f"sqlite:///{folder / 'template.db'}")
        try:
            store.create_schema()
        finally:
            store.close()
        assert not (folder / "template.db-wal").exists(), "the template's log was not written back"
        _TEMPLATE.append(folder / "template.db")
    shutil.copyfile(_TEMPLATE[0], path)


class RunningNode:
    """A Node running on its own event loop thread, for synchronous tests with the real SDK."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.node = Node(settings)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-node-loop", daemon=True)
        self._thread.start()
        self.tokens: dict[str, str] = {}

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> RunningNode:
        if not self.settings.store.url and self.settings.data_dir.is_dir():
            empty_sqlite_store(self.settings.data_dir / "mqchat.db")
        self.call(self.node.start())
        return self

    def stop(self) -> None:
        self.call(self.node.stop())

    def close(self) -> None:
        if self.node.running:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    @property
    def port(self) -> int:
        return self.node.mqtt_port

    @property
    def ws_port(self) -> int:
        port = self.node.ws_port
        assert port is not None
        return port

    @property
    def media_url(self) -> str:
        return f"{self.node.http.scheme if self.node.http else 'http'}://127.0.0.1:{self.node.http_port}"

    def add_user(self, name: str | None = None, *, password: str | None = None) -> tuple[str, str]:
        """A new user (unique name) and a token for it."""
        user = unique(name or "user")
        store = self.node.store
        assert store is not None
        now = time.time()
        store.create_user(user, now=now)
        token = new_token()
        store.add_credential(user, kind="token", secret_hash=hash_token(token), now=now)
        if password is not None:
            store.add_credential(user, kind="password", secret_hash=hash_password(password), now=now)
        self.tokens[user] = token
        return user, token

    def make_contacts(self, a: str, b: str) -> None:
        """Store a message from ``a`` to ``b``: each may then see the other's presence."""
        store = self.node.store
        assert store is not None
        store.accept_message(sender=a, command_id=unique("hello"), recipient=b, text="hello", now=time.time())


@contextmanager
def connect(node: RunningNode, user: str, **kwargs: Any) -> Iterator[Client]:
    """A connected SDK client of ``user`` (``kwargs`` go to ``Client``) that has caught up with its
    inbox."""
    with Client("127.0.0.1", node.port, user=user, token=node.tokens[user], **kwargs) as client:
        client.wait_synced(timeout=10)
        yield client


def node_settings(data_dir: Path, **overrides: Any) -> Settings:
    base = {
        "broker.host": "127.0.0.1",
        "broker.mqtt_port": 0,
        "broker.ws_port": 0,
        "media.http_port": 0,
        "presence.min_interval": 0.0,
    }
    base.update(overrides)
    return Settings(data_dir=data_dir).with_overrides(**base)


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
