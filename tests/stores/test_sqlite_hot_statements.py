"""The chat path's statements on SQLite: an ``IN`` list read from one JSON parameter
(``json_each``) and a batch's counters bumped by one ``UPDATE ... FROM`` still look rows up by
their indexes, and the counters come out as one ``UPDATE`` per count made them; a SQLite without
JSON functions keeps SQLAlchemy's forms."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from sqlite3 import dbapi2

import pytest
from sqlalchemy import Engine, create_engine, insert, select

from tests.stores.test_sql_hot_plans import GROWING, POSTGRES_ONLY, _hot
from tests.stores.test_sql_indexes import _created
from workers.stores.sql import base, blocks, messages
from workers.stores.sql.schema import users


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    _created(url)
    made = create_engine(url)
    try:
        yield made
    finally:
        made.dispose()


def test_the_hot_statements_search_indexes_and_scan_only_their_json_lists(engine: Engine) -> None:
    statements = {
        name: found for name, found in _hot().items() if "lock" not in name and name not in POSTGRES_ONLY
    }
    statements["inbox cursors: bump each"] = (base._INBOXES._bump_each, {"b_counts": '{"u1":2,"u2":1}'})
    statements["conversation seqs: bump each"] = (
        messages._CONVERSATION_SEQS._bump_each,
        {"b_counts": '{"dm:u0:u1":1}'},
    )
    plans, sqls = {}, {}
    with engine.connect() as conn:
        for name, (statement, params) in statements.items():
            plan = statement.compiled_for(conn.dialect).plan(params)
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            cursor.execute(f"EXPLAIN QUERY PLAN {plan.sql}", plan.args(params))
            plans[name] = [row[3] for row in cursor.fetchall()]
            sqls[name] = plan.sql
            cursor.close()

    # every IN list is one parameter, whatever its length
    with_lists = {
        name for name, (_, params) in statements.items() if any(isinstance(v, list) for v in params.values())
    }
    assert with_lists and {name for name in with_lists if "json_each(?)" not in sqls[name]} == set()
    scans = {
        name: plan
        for name, plan in plans.items()
        if any(step.startswith("SCAN ") and step.split()[1] in (*GROWING, "users") for step in plan)
    }
    assert scans == {}
    assert all(any(step.startswith("SEARCH ") for step in plan) for plan in plans.values())


def test_counters_of_different_counts_are_bumped_by_one_statement_each_by_its_own(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(users),
            [
                {"id": user, "created_at": 0, "inbox_seq": seq, "disabled": False}
                for user, seq in [("a", 5), ("b", 0)]
            ],
        )
        statements: list[str] = []
        conn.connection.dbapi_connection.set_trace_callback(statements.append)  # type: ignore[union-attr]
        got = base._INBOXES.add(conn, {"a": 2, "b": 1, "nobody": 3})
        conn.connection.dbapi_connection.set_trace_callback(None)  # type: ignore[union-attr]
        stored = dict(conn.execute(select(users.c.id, users.c.inbox_seq)).all())

    assert got == {"a": 7, "b": 1}  # a key with no row is left out, as UnknownUser needs
    assert stored == {"a": 7, "b": 1}
    assert len([sql for sql in statements if sql.startswith("UPDATE")]) == 1


def test_a_sqlite_without_json_functions_gets_sqlalchemys_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dbapi2, "sqlite_version_info", (3, 37, 2))  # JSON1 was optional then
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _created(url)
    old = create_engine(url)
    try:
        with old.begin() as conn:
            conn.execute(
                insert(users),
                [{"id": user, "created_at": 0, "inbox_seq": 5, "disabled": False} for user in ("a", "b")],
            )
            got = base._INBOXES.add(conn, {"a": 2, "b": 1})
            sql = blocks._BLOCKS_AMONG.sql(conn.dialect, {"b_blockers": ["a", "b"], "b_blocked": ["c"]})
    finally:
        old.dispose()

    assert got == {"a": 7, "b": 6}
    assert "json_each" not in sql and sql.count("?") == 3
