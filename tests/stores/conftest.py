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

from tests.harness import empty_sqlite_store, need, unique
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


@pytest.fixture(scope="session")
def emptied_mongo_databases(mongo_server_url: str) -> Iterator[list[str]]:
    """Databases of the ``store`` fixture's earlier tests: their collections and indexes made,
    every document deleted. Making them is most of a MongoDB store test's time (a collection and
    its indexes at a time); emptying one is a fraction of that. Dropped at the end."""
    emptied: list[str] = []
    yield emptied
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(mongo_server_url, serverSelectionTimeoutMS=2000)
    with client:
        for database in emptied:
            client.drop_database(database)


def _reuse_or_drop(server_url: str, database: str, emptied: list[str]) -> None:
    """Empty ``database`` for the next test if it has exactly the store's collections (so no test
    left its own there), else drop it."""
    from pymongo import MongoClient

    from workers.stores.mongo.schema import COLLECTIONS

    client: MongoClient[dict[str, Any]] = MongoClient(server_url, serverSelectionTimeoutMS=2000)
    with client:
        db = client[database]
        if set(db.list_collection_names()) != set(COLLECTIONS):
            client.drop_database(database)
            return
        for name in COLLECTIONS:
            db[name].delete_many({})
    emptied.append(database)


_POSTGRES_SCHEMA_MADE: list[bool] = []
"""Whether this process has made the schema in its PostgreSQL database since a test last failed."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mongo"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An open store with its schema. Each test gets an empty one on SQLite (a copy of an empty
    file with the schema) and on MongoDB (a database of its own, or one an earlier test left,
    emptied); on PostgreSQL it shares the database of its process (users are unique), whose schema
    is made by the first test of the process and again after a test failed (it may have left the
    schema half changed)."""
    failed_before = request.session.testsfailed
    server, database = "", ""
    if request.param == "sqlite":
        empty_sqlite_store(tmp_path / "store.db")
        opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    elif request.param == "postgres":
        opened = open_store(request.getfixturevalue("postgres_url"))
        if not _POSTGRES_SCHEMA_MADE:
            opened.create_schema()
            _POSTGRES_SCHEMA_MADE.append(True)
    else:
        server = request.getfixturevalue("mongo_server_url")
        emptied: list[str] = request.getfixturevalue("emptied_mongo_databases")
        reused = bool(emptied)
        database = emptied.pop() if reused else f"t_{uuid.uuid4().hex[:12]}"
        opened = open_store(f"{server}/{database}?serverSelectionTimeoutMS=5000")
        if not reused:
            opened.create_schema()
    try:
        yield opened
    finally:
        opened.close()
        if request.session.testsfailed != failed_before:
            _POSTGRES_SCHEMA_MADE.clear()
        if server:
            _reuse_or_drop(server, database, emptied)


def users(store: Store, *names: str) -> list[str]:
    made = []
    for name in names:
        user = unique(name)
        store.create_user(user, now=1.0)
        made.append(user)
    return made
