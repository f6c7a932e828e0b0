"""SQLite: tables that the schema keeps in key order (``sqlite_with_rowid=False``) but that a database
from before has as rowid tables are rebuilt in that order, once, at start (``create_schema``).

A rowid table with a primary key of other columns is two B-trees: the rows, and the key's index
that finds them. Each insert writes both, and each lookup by the key reads both. ``WITHOUT ROWID``
keeps the rows in the key's own B-tree. ``CREATE TABLE`` only makes new tables, so without this an
existing database would keep the old layout for good. PostgreSQL has no such option: nothing to do.

The rebuild is SQLite's own recipe for changing a table's layout: a new table of the new layout
under another name, the rows copied in key order, the old table dropped, the new one renamed, its
indexes made again, all in one ``BEGIN IMMEDIATE`` transaction: a process that starts at the same
time waits for it and then finds nothing left to do, and a crash leaves the old table as it was.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.schema import CreateTable

from workers.stores.sql.driver import execute_sql
from workers.stores.sql.schema import metadata

__all__ = ["clustered_tables", "rebuild_clustered"]

log = logging.getLogger(__name__)


def clustered_tables() -> list[Table]:
    """The schema's tables that SQLite keeps in primary-key order."""
    tables = metadata.sorted_tables
    return [table for table in tables if table.dialect_options["sqlite"]["with_rowid"] is False]


def _has_rowid(conn: Connection, table: Table) -> bool:
    """Whether ``table`` exists in the database as a rowid table."""
    sql = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
    ).scalar()
    return sql is not None and "WITHOUT ROWID" not in sql.upper()


def rebuild_clustered(engine: Engine) -> list[str]:
    """Rebuild every table of :func:`clustered_tables` that is still a rowid table; their names."""
    rebuilt: list[str] = []
    with engine.connect() as conn:
        with conn.begin():
            # a read first: a database that is already right costs no write lock
            todo = [table for table in clustered_tables() if _has_rowid(conn, table)]
        for table in todo:
            conn.begin()
            try:
                execute_sql(conn, "BEGIN IMMEDIATE")
                if _has_rowid(conn, table):  # not done by a process that started at the same time
                    _rebuild(conn, table)
                    rebuilt.append(table.name)
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
    return rebuilt


def _rebuild(conn: Connection, table: Table) -> None:
    name, new = table.name, f"{table.name}_rebuilt"
    ddl = str(CreateTable(table).compile(dialect=conn.dialect))
    renamed = ddl.replace(f"CREATE TABLE {name} (", f"CREATE TABLE {new} (", 1)
    if renamed == ddl:  # pragma: no cover - SQLAlchemy's DDL of a table starts so
        raise RuntimeError(f"unexpected DDL of {name}: {ddl!r}")
    columns = ", ".join(conn.dialect.identifier_preparer.quote(column.name) for column in table.columns)
    key = ", ".join(conn.dialect.identifier_preparer.quote(column.name) for column in table.primary_key)
    execute_sql(conn, renamed)
    # in key order: each row goes at the end of the new B-tree, which fills its pages
    execute_sql(conn, f"INSERT INTO {new} ({columns}) SELECT {columns} FROM {name} ORDER BY {key}")  # noqa: S608
    # only a child of other tables is rebuilt (nothing references it): dropping it deletes no
    # other table's rows, and no trigger is on it
    execute_sql(conn, f"DROP TABLE {name}")
    # triggers on other tables that name this one (the search index's) would stop a rename to a
    # name that does not exist at that moment in SQLite's newer rename; the legacy rename leaves
    # them as they are, naming the table by the name it gets back
    execute_sql(conn, "PRAGMA legacy_alter_table = ON")
    try:
        execute_sql(conn, f"ALTER TABLE {new} RENAME TO {name}")
    finally:
        execute_sql(conn, "PRAGMA legacy_alter_table = OFF")
    for index in table.indexes:
        index.create(conn)
    log.info("rebuilt SQLite table %s in primary-key order (WITHOUT ROWID)", name)
