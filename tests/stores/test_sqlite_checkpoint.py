"""A SQLite store checkpoints its write-ahead log from a thread of its own, never in a commit."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from tests.harness import wait_until
from workers.stores import open_store
from workers.stores.sql import sqlite_checkpoint
from workers.stores.sql.base import SQLITE_CACHE_KIB, SqlBase


def _checkpoint_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "mqchat-sqlite-checkpoint"}


def test_commits_never_checkpoint_and_the_thread_does(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    before = _checkpoint_threads()
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqlBase)
    try:
        store.create_schema()
        for user in ("ann", "bob"):
            store.create_user(user, now=0.0)
        with store.engine.connect() as conn:  # every pooled connection: no checkpoint on commit
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
        for start in range(0, 600, 50):
            with store.batch():
                for i in range(start, start + 50):
                    store.accept_message(
                        sender="ann", command_id=f"c{i}", recipient="bob", text="hi", now=1.0
                    )
        checkpointer = store._checkpointer
        assert checkpointer is not None and checkpointer.running
        assert wait_until(lambda: checkpointer.checkpoints > 0)
    finally:
        store.close()
    assert _checkpoint_threads() <= before
    # what was committed is all in the database, and the log holds nothing left to copy
    with sqlite3.connect(path) as db:
        busy, frames, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, frames) == (0, copied)
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 600


def test_only_a_store_that_writes_batches_checkpoints(tmp_path: Path) -> None:
    before = _checkpoint_threads()
    store = open_store(f"sqlite:///{tmp_path / 'cli.db'}")
    store.create_schema()
    store.create_user("ann", now=0.0)  # as `mqchat users add`, or a node whose commands run in a child
    assert _checkpoint_threads() <= before
    with store.batch():
        store.create_user("bob", now=0.0)
    assert _checkpoint_threads() - before  # the writer of commands
    store.close()
    assert _checkpoint_threads() <= before


def test_an_in_memory_store_has_no_log_to_checkpoint() -> None:
    store = open_store("sqlite://")
    assert isinstance(store, SqlBase)
    store.create_schema()
    assert store._checkpointer is None
    store.close()


def test_under_steady_writes_the_log_starts_over_instead_of_growing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a checkpoint that leaves more than 200 pages behind finishes them while the writer waits
    monkeypatch.setattr(sqlite_checkpoint, "FINISH_ABOVE_FRAMES", 200)
    path = tmp_path / "store.db"
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqlBase)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    checkpointer._interval = 0.01
    try:
        store.create_schema()
        for user in ("ann", "bob"):
            store.create_user(user, now=0.0)
        for i in range(3000):  # one commit after another, no pause for a checkpoint to catch up
            with store.batch():
                store.accept_message(
                    sender="ann", command_id=f"c{i}", recipient="bob", text="x" * 500, now=1.0
                )
        assert checkpointer.finished > 0
        # the log started over again and again: its file is a fraction of what was written through
        # it (these commits take a log that never starts over past 150 MiB). How often it starts
        # over depends on how often the checkpoint thread gets the CPU, so the bound leaves room
        # for a busy machine.
        assert Path(f"{path}-wal").stat().st_size < 32 * 1024 * 1024
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 3000
