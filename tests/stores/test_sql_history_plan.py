"""The SQL plans of a history page: the page is read by the unique ``(conversation_id, seq)``
index in the direction asked (no sort, no scan of the table), on SQLite and PostgreSQL, for a
1-on-1 chat and for a group (where each message's visibility is a probe of ``pk_receipts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.harness import unique
from tests.stores.test_sql_indexes import _created
from workers.stores.sql.history import _PAGES

PARAMS: dict[str, Any] = {
    "b_conversation": "dm:a:b",
    "b_viewer": "a",
    "b_before": 10,
    "b_after": 1,
    "b_limit": 51,
}


def test_every_kind_of_page_uses_the_conversation_seq_index_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _created(url)
    engine = create_engine(url)
    plans = {}
    with engine.connect() as conn:
        # the unique constraint's index (SQLite names it): the one on (conversation_id, seq)
        index = next(
            name
            for (name,) in conn.exec_driver_sql("SELECT name FROM pragma_index_list('messages')")
            if [c for _, _, c in conn.exec_driver_sql(f"PRAGMA index_info('{name}')")]
            == ["conversation_id", "seq"]
        )
        for key, statement in _PAGES.items():
            sql = statement.sql(conn.dialect, PARAMS)
            args = (None,) * sql.count("?")  # the plan does not depend on the values
            plans[key] = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args)]
    engine.dispose()
    for (visible_only, _backwards, before, after), plan in plans.items():
        lines = " | ".join(plan)
        bound = (
            " AND seq>? AND seq<?"
            if before and after
            else " AND seq<?"
            if before
            else " AND seq>?"
            if after
            else ""
        )
        assert f"SEARCH messages USING INDEX {index} (conversation_id=?{bound})" in lines, lines
        assert "TEMP B-TREE" not in lines, lines  # ordered by the index, not sorted afterwards
        assert ("USING PRIMARY KEY" in lines or "pk_receipts" in lines or "receipts" in lines) == visible_only


@pytest.mark.postgres
def test_a_page_uses_the_conversation_seq_index_on_postgresql(postgres_url: str) -> None:
    schema = unique("history").replace("-", "_")  # a schema of its own: see test_sql_indexes
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        _created(url)
        engine = create_engine(url)
        plans = {}
        with engine.connect() as conn:
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: whether it can use it
            for key, statement in _PAGES.items():
                sql = statement.sql(conn.dialect, PARAMS)
                plans[key] = [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}", PARAMS)]
        engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    for (_visible, backwards, _before, _after), plan in plans.items():
        lines = " | ".join(plan)
        scan = (
            "Index Scan Backward using uq_messages_conversation_seq"
            if backwards
            else "Index Scan using uq_messages_conversation_seq"
        )
        assert scan in lines, lines
        assert "Sort" not in lines, lines
