"""The shared core of the SQL store: engine, transactions, batches and the inbox log.

Statements on the hot paths are built once, here and in the modules that use them, with bound
parameters, and run as :class:`~workers.stores.sql.driver.Statement`: compiled once per dialect and
executed on the DBAPI cursor, without SQLAlchemy's per-execution overhead. Everything else goes
through ``conn.execute``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    String,
    Table,
    Update,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy import column as column_of
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.schema import CreateIndex
from sqlalchemy.sql.elements import BindParameter

from workers.errors import StoreUnavailable, UnknownUser
from workers.events import dumps
from workers.stores.records import InboxEntry, InboxItem
from workers.stores.rules.inbox import events_per_user, number_entries
from workers.stores.sql.driver import Statement, execute_sql, sqlite_json
from workers.stores.sql.schema import inbox, metadata, users
from workers.stores.sql.sqlite_checkpoint import JOURNAL_SIZE_LIMIT, Checkpointer
from workers.stores.sql.sqlite_layout import rebuild_clustered
from workers.stores.sql.statistics import StatisticsKeeper

__all__ = ["Counters", "NotInOneGo", "SqlBase", "lock_and_bump", "numbered", "sqlite_in_memory"]


class Counters:
    """A counter column of ``table``, keyed by its ``id``, that batches add counts to.

    Several batches meet on the same rows (a conversation's seq, a user's inbox cursor). On
    PostgreSQL the rows of several keys are locked in key order, and bumped, by one statement
    (``_lock_and_bump``): an ``UPDATE`` alone locks rows in the order its plan finds them, which
    differs from batch to batch, so two batches would deadlock and one be aborted; and a separate
    ``SELECT ... FOR UPDATE`` was a round trip of its own per step of a batch, waited for like any
    other. On SQLite (one writer at a time: no lock order to keep) one ``UPDATE ... FROM`` the
    keys and their counts as one JSON object (``json_each``), whatever the counts; elsewhere, for
    one key, one ``UPDATE`` per distinct count."""

    def __init__(self, table: Table, column: str) -> None:
        key, counter = table.c.id, table.c[column]
        keys: BindParameter[Any] = bindparam("b_keys", expanding=True)
        self._bump = Statement(
            update(table)
            .where(key.in_(keys))
            .values({column: counter + bindparam("b_count")})
            .returning(key, counter)
        )
        self._lock_and_bump = Statement(lock_and_bump(table, column), binary=True)
        given = func.json_each(bindparam("b_counts", type_=String)).table_valued(
            column_of("key", String), column_of("value", Integer)
        )
        self._bump_each = Statement(
            update(table)
            .values({column: counter + given.c.value})
            .where(key == given.c.key)
            .returning(key, counter)
        )

    def add(self, conn: Connection, counts: Mapping[str, int]) -> dict[str, int]:
        """Add each key's count to its counter; the new value of every key that exists."""
        if len(counts) > 1 and conn.dialect.name != "sqlite":
            keys = sorted(counts)
            params = {"b_keys": keys, "b_counts": [counts[key] for key in keys]}
            return {row[0]: int(row[1]) for row in self._lock_and_bump.all(conn, params)}
        if len(counts) > 1 and sqlite_json(conn.dialect):
            # a batch's counts differ (a user with two messages in it, another with one): one
            # statement for them all instead of one per distinct count
            given = {"b_counts": orjson.dumps(counts).decode()}
            return {row[0]: int(row[1]) for row in self._bump_each.all(conn, given)}
        by_count: dict[int, list[str]] = {}
        for key, count in counts.items():
            by_count.setdefault(count, []).append(key)
        last: dict[str, int] = {}
        for count, keys in by_count.items():
            last.update(
                (row[0], int(row[1])) for row in self._bump.all(conn, {"b_keys": keys, "b_count": count})
            )
        return last


