"""The SQL store's indexes: the look-up of a resent message's ``sent`` entry uses the inbox index
that holds only ``sent`` entries (a partial index: the other entries, two in three, cost no index
insert when they are written), keyed by the message alone; a database from before, whose index was
keyed by user first, gets the new one at start and loses the old."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.harness import unique
from workers.stores import open_store
from workers.stores.sql.messages import _SENT_ENTRY


def _created(url: str) -> None:
    store = open_store(url)
    try:
        store.create_schema()
    finally:
        store.close()


# the index as a database from before has it
_OLD_INDEX = "CREATE INDEX ix_inbox_user_message ON inbox (user_id, message_id) WHERE kind = 'sent'"


def _made_old(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_inbox_sent_message"))
        conn.execute(text(_OLD_INDEX))
    engine.dispose()


def test_the_sent_entry_look_up_uses_the_partial_index_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _created(url)
    _made_old(url)
    _created(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        definition = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = 'ix_inbox_sent_message'")
        ).scalar_one()
        inbox_indexes = (
            conn.execute(
                text(
                    "SELECT name FROM sqlite_master"
                    " WHERE type = 'index' AND tbl_name = 'inbox' AND sql IS NOT NULL"
                )
            )
            .scalars()
            .all()
        )
        sql = _SENT_ENTRY.sql(conn.dialect, {"b_user": "u", "b_message": "m"})
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("u", "m")).fetchall()
    engine.dispose()
    assert definition.endswith("WHERE kind = 'sent'")
    assert inbox_indexes == ["ix_inbox_sent_message"]
    assert "USING INDEX ix_inbox_sent_message (message_id=?)" in plan[0][-1]


@pytest.mark.postgres
def test_the_sent_entry_index_is_partial_on_postgresql(postgres_url: str) -> None:
    # a schema of its own: the shared test database keeps the tables of earlier runs
    schema = unique("indexes").replace("-", "_")
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        _created(url)
        _made_old(url)
        _created(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            inbox_indexes = (
                conn.execute(
                    text("SELECT indexname FROM pg_indexes WHERE tablename = 'inbox' AND schemaname = :s"),
                    {"s": schema},
                )
                .scalars()
                .all()
            )
            definition = conn.execute(
                text(
                    "SELECT indexdef FROM pg_indexes"
                    " WHERE indexname = 'ix_inbox_sent_message' AND schemaname = :s"
                ),
                {"s": schema},
            ).scalar_one()
            sql = _SENT_ENTRY.sql(conn.dialect, {"b_user": "u", "b_message": "m"})
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: whether it can use it
            plan = conn.exec_driver_sql(f"EXPLAIN {sql}", {"b_user": "u", "b_message": "m"}).fetchall()
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    assert definition.endswith("WHERE ((kind)::text = 'sent'::text)")
    assert sorted(inbox_indexes) == ["ix_inbox_sent_message", "pk_inbox"]
    assert any("ix_inbox_sent_message" in row[0] for row in plan)
