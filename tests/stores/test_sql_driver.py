"""Core statements run on the DBAPI cursor (workers.stores.sql.driver), against real SQLite and the
PostgreSQL server of this machine: the same rows, values and errors as ``conn.execute``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    MetaData,
    SmallInteger,
    String,
    Table,
    bindparam,
    create_engine,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, ResourceClosedError

from workers.errors import StoreUnavailable
from workers.stores.sql.base import _unavailable_on_failure
from workers.stores.sql.driver import Statement, execute_sql

metadata = MetaData()
things = Table(
    f"driver_{uuid.uuid4().hex[:10]}",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("small", SmallInteger, nullable=False),
    Column("ratio", Float, nullable=True),
    Column("flag", Boolean, nullable=False),
    Column("counter", BigInteger, nullable=False, default=0),
)
ALL_COLUMNS = ("id", "n", "small", "ratio", "flag", "counter")
INSERT = Statement(insert(things), column_keys=ALL_COLUMNS)
BY_IDS = Statement(
    select(things)
    .where(things.c.id.in_(bindparam("ids", expanding=True)), things.c.small < 9)
    .order_by(things.c.id)
)
BUMP = Statement(
    update(things)
    .where(things.c.id.in_(bindparam("ids", expanding=True)))
    .values(n=things.c.n + bindparam("by"))
    .returning(things.c.id, things.c.n)
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'driver.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    made = create_engine(url)
    metadata.create_all(made)
    try:
        yield made
    finally:
        metadata.drop_all(made)
        made.dispose()


def row(i: int) -> dict[str, Any]:
    return {
        "id": f"t{i:03}",
        "n": 10**12 + i,
        "small": i % 10,
        "ratio": i / 4,
        "flag": i % 2 == 0,
        "counter": 0,
    }


def filled(engine: Engine, count: int = 60) -> None:
    with engine.begin() as conn:
        INSERT.execute_many(conn, [row(i) for i in range(count)])


def typed(rows: list[Any]) -> list[list[tuple[type, Any]]]:
    return [[(type(value), value) for value in r] for r in rows]


def test_a_statement_is_compiled_once_per_dialect(engine: Engine, tmp_path: Path) -> None:
    filled(engine, 3)
    other = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    metadata.create_all(other)
    try:
        with engine.begin() as conn, other.begin() as other_conn:
            compiled = BY_IDS.compiled_for(conn.dialect)
            BY_IDS.all(conn, {"ids": ["t001"]})
            BY_IDS.all(other_conn, {"ids": ["t001"]})
            BY_IDS.all(conn, {"ids": ["t002"]})

            assert BY_IDS.compiled_for(conn.dialect) is compiled
            assert BY_IDS.compiled_for(other_conn.dialect) is not compiled
    finally:
        other.dispose()


@pytest.mark.parametrize("length", [1, 2, 3, 7, 50])
def test_an_in_list_of_any_length_finds_what_conn_execute_finds(engine: Engine, length: int) -> None:
    filled(engine, 100)
    ids = [f"t{i:03}" for i in range(0, 2 * length, 2)] + ["missing"]

    with engine.begin() as conn:
        ours = BY_IDS.all(conn, {"ids": ids})
        theirs = conn.execute(BY_IDS.statement, {"ids": ids}).all()

    assert typed(ours) == typed([tuple(r) for r in theirs])
    assert [r[0] for r in ours] == sorted(i for i in ids[:-1] if int(i[1:]) % 10 < 9)
    sql = BY_IDS.sql(engine.dialect, {"ids": ids})
    if engine.dialect.name == "sqlite":  # the list is one JSON parameter, whatever its length...
        assert sql == BY_IDS.sql(engine.dialect, {"ids": ["t001", "t003"]}) and sql.count("?") == 2
        # ...but a single value, which SQLite runs as an equality
        assert "json_each" not in BY_IDS.sql(engine.dialect, {"ids": ["t001"]})
    else:  # psycopg: one array parameter, whatever its length
        assert sql == BY_IDS.sql(engine.dialect, {"ids": ["t001", "t003"]}) and "= ANY (CAST(%(ids)b" in sql


@pytest.mark.parametrize(
    "where",
    [
        things.c.n.in_(bindparam("ns", expanding=True)),
        things.c.n.not_in(bindparam("ns", expanding=True)),
        things.c.ratio.in_(bindparam("ns", expanding=True)),
    ],
    ids=["integers", "not in", "floats"],
)
@pytest.mark.parametrize("values", [[], [7], [None], [10**12 + 3, 10**12 + 5, 7, 0], [3, None], [2.5, 0.25]])
def test_lists_of_numbers_empty_lists_and_nulls_find_what_conn_execute_finds(
    engine: Engine, where: Any, values: list[Any]
) -> None:
    filled(engine, 12)
    statement = Statement(select(things.c.id).where(where).order_by(things.c.id))

    with engine.begin() as conn:
        ours = statement.all(conn, {"ns": values})
        theirs = conn.execute(statement.statement, {"ns": values}).all()

    assert ours == [tuple(r) for r in theirs]


def test_lengths_used_one_after_another_each_get_their_own_sql(engine: Engine) -> None:
    filled(engine, 10)

    with engine.begin() as conn:
        got = [BY_IDS.all(conn, {"ids": [f"t{i:03}" for i in range(n)]}) for n in (3, 1, 3, 5)]

    assert [len(rows) for rows in got] == [3, 1, 3, 5]


def test_values_come_back_with_the_types_sqlalchemy_gives(engine: Engine) -> None:
    filled(engine, 4)

    with engine.begin() as conn:
        ours = BY_IDS.all(conn, {"ids": ["t000", "t001", "t002", "t003"]})
        theirs = conn.execute(BY_IDS.statement, {"ids": ["t000", "t001", "t002", "t003"]}).all()

    assert typed(ours) == typed([tuple(r) for r in theirs])
    assert [r[4] for r in ours] == [True, False, True, False]  # SQLite stores 1 and 0
    assert ours[1][3] == 0.25 and ours[0][1] == 10**12


def test_an_update_returning_with_a_repeated_and_a_constant_parameter(engine: Engine) -> None:
    filled(engine, 3)
    bump_twice = Statement(
        update(things)
        .where(things.c.id == bindparam("id"), things.c.small < 5)
        .values(
            n=bindparam("by", type_=BigInteger) * 2 + bindparam("by", type_=BigInteger),
            counter=things.c.counter + 1,
        )
        .returning(things.c.n, things.c.counter)
    )

    with engine.begin() as conn:
        assert bump_twice.first(conn, {"id": "t001", "by": 14}) == (42, 1)
        assert sorted(BUMP.all(conn, {"ids": ["t000", "t002"], "by": 1})) == [
            ("t000", 10**12 + 1),
            ("t002", 10**12 + 3),
        ]
        assert BUMP.scalars(conn, {"ids": ["nothing"], "by": 1}) == []


def test_a_statement_that_needs_python_defaults_is_refused(engine: Engine) -> None:
    without_counter = Statement(insert(things), column_keys=("id", "n", "small", "flag"))

    with engine.begin() as conn, pytest.raises(ValueError, match="Python defaults"):
        without_counter.execute(conn, {"id": "x", "n": 1, "small": 1, "flag": True})


def test_a_duplicate_key_raises_sqlalchemys_integrity_error_and_a_savepoint_undoes_it(engine: Engine) -> None:
    filled(engine, 2)

    with engine.begin() as conn:
        execute_sql(conn, "SAVEPOINT s1")
        with pytest.raises(IntegrityError) as caught:
            INSERT.execute(conn, row(1))
        assert isinstance(caught.value.orig, conn.dialect.loaded_dbapi.IntegrityError)
        assert not caught.value.connection_invalidated
        execute_sql(conn, "ROLLBACK TO SAVEPOINT s1")
        execute_sql(conn, "RELEASE SAVEPOINT s1")
        INSERT.execute(conn, row(2))  # the transaction goes on

    with engine.connect() as conn:
        assert [r[0] for r in BY_IDS.all(conn, {"ids": ["t000", "t001", "t002"]})] == ["t000", "t001", "t002"]


def test_a_duplicate_in_executemany_raises_integrity_error(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(IntegrityError):
        INSERT.execute_many(conn, [row(1), row(2), row(1)])


def test_many_rows_come_back_as_written_nulls_included(engine: Engine) -> None:
    # on PostgreSQL one INSERT ... SELECT FROM unnest of an array per column (the driver's batch form)
    rows = [{**row(i), "ratio": None if i % 3 == 0 else i / 4} for i in range(7)]
    with engine.begin() as conn:
        INSERT.execute_many(conn, rows)
    with engine.connect() as conn:
        got = conn.execute(select(things).order_by(things.c.id)).all()
    assert typed([tuple(r) for r in got]) == typed([tuple(r[k] for k in ALL_COLUMNS) for r in rows])


def test_many_rows_of_mixed_number_types_come_back_as_their_columns_types(engine: Engine) -> None:
    # a time may be an int in one row and a float in the next, a flag 0 or True: on PostgreSQL an
    # array holds one type, so each column's values are made its type first
    rows = [{**row(i), "ratio": [None, 2, 2.5][i % 3], "flag": [True, 0, 1][i % 3]} for i in range(6)]
    with engine.begin() as conn:
        INSERT.execute_many(conn, rows)
    with engine.connect() as conn:
        got = conn.execute(select(things.c.ratio, things.c.flag).order_by(things.c.id)).all()
    assert typed([tuple(r) for r in got]) == typed(
        [(None if r["ratio"] is None else float(r["ratio"]), bool(r["flag"])) for r in rows]
    )


def _upsert(rows: postgresql.Insert | sqlite.Insert) -> Statement:
    return Statement(
        rows.on_conflict_do_update(index_elements=[things.c.id], set_={"n": rows.excluded.n}),
        column_keys=ALL_COLUMNS,
    )


UPSERT = {"postgresql": _upsert(postgresql.insert(things)), "sqlite": _upsert(sqlite.insert(things))}


def test_an_upsert_of_many_rows_inserts_the_new_and_updates_the_known_in_one_statement(
    engine: Engine,
) -> None:
    # on PostgreSQL the driver's statement of arrays, the insert's ON CONFLICT clause with it
    filled(engine, 3)
    upsert = UPSERT[engine.dialect.name]
    with engine.begin() as conn:
        upsert.execute_many(conn, [{**row(i), "n": 7 * i, "small": 9} for i in range(1, 6)])
    with engine.connect() as conn:
        got = conn.execute(select(things.c.id, things.c.n, things.c.small).order_by(things.c.id)).all()
    assert [tuple(r) for r in got] == [
        ("t000", 10**12, 0),
        ("t001", 7, 1),  # known: only what the clause sets
        ("t002", 14, 2),
        ("t003", 21, 9),
        ("t004", 28, 9),
        ("t005", 35, 9),
    ]
    if engine.dialect.name == "postgresql":
        assert upsert._unnest is not None
        sql = upsert._unnest.sql(engine.dialect)
        assert "unnest" in sql and "ON CONFLICT (id) DO UPDATE SET n = excluded.n" in sql


def test_text_that_an_array_literal_would_quote_comes_back_as_written(engine: Engine) -> None:
    ids = ['a"b', "c\\d", "{e,f}", "", "NULL", "é 🙂", " g "]
    with engine.begin() as conn:
        INSERT.execute_many(conn, [{**row(i), "id": name} for i, name in enumerate(ids)])
    with engine.connect() as conn:
        got = conn.execute(select(things.c.id, things.c.n).order_by(things.c.n)).all()
    assert [r[0] for r in got] == ids


def test_a_value_too_long_for_its_column_is_refused_in_many_rows_as_in_one(engine: Engine) -> None:
    # PostgreSQL's explicit cast to VARCHAR(32) would cut the value to fit; the insert must refuse
    # it as a one-row insert does (SQLite keeps any length, in both forms)
    too_long = [{**row(1), "id": "x" * 40}, row(2)]
    outcomes = []
    for write in (
        lambda conn: [INSERT.execute(conn, one) for one in too_long],
        lambda conn: INSERT.execute_many(conn, too_long),  # PostgreSQL: the arrays of unnest, cast
    ):
        try:
            with engine.connect() as conn:
                write(conn)
                outcomes.append("stored")
                conn.rollback()
        except DataError:
            outcomes.append("refused")
    assert outcomes == (["stored", "stored"] if engine.dialect.name == "sqlite" else ["refused", "refused"])
    with engine.connect() as conn:
        assert conn.execute(select(things.c.id)).all() == []


def kill(conn: Connection, engine: Engine) -> None:
    """Break the connection under SQLAlchemy: close SQLite's, or end PostgreSQL's server process."""
    if engine.dialect.name == "sqlite":
        conn.connection.dbapi_connection.close()  # type: ignore[union-attr]
        return
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_lost_connection_is_store_unavailable_and_invalidated(engine: Engine) -> None:
    filled(engine, 2)
    conn = engine.connect()
    try:
        conn.begin()
        BY_IDS.all(conn, {"ids": ["t000"]})
        kill(conn, engine)

        with pytest.raises(StoreUnavailable), _unavailable_on_failure():
            BY_IDS.all(conn, {"ids": ["t000"]})

        assert conn.invalidated
    finally:
        conn.close()
    with engine.connect() as fresh:  # the pool hands out a working connection again
        assert BY_IDS.scalars(fresh, {"ids": ["t001"]}) == ["t001"]


def test_a_lost_connection_fails_a_savepoint_as_store_unavailable(engine: Engine) -> None:
    conn = engine.connect()
    try:
        conn.begin()
        kill(conn, engine)

        with pytest.raises(StoreUnavailable), _unavailable_on_failure():
            execute_sql(conn, "SAVEPOINT s1")
    finally:
        conn.close()


def test_a_closed_connection_raises_what_conn_execute_raises(engine: Engine) -> None:
    conn = engine.connect()
    conn.close()

    with pytest.raises(ResourceClosedError):
        conn.execute(BY_IDS.statement, {"ids": ["t000"]})
    with pytest.raises(ResourceClosedError):
        BY_IDS.all(conn, {"ids": ["t000"]})