def lock_and_bump(table: Table, column: str, *, lock: bool = True) -> Update:
    """PostgreSQL: lock the rows of ``b_keys`` in key order, then add each its count of
    ``b_counts`` (arrays of one order), returning the new values. The locking subquery runs before
    any row is updated: an ``UPDATE`` only changes a row its join has produced, and the subquery's
    ``FOR UPDATE`` took that row's lock when it produced it, in ``ORDER BY`` order. A row that
    another transaction changed meanwhile is re-read once its lock is free, so the count adds to
    the committed value. ``lock`` False, for one key (no order to keep): the ``UPDATE`` alone,
    without the sort and the lock before it. (Also a CTE of the statements that merge a batch's
    steps: ``merged``.)"""
    given = (
        func.unnest(cast(bindparam("b_keys"), ARRAY(String)), cast(bindparam("b_counts"), ARRAY(BigInteger)))
        .table_valued("id", "n")
        .render_derived(name="c")
    )
    if not lock:
        return (
            update(table)
            .values({column: table.c[column] + given.c.n})
            .where(table.c.id == given.c.id)
            .returning(table.c.id, table.c[column])
        )
    locked_rows = table.alias("t")
    locked = (
        select(locked_rows.c.id, given.c.n)
        .join(given, locked_rows.c.id == given.c.id)
        .order_by(locked_rows.c.id)
        .with_for_update(of=locked_rows)
        .subquery("locked")
    )
    return (
        update(table)
        .values({column: table.c[column] + locked.c.n})
        .where(table.c.id == locked.c.id)
        .returning(table.c.id, table.c[column])
    )


_INBOXES = Counters(users, "inbox_seq")
_SENT_INDEX = next(index for index in inbox.indexes if index.name == "ix_inbox_sent_message")
_OLD_SENT_INDEX = "ix_inbox_user_message"
"""What ``_SENT_INDEX`` replaced: the same entries keyed by user, then message."""
_INSERT_INBOX = Statement(
    insert(inbox), column_keys=("user_id", "cursor", "kind", "message_id", "payload", "created_at")
)


_GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"
"""PostgreSQL, a batch's transaction: each prepared statement runs its generic plan. Left to
choose (``auto``), the server plans a prepared statement again at every run for as long as the
plans it made for earlier runs' values were estimated cheaper than the generic one; a custom plan
counts an ``unnest`` array's elements where the generic one guesses ten, so after a start of
batches of one or two commands the chat path's statements of arrays (``merged``, the key-ordered
locks) were planned at every run, for as long as the connection kept them prepared: most of the
server's CPU for them (benchmarks/RESULTS.md). Their generic plans are the ones
tests/stores/test_sql_hot_plans.py checks. ``SET LOCAL`` ends with the transaction: the
connection's uses outside a batch keep the server's choice."""


class NotInOneGo(Exception):
    """Several commands cannot be stored together after all (raised inside the savepoint that
    their attempt runs in, which undoes it); the caller stores them one by one."""


def sqlite_in_memory(url: URL) -> bool:
    """Whether the SQLite ``url`` is an in-memory database: one per connection, no file to share."""
    return not url.database or url.database == ":memory:" or url.query.get("mode") == "memory"


