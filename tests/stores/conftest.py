"""The store fixture: every store test runs on SQLite, on the PostgreSQL server of this machine and on
MongoDB (SecantusDB, a MongoDB-wire-compatible server from PyPI, started once per session)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.harness import need, unique
from workers.stores import Store, open_store

EXTERNAL_MONGO = os.environ.get("MQCHAT_TEST_MONGO", "")
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_START_TIMEOUT = 30.0


@dataclass
class MongoServer:
    """A SecantusDB server in a child process on a free port of 127.0.0.1."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def url(self, database: str, **options: str | int) -> str:
        query = "&".join(f"{key}={value}" for key, value in options.items())
        return f"mongodb://127.0.0.1:{self.port}/{database}" + (f"?{query}" if query else "")

    def stop(self) -> None:
        """Kill it: its data is scratch, and a graceful stop waits 2 s for its accept thread."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def start_mongo_server(folder: Path, *extra: str) -> MongoServer | None:
    """Start SecantusDB on port 0 (it logs the port it got); None when it cannot start."""
    if importlib.util.find_spec("secantus") is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "secantus",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--storage-path",
                str(folder / "data"),
                "--log-level",
                "INFO",
                *extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,  # it looks for a secantusd.toml in the working directory
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline and process.poll() is None:
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            return MongoServer(process, int(found.group(1)), log)
        time.sleep(0.02)
    MongoServer(process, 0, log).stop()
    return None


@pytest.fixture(scope="session")
def mongo_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mongodb://host:port`` of the server for the store tests: $MQCHAT_TEST_MONGO (say, a real
    mongod replica set) or else a SecantusDB server started for the session."""
    if EXTERNAL_MONGO:
        yield EXTERNAL_MONGO.rstrip("/")
        return
    folder = tmp_path_factory.mktemp("secantus")
    server = start_mongo_server(folder)
    if server is None:
        log = folder / "server.log"
        why = log.read_text(errors="replace")[-2000:] if log.exists() else "secantusdb is not installed"
        need(False, f"the MongoDB-compatible test server (secantusdb) did not start: {why}")
    assert server is not None
    try:
        yield server.url("").rstrip("/")
    finally:
        server.stop()


@pytest.fixture
def mongo_url(mongo_server_url: str) -> Iterator[str]:
    """A database of its own for each test, dropped after it."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{mongo_server_url}/{database}?serverSelectionTimeoutMS=5000"
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_server_url, serverSelectionTimeoutMS=2000)
    with client:
        client.drop_database(database)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mongo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = request.getfixturevalue("mongo_url")
    opened = open_store(url)
    opened.create_schema()
    try:
        yield opened
    finally:
        opened.close()


def users(store: Store, *names: str) -> list[str]:
    made = []
    for name in names:
        user = unique(name)
        store.create_user(user, now=1.0)
        made.append(user)
    return made
