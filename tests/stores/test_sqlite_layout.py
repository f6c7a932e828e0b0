"""SQLite: a database whose ``receipts`` is a rowid table (as every database was before the table was
kept in key order) gets it rebuilt ``WITHOUT ROWID`` at start, with its rows, and everything that
reads or names the table goes on working: receipts, the search index's trigger, the cascade of a
deleted message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from client_sdk.contract import Status
from workers.stores import open_store
from workers.stores.records import ReceiptRequest
from workers.stores.sql.sqlite_layout import clustered_tables

# ``receipts`` as SQLAlchemy created it before (a rowid table and the index of its primary key)
_OLD_RECEIPTS = (
    "CREATE TABLE receipts ("
    " message_id VARCHAR(32) NOT NULL, user_id VARCHAR(64) NOT NULL, status SMALLINT NOT NULL,"
    " delivered_at FLOAT, read_at FLOAT,"
    " CONSTRAINT pk_receipts PRIMARY KEY (message_id, user_id),"
    " FOREIGN KEY(message_id) REFERENCES messages (id) ON DELETE CASCADE)"
)


def _table_sql(path: Path, name: str) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("SELECT sql FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0])
    finally:
        db.close()


def _old_database(path: Path) -> None:
    store = open_store(f"sqlite:///{path}")
    store.create_schema()
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE receipts")
    db.execute(_OLD_RECEIPTS)
    db.commit()
    db.close()


def test_the_schema_keeps_receipts_in_key_order() -> None:
    assert {table.name for table in clustered_tables()} >= {"receipts", "chat_members"}


def test_an_old_database_gets_its_receipts_rebuilt_with_their_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path)
    assert "WITHOUT ROWID" not in _table_sql(path, "receipts")
    store = open_store(f"sqlite:///{path}")  # the old layout, as a process from before ran it
    try:
        for user in ("ann", "bob", "cy"):
            store.create_user(user, now=1.0)
        first = store.accept_message(sender="ann", command_id="c1", recipient="bob", text="hello", now=2.0)
        second = store.accept_message(sender="ann", command_id="c2", recipient="cy", text="hi cy", now=3.0)
        store.apply_receipts(user="bob", status=Status.DELIVERED, message_ids=[first.message.id], now=4.0)
    finally:
        store.close()

    store = open_store(f"sqlite:///{path}")
    try:
        store.create_schema()
        assert "WITHOUT ROWID" in _table_sql(path, "receipts")
        # the trigger of the search index still names the table by its name
        assert "FROM receipts WHERE" in _table_sql(path, "message_fts_forget_indexed")
        db = sqlite3.connect(path)
        rows = db.execute("SELECT message_id, user_id, status, delivered_at FROM receipts ORDER BY 2")
        rows = rows.fetchall()
        db.close()
        assert rows == [
            (first.message.id, "bob", int(Status.DELIVERED), 4.0),
            (second.message.id, "cy", int(Status.SENT), None),
        ]
        # statuses move forward from where they were, in one go and one by one
        results = store.apply_receipts_of([ReceiptRequest("bob", Status.READ, [first.message.id])], now=5.0)
        assert results is not None
        forwarded = [e for e in results[0].entries if e.payload["type"] == "receipt"]
        assert [(e.user, e.payload["status"]) for e in forwarded] == [("ann", "read")]
        single = store.apply_receipts(
            user="cy", status=Status.DELIVERED, message_ids=[second.message.id], now=6.0
        )
        assert [(e.user, e.payload["status"]) for e in single.entries] == [("ann", "delivered")]
        assert [
            m["id"]
            for m in store.search_messages(
                user="cy", query="hi", conversation=None, before=None, limit=10
            ).hits
        ] == [second.message.id]
    finally:
        store.close()

    # a message that goes takes its receipts and its search tokens with it (the cascade, the trigger)
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("DELETE FROM messages WHERE id = ?", (second.message.id,))
    db.commit()
    assert db.execute("SELECT count(*) FROM receipts").fetchone() == (1,)
    db.close()

    store = open_store(f"sqlite:///{path}")  # a second start has nothing to rebuild
    try:
        store.create_schema()
        found = store.search_messages(user="cy", query="hi", conversation=None, before=None, limit=10)
        assert found.hits == []
    finally:
        store.close()