SQLITE_CACHE_KIB = 64 * 1024
"""Page cache of each SQLite connection, at most (KiB)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # commits never checkpoint: sqlite_checkpoint.Checkpointer does it off the hot path
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    # SQLite's default page cache is 2 MiB: with thousands of users the inbox and message indexes
    # outgrow it and every insert reads pages back from the OS, which was most of the commands
    # process's time under load (benchmarks/RESULTS.md). Allocated as pages are used.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    # a statement that may change several rows, or a savepoint, keeps a journal of its own to undo
    # them; in a file, each was an open, writes and an unlink of a temporary file per transaction,
    # nearly a fifth of a one-command transaction's cost. They hold only what the transaction
    # undoes, never what it commits: memory is as safe.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    """Convert a lost or unreachable database into StoreUnavailable (the job is then retried)."""
    try:
        yield
    except OperationalError as exc:
        raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise StoreUnavailable(f"database connection lost: {exc.orig}") from exc
        raise


@contextmanager
def _savepoint(conn: Connection, local: threading.local, *, defer_release: bool) -> Iterator[None]:
    """A savepoint written out on the DBAPI cursor: it runs once per command, and SQLAlchemy's
    ``begin_nested`` (or even ``exec_driver_sql``) costs several times the Python of ``execute_sql``.

    ``defer_release`` (PostgreSQL): the ``RELEASE`` of a savepoint that succeeded is not sent on its
    own but with the next ``SAVEPOINT`` of the batch, as one string, or not at all (the commit, or
    the release or rollback of an enclosing savepoint, ends it too): each call of a batch was two
    round trips of bookkeeping, waited for like its statements. SQLite's driver runs one statement
    at a time. The batch's first savepoint also carries its ``SET LOCAL`` (``_GENERIC_PLANS``),
    sent before the ``SAVEPOINT``: it holds for the whole transaction, whatever is rolled back."""
    depth = getattr(local, "depth", 0) + 1
    local.depth = depth
    name = f"mqchat_{depth}"
    owed: str | None = getattr(local, "owed_release", None)  # a finished sibling's
    local.owed_release = None
    setup: str | None = getattr(local, "owed_setup", None)  # the batch's own, not yet sent
    local.owed_setup = None
    try:
        sql = f"RELEASE SAVEPOINT {owed}; SAVEPOINT {name}" if owed else f"SAVEPOINT {name}"
        execute_sql(conn, f"{setup}; {sql}" if setup else sql)
        try:
            yield
        except BaseException:
            local.owed_release = None  # rolling back to this one ends the ones inside it
            try:
                execute_sql(conn, f"ROLLBACK TO SAVEPOINT {name}")
                execute_sql(conn, f"RELEASE SAVEPOINT {name}")
            except Exception as failed:  # the connection is gone: the whole batch is retried
                raise StoreUnavailable(f"database connection lost: {failed}") from failed
            raise
        if defer_release:
            local.owed_release = name  # releasing it will end any inside it that is still owed
        else:
            execute_sql(conn, f"RELEASE SAVEPOINT {name}")
    finally:
        local.depth = depth - 1


class SqlBase:
    """Engine and transactions on SQLAlchemy Core. Thread-safe: each call uses its own pooled
    connection, except inside :meth:`batch`, where the calls of the thread that opened it share one."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgres":
            parsed = parsed.set(drivername="postgresql")
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs: dict[str, Any] = {"future": True}
        self._sqlite = parsed.get_backend_name() == "sqlite"
        self._checkpointer: Checkpointer | None = None
        if self._sqlite:
            if parsed.database and not sqlite_in_memory(parsed):
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
                self._checkpointer = Checkpointer(parsed.database)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.url = parsed
        self.engine: Engine = create_engine(parsed, **kwargs)
        if self._sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._statistics = None if self._sqlite else StatisticsKeeper(self.engine)
        self._local = threading.local()
        self._spares: set[Connection] = set()
        self._spares_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SqlStore({self.url.render_as_string(hide_password=True)!r})"

    def create_schema(self) -> None:
        with self._tx() as conn:
            metadata.create_all(conn)
            # A database from before has the ``sent`` entries' index keyed by user first. Asked
            # first: on PostgreSQL a ``CREATE INDEX IF NOT EXISTS`` takes the table's lock before
            # it finds the index, which would keep writes out until this transaction ends, at
            # every start of every process.
            found = {index["name"] for index in inspect(conn).get_indexes(inbox.name)}
            if _OLD_SENT_INDEX in found:
                execute_sql(conn, f"DROP INDEX IF EXISTS {_OLD_SENT_INDEX}")
            if _SENT_INDEX.name not in found:  # IF NOT EXISTS: another process may be making it too
                conn.execute(CreateIndex(_SENT_INDEX, if_not_exists=True))
        if self._sqlite:  # tables of a database from before that SQLite now keeps in key order
            rebuild_clustered(self.engine)

    def refresh_statistics(self) -> list[str]:
        """PostgreSQL: analyze the tables that grew (see statistics), now; the ones analyzed."""
        return [] if self._statistics is None else self._statistics.refresh()

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        if self._statistics is not None:
            self._statistics.close()
        with self._spares_lock:
            spares, self._spares = self._spares, set()
        for conn in spares:
            with suppress(Exception):
                conn.close()
        self.engine.dispose()

    # ------------------------------------------------------------------ transactions
    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every store call this thread makes inside the block.

        Each call is a savepoint of it, so a call that fails (a refused command) undoes only its
        own changes; everything commits together when the block ends, and nothing does when an
        exception leaves it. On SQLite the transaction takes the write lock at once (``BEGIN
        IMMEDIATE``): a read that turns into a write never meets a newer snapshot half way. A
        batch opened inside a batch joins it.
        """
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        self._checkpoints()
        conn = self._batch_connection()
        try:
            with _unavailable_on_failure():
                if self._checkpointer is not None and self._checkpointer.finish_now():
                    # outside any transaction: the log is all copied, and this batch starts it over
                    with suppress(DBAPIError):  # could not now: the next checkpoint asks again
                        execute_sql(conn, "PRAGMA wal_checkpoint(PASSIVE)")
                conn.begin()
                if self._sqlite:
                    execute_sql(conn, "BEGIN IMMEDIATE")
            self._local.conn = conn
            # sent with the batch's first savepoint, not a round trip of its own
            self._local.owed_setup = None if self._sqlite else _GENERIC_PLANS
            try:
                yield
            finally:
                self._local.conn = None
                self._local.owed_release = None  # the transaction ends it: commit or rollback
                self._local.owed_setup = None
            with _unavailable_on_failure():
                conn.commit()
        except BaseException:
            self._rolled_back()
            self._local.spare = None
            with self._spares_lock:
                self._spares.discard(conn)
            with suppress(Exception):  # a lost connection: closing it discards the transaction anyway
                conn.rollback()
            with suppress(Exception):
                conn.close()
            raise
        if self._statistics is not None:  # tables that grew are analyzed, off this thread
            self._statistics.tick()

    def _batch_connection(self) -> Connection:
        """The thread's connection for batches, kept between them: checking one out of the pool and
        returning it (with its reset) cost about as much as a one-command batch's statements. A
        connection that failed is closed and replaced (``batch``), so a lost database connection
        costs one retry of the batch, as it did when pre-ping found it first."""
        conn: Connection | None = getattr(self._local, "spare", None)
        if conn is not None and not conn.closed and not conn.invalidated:
            return conn
        with _unavailable_on_failure():
            conn = self.engine.connect()
        self._local.spare = conn
        with self._spares_lock:
            self._spares.add(conn)
        return conn

    def _checkpoints(self) -> None:
        """A process that writes command batches to a SQLite file keeps its log checkpointed (see
        sqlite_checkpoint). Only that one: a second checkpointer, in a process that mostly reads
        (a node whose commands run in a child), kept the log from ever starting over."""
        checkpointer = self._checkpointer
        if checkpointer is not None and not checkpointer.running:
            checkpointer.start()

    def _rolled_back(self) -> None:
        """Forget whatever was cached from a batch that did not commit (overridden by mixins)."""

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction of its own, or a savepoint of the thread's open batch."""
        batch: Connection | None = getattr(self._local, "conn", None)
        with _unavailable_on_failure():
            if batch is None:
                with self.engine.begin() as conn:
                    yield conn
                if self._statistics is not None:
                    self._statistics.tick()
            else:
                with _savepoint(batch, self._local, defer_release=not self._sqlite):
                    yield batch

    # ------------------------------------------------------------------ the inbox log
    def _append_many(self, conn: Connection, items: Sequence[InboxItem], now: float) -> list[InboxEntry]:
        """Append events to inbox logs, keeping their order per user: the users' cursors are bumped
        by one statement, the entries written by one multi-row insert. UnknownUser if a user does
        not exist."""
        entries = numbered(items, _INBOXES.add(conn, events_per_user(items)))
        rows = [
            {
                "user_id": entry.user,
                "cursor": entry.cursor,
                "kind": kind,
                "message_id": message_id,
                "payload": dumps(entry.payload),
                "created_at": now,
            }
            for entry, (_user, kind, message_id, _body) in zip(entries, items, strict=True)
        ]
        _INSERT_INBOX.execute_many(conn, rows)
        return entries


def numbered(items: Sequence[InboxItem], last: Mapping[str, int]) -> list[InboxEntry]:
    """The entries of ``items``, numbered from ``last`` (each user's inbox cursor once bumped by
    its count of them). UnknownUser if a user has no cursor there (it does not exist)."""
    missing = [user for user in events_per_user(items) if user not in last]
    if missing:
        raise UnknownUser(missing[0])
    return number_entries(items, last)
