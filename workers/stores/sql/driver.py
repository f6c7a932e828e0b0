"""SQLAlchemy Core statements run straight on the DBAPI cursor, for the store's hot paths.

``conn.execute(statement)`` spends most of a short statement's time in SQLAlchemy itself (cache
lookup, parameter processing, execution context, result set-up): several times what SQLite takes
to run it. A :class:`Statement` keeps the statement written in SQLAlchemy Core (so the schema and
the dialect differences stay in one place), compiles it once per dialect, and then only hands the
SQL string and the parameters in the driver's order to a cursor of the connection.

Same results as ``conn.execute``: bind and result processors of the column types are applied
(none, for the types the hot paths use), and a DBAPI error is handed to the Connection, which wraps
it exactly as ``execute`` does (``sqlalchemy.exc.IntegrityError``, ``OperationalError``, ...) and
invalidates the connection on a disconnect. The connection must be in a transaction already (the
store's ``_tx`` and ``batch`` see to that), as nothing here begins one. Expanding ``IN`` parameters
are rendered by SQLAlchemy once for each list length, except on SQLite, where a list of strings
or integers is one JSON parameter read by ``json_each``, and with psycopg, where it is one array
parameter (``= ANY (...)``; see ``_Compiled._array_plan``); statements whose SQL depends on
the values (``literal_execute``) or that need Python-side column defaults are refused when compiled.
A bind parameter with a value of its own (``status < 3``) is a constant of the statement: unlike
``conn.execute``, a parameter of the same name does not override it.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, NoReturn

import orjson
from sqlalchemy import (
    Boolean,
    Connection,
    Enum,
    Float,
    Integer,
    String,
    bindparam,
    cast,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import Insert

__all__ = ["Statement", "execute_sql", "sqlite_json"]

Params = Mapping[str, Any]
_MAX_LENGTHS = 256
"""Expanded forms kept per statement and dialect (one per combination of IN-list lengths)."""
_POSITIONAL = {"qmark", "format"}
_NAMED = {"pyformat", "named"}
_TEXT_PLACEHOLDER = re.compile(r"%\(([^)]+)\)s")
_JSON_LIST = "SELECT value FROM json_each(?)"
"""SQLite: the rows of an ``IN`` list given as one JSON array (see ``_Compiled._json_plan``)."""


class _Plan:
    """The SQL for one dialect (and IN-list lengths) and how to turn params into driver arguments."""

    __slots__ = ("args", "sql")

    def __init__(self, sql: str, args: Callable[[Params], Any]) -> None:
        self.sql = sql
        self.args = args


class _Compiled:
    """A statement compiled for one dialect: its plans and its result conversion."""

    def __init__(
        self,
        statement: ClauseElement,
        dialect: Dialect,
        column_keys: Sequence[str] | None,
        *,
        binary: bool = False,
    ) -> None:
        """``binary``: psycopg sends the parameters in binary format (``%(name)b``)."""
        if dialect.paramstyle not in _POSITIONAL | _NAMED:
            raise NotImplementedError(f"paramstyle {dialect.paramstyle!r} is not supported")
        compiled = statement.compile(dialect=dialect, column_keys=list(column_keys or ()) or None)
        assert isinstance(compiled, SQLCompiler)
        prefetch = getattr(compiled, "insert_prefetch", ()) or getattr(compiled, "update_prefetch", ())
        if compiled.literal_execute_params or prefetch:
            raise ValueError(f"the SQL depends on the values or on Python defaults: {compiled.string}")
        self._compiled = compiled
        self._dialect = dialect
        self._binary = binary and dialect.driver == "psycopg" and dialect.paramstyle == "pyformat"
        self._binds = {name: bind for bind, name in compiled.bind_names.items()}
        if any(bind.callable is not None for bind in self._binds.values()):
            raise ValueError(f"callable bind values are not supported: {compiled.string}")
        self._expanding = tuple(name for name, bind in self._binds.items() if bind.expanding)
        self._ones = tuple(1 for _ in self._expanding)
        self._plans: dict[tuple[int, ...], _Plan] = {}
        self._lock = threading.Lock()
        self._any_length: _Plan | None = None
        """The plan of one SQL text for lists of any length, taken unless every list holds a single
        value: SQLite reads each list from JSON, psycopg binds it as an array."""
        self.fixed = self._fixed()
        self._columns = list(getattr(statement, "exported_columns", ()))
        self.described = False
        self.convert: list[Any] | None = None
        """The result processors of the columns, None when there are none (learnt on the first run)."""

    def describe(self, description: Sequence[Sequence[Any]] | None) -> None:
        """Learn the result processors from the first cursor's description, as SQLAlchemy does (a
        processor may depend on the type the driver reports)."""
        if description is not None:
            dialect = self._dialect
            processors = [
                col.type.dialect_impl(dialect).result_processor(dialect, about[1])
                for col, about in zip(self._columns, description, strict=True)
            ]
            self.convert = processors if any(processors) else None
        self.described = True

    def plan(self, params: Params) -> _Plan:
        if self.fixed is not None:
            return self.fixed
        lengths = tuple(len(params[name]) for name in self._expanding)
        if self._any_length is not None and lengths != self._ones:
            return self._any_length
        found = self._plans.get(lengths)
        if found is None:
            found = self._plan(lengths)
            with self._lock:
                if len(self._plans) >= _MAX_LENGTHS:
                    self._plans.pop(next(iter(self._plans)))
                self._plans[lengths] = found
        return found

    def _fixed(self) -> _Plan | None:
        """The plan of every call where there are no ``IN`` lists; None: ``plan`` chooses, by the
        lists' lengths. Lists that go as JSON (SQLite) or as arrays (psycopg) take
        ``_any_length`` unless every one holds a single value: ``x IN (?)`` runs as ``x = ?``,
        where reading JSON into a subquery's table (SQLite) or an array into the index's keys
        (PostgreSQL) costs more than SQLAlchemy's plan, found again at once (one length), saves."""
        if not self._expanding:
            return self._plan(())
        dialect = self._dialect
        if dialect.driver == "psycopg" and dialect.paramstyle == "pyformat":
            self._any_length = self._array_plan()
        elif (
            sqlite_json(dialect)
            and dialect.paramstyle in _POSITIONAL
            and all(self._as_json(name) for name in self._expanding)
        ):
            self._any_length = self._json_plan()
        return None

    def _array_plan(self) -> _Plan | None:
        """psycopg: each ``IN`` list as ``= ANY (CAST(%(name)b AS VARCHAR[]))``, one array bound in
        binary format (``NOT IN``: ``<> ALL``). One SQL text for every length, so one prepared
        statement on the server, where SQLAlchemy's expansion made a text per combination of
        lengths: a batch's lists vary in length with it, so most of its statements were parsed
        and planned again. None when a list is not of strings or integers without a bind processor,
        or is not a plain ``IN`` (SQLAlchemy's expansion then)."""
        compiled = self._compiled
        escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
        sql = compiled.string
        for name in self._expanding:
            array = self._array_type(name)
            if array is None:
                return None
            key = escaped.get(name, name)
            token = f"__[POSTCOMPILE_{key}]"
            given = f"CAST(%({key})b AS {array})"
            sql = sql.replace(f"NOT IN ({token})", f"<> ALL ({given})").replace(
                f"IN ({token})", f"= ANY ({given})"
            )
        if "__[POSTCOMPILE_" in sql:
            return None
        if self._binary:
            sql = _TEXT_PLACEHOLDER.sub(r"%(\1)b", sql)
        state = compiled.construct_expanded_state(
            {name: [None] if bind.expanding else None for name, bind in self._binds.items() if bind.required}
        )
        keys: list[str] = []
        slots: list[tuple[str | None, int | None, Any]] = []
        for name, bind in self._binds.items():
            key = escaped.get(name, name)
            keys.append(key)
            if bind.expanding:
                slots.append((name, None, None))
            elif bind.required:
                slots.append((name, None, state.processors.get(key)))
            else:  # a value written into the statement, e.g. a status in ``status < 3``
                value = state.parameters[key]
                process = state.processors.get(key)
                slots.append((None, None, value if process is None else process(value)))
        return _Plan(sql, _arguments(keys, slots, positional=False))

    def _array_type(self, name: str) -> str | None:
        """The array type the list ``name`` is cast to, or None: no length (a cast to
        ``VARCHAR(32)[]`` would cut a longer value to one that may match), and ``BIGINT`` for
        every integer column (PostgreSQL compares across integer widths on the index)."""
        bind = self._binds[name]
        if bind.type.dialect_impl(self._dialect).bind_processor(self._dialect) is not None:
            return None
        if isinstance(bind.type, Enum | Boolean):
            return None
        if isinstance(bind.type, String):
            return "VARCHAR[]"
        if isinstance(bind.type, Integer):
            return "BIGINT[]"
        return None

    def _as_json(self, name: str) -> bool:
        """Whether the values of the list ``name`` go to SQLite as a JSON array and come back
        from ``json_each`` as they would have been bound: strings and integers with no bind
        processor (a float could come back rounded: SQLite's JSON parser is not exact)."""
        bind = self._binds[name]
        return (
            isinstance(bind.type, String | Integer)
            and not isinstance(bind.type, Boolean)
            and bind.type.dialect_impl(self._dialect).bind_processor(self._dialect) is None
        )

    def _json_plan(self) -> _Plan:
        """SQLite: each ``IN`` list as ``IN (SELECT value FROM json_each(?))`` with the list as
        one JSON text. One SQL string for every length: one plan here and one prepared statement
        in the connection's cache, where SQLAlchemy's expansion made one of each per combination
        of lengths (a batch's lists vary in length with it), and one parameter to bind instead of
        one per element. ``json_each`` yields a JSON string as TEXT and an integer as INTEGER,
        without affinity, as bound parameters are, so the comparisons are those of the expanded
        list."""
        compiled = self._compiled
        sql = compiled.string
        escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
        for name in self._expanding:
            sql = sql.replace(f"__[POSTCOMPILE_{escaped.get(name, name)}]", _JSON_LIST)
        # the other parameters as SQLAlchemy processes them: a list of one element stands in
        state = compiled.construct_expanded_state(
            {name: [None] if bind.expanding else None for name, bind in self._binds.items() if bind.required}
        )
        unescaped = {escaped_name: name for name, escaped_name in escaped.items()}
        keys = list(compiled.positiontup or ())
        slots: list[tuple[str | None, int | None, Any]] = []
        for key in keys:
            name = unescaped.get(key, key)
            if self._binds[name].expanding:
                slots.append((name, None, _json_text))
            elif self._binds[name].required:
                slots.append((name, None, state.processors.get(key)))
            else:
                value = state.parameters[key]
                process = state.processors.get(key)
                slots.append((None, None, value if process is None else process(value)))
        return _Plan(sql, _arguments(keys, slots, positional=True))

    def _plan(self, lengths: tuple[int, ...]) -> _Plan:
        """Let SQLAlchemy expand the statement for these lengths, and note where each driver
        parameter comes from: a caller's parameter, an element of one, or a constant."""
        sample: dict[str, Any] = {name: None for name, bind in self._binds.items() if bind.required}
        sample.update((name, [None] * length) for name, length in zip(self._expanding, lengths, strict=True))
        state = self._compiled.construct_expanded_state(sample)
        element_of = {
            key: (name, i) for name, keys in state.parameter_expansion.items() for i, key in enumerate(keys)
        }
        unescaped = {escaped: name for name, escaped in (self._compiled.escaped_bind_names or {}).items()}
        keys = (
            list(state.positiontup or ())
            if self._dialect.paramstyle in _POSITIONAL
            else list(state.parameters)
        )
        slots: list[tuple[str | None, int | None, Any]] = []
        for key in keys:
            name, index = element_of.get(key, (unescaped.get(key, key), None))
            process = state.processors.get(key)
            if self._binds[name].required:
                slots.append((name, index, process))
            else:  # a value written into the statement, e.g. a status in ``status < 3``
                value = state.parameters[key]
                slots.append((None, None, value if process is None else process(value)))
        sql = state.statement
        if self._binary:
            sql = _TEXT_PLACEHOLDER.sub(r"%(\1)b", sql)
        return _Plan(sql, _arguments(keys, slots, positional=self._dialect.paramstyle in _POSITIONAL))


def _arguments(
    keys: list[str], slots: list[tuple[str | None, int | None, Any]], *, positional: bool
) -> Callable[[Params], Any]:
    """The function from the caller's params to the driver's: a tuple, or a dict for named styles."""
    names = [name for name, _, _ in slots if name is not None]
    plain = all(name is not None and index is None and process is None for name, index, process in slots)
    if plain and not positional and names == keys:
        return _same
    if plain and positional:
        if len(names) == 1:
            only = names[0]
            return lambda params: (params[only],)
        return itemgetter(*names) if names else _nothing

    def build(params: Params) -> Any:
        values = []
        for name, index, extra in slots:
            if name is None:
                values.append(extra)
            else:
                value = params[name] if index is None else params[name][index]
                values.append(value if extra is None else extra(value))
        return tuple(values) if positional else dict(zip(keys, values, strict=True))

    return build


def sqlite_json(dialect: Dialect) -> bool:
    """Whether ``dialect`` is SQLite with its JSON functions (``json_each``) built in: always from
    3.38; an older one may lack them, and keeps SQLAlchemy's forms."""
    return dialect.name == "sqlite" and dialect.loaded_dbapi.sqlite_version_info >= (3, 38, 0)


def _json_text(values: Sequence[Any]) -> str:
    """An ``IN`` list as the JSON text ``json_each`` reads (text: SQLite 3.40 refuses a blob)."""
    return orjson.dumps(values).decode()


def _same(params: Params) -> Params:
    return params


def _nothing(_params: Params) -> tuple[()]:
    return ()


def _unnest_insert(statement: Insert, keys: Sequence[str]) -> Statement | None:
    """PostgreSQL: the rows of an ``insert(table)`` as one ``INSERT ... SELECT FROM unnest`` of
    one array per column, with the insert's ``ON CONFLICT`` clause if it has one (an insert of
    ``sqlalchemy.dialects.postgresql``: an upsert of many rows), or None for an insert with more to
    it (``RETURNING``, values of its own). The arrays go in binary format: as text, psycopg writes
    each one as an array literal, quoting every value (an event's JSON is full of quotes), and the
    server parses it back: most of the inbox insert's time (benchmarks/RESULTS.md)."""
    on_conflict = statement._post_values_clause
    if statement._returning or statement._values:
        return None
    if on_conflict is not None and not isinstance(statement, postgresql.Insert):
        return None
    table = statement.table
    arrays = [cast(bindparam(f"a_{key}"), ARRAY(_unsized(table.c[key].type))) for key in keys]
    rows = func.unnest(*arrays).table_valued(*keys).render_derived(name="r")
    select_rows = select(*(rows.c[key] for key in keys))
    unnest = (insert(table) if on_conflict is None else postgresql.insert(table)).from_select(
        list(keys), select_rows
    )
    unnest._post_values_clause = on_conflict  # the same clause: it names the table's columns only
    return Statement(unnest, binary=True)


def _unsized(column_type: Any) -> Any:
    """A column's type for its array's cast, without a length: an explicit cast to
    ``VARCHAR(32)`` cuts a longer value to 32 characters where the insert itself refuses it (as
    a one-row insert does)."""
    sized = isinstance(column_type, String) and column_type.length is not None
    if sized and not isinstance(column_type, Enum):
        return String()
    return column_type


def _same_type(column_type: Any) -> Callable[[Any], Any] | None:
    """What makes a column's values one Python type: a binary array holds one type only, and the
    callers may mix ``int`` and ``float`` (a time) or ``bool`` and ``int``; None: no need."""
    if isinstance(column_type, Float):
        return float
    if isinstance(column_type, Boolean):
        return bool
    if isinstance(column_type, Integer):
        return int
    return None


class Statement:
    """A Core statement compiled once per dialect and executed on the connection's DBAPI cursor.

    ``column_keys`` names the columns an ``insert(table)`` gets values for, as the keys of the
    parameter dicts given to :meth:`execute_many` or :meth:`execute`. On PostgreSQL, the
    ``execute_many`` of a plain ``insert(table)`` is one statement of arrays (``unnest``): one
    parse, plan and execution for the batch instead of one per row (psycopg's ``executemany``),
    and one SQL text whatever the number of rows, so that its prepared form is reused.
    """

    def __init__(
        self, statement: ClauseElement, *, column_keys: Sequence[str] | None = None, binary: bool = False
    ) -> None:
        """``binary``: parameters in binary format where the driver takes it (psycopg)."""
        self.statement = statement
        self._binary = binary
        self._column_keys = tuple(column_keys) if column_keys else None
        self._unnest: Statement | None = None
        self._unnest_columns: tuple[tuple[str, Callable[[Any], Any] | None], ...] = ()
        """Each column's key and what makes its values one type (see ``_same_type``)."""
        if isinstance(statement, Insert) and self._column_keys:
            self._unnest = _unnest_insert(statement, self._column_keys)
            table = statement.table
            self._unnest_columns = tuple((key, _same_type(table.c[key].type)) for key in self._column_keys)
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()
        self._last: tuple[Dialect, _Compiled] | None = None
        """The dialect of the last call and its form: a node has one engine, so this is the one."""

    def unnest_form(self) -> Insert:
        """PostgreSQL: the ``INSERT ... SELECT FROM unnest`` of ``execute_many`` (its parameters:
        ``unnest_arrays``), for a statement that merges it with others (a CTE)."""
        if self._unnest is None:
            raise ValueError("not a plain insert of rows")
        statement = self._unnest.statement
        assert isinstance(statement, Insert)
        return statement

    def unnest_arrays(self, rows: Sequence[Params]) -> dict[str, list[Any]]:
        """The parameters of ``unnest_form`` for ``rows``: one array per column, each of one type."""
        return {f"a_{key}": _column(rows, key, same) for key, same in self._unnest_columns}

    def compiled_for(self, dialect: Dialect) -> _Compiled:
        last = self._last
        if last is not None and last[0] is dialect:
            return last[1]
        found = self._compiled.get(dialect)
        if found is None:
            found = self._compiled.setdefault(
                dialect, _Compiled(self.statement, dialect, self._column_keys, binary=self._binary)
            )
        self._last = (dialect, found)
        return found

    def sql(self, dialect: Dialect, params: Params | None = None) -> str:
        """The SQL string sent to the driver for ``params`` (for tests and debugging)."""
        return self._plan(self.compiled_for(dialect), params or {}).sql

    @staticmethod
    def _plan(compiled: _Compiled, params: Params) -> _Plan:
        return compiled.fixed if compiled.fixed is not None else compiled.plan(params)

    def all(self, conn: Connection, params: Params) -> list[tuple[Any, ...]]:
        compiled = self.compiled_for(conn.dialect)
        plan = self._plan(compiled, params)
        rows: list[tuple[Any, ...]] = _run(conn, plan.sql, plan.args(params), _ALL, compiled)
        if compiled.convert is not None:
            return [_converted(row, compiled.convert) for row in rows]
        return rows

    def first(self, conn: Connection, params: Params) -> tuple[Any, ...] | None:
        compiled = self.compiled_for(conn.dialect)
        plan = self._plan(compiled, params)
        row: tuple[Any, ...] | None = _run(conn, plan.sql, plan.args(params), _ONE, compiled)
        if row is not None and compiled.convert is not None:
            return _converted(row, compiled.convert)
        return row

    def scalar(self, conn: Connection, params: Params) -> Any:
        row = self.first(conn, params)
        return None if row is None else row[0]

    def scalars(self, conn: Connection, params: Params) -> list[Any]:
        return [row[0] for row in self.all(conn, params)]

    def execute(self, conn: Connection, params: Params) -> None:
        plan = self._plan(self.compiled_for(conn.dialect), params)
        _run(conn, plan.sql, plan.args(params), _NONE)

    def execute_many(self, conn: Connection, rows: Sequence[Params]) -> None:
        """One statement for many parameter sets (``executemany``); all with the same IN lengths."""
        if not rows:
            return
        if self._unnest is not None and len(rows) > 1 and conn.dialect.name == "postgresql":
            self._unnest.execute(conn, self.unnest_arrays(rows))
            return
        plan = self._plan(self.compiled_for(conn.dialect), rows[0])
        _run(conn, plan.sql, [plan.args(row) for row in rows], _MANY)


def _column(rows: Sequence[Params], key: str, same: Callable[[Any], Any] | None) -> list[Any]:
    """The values of ``key`` in ``rows``, made one type by ``same`` (None stays None)."""
    if same is None:
        return [row[key] for row in rows]
    return [None if (value := row[key]) is None else same(value) for row in rows]


def execute_sql(conn: Connection, sql: str) -> None:
    """A literal statement without parameters (``SAVEPOINT x``) on the connection's DBAPI cursor."""
    _run(conn, sql, None, _NONE)


_NONE, _ONE, _ALL, _MANY = range(4)


def _run(conn: Connection, sql: str, args: Any, fetch: int, compiled: _Compiled | None = None) -> Any:
    """Execute on a new cursor of the connection and fetch nothing, one row, all rows, or run
    ``executemany``. The cursor is closed once read (SQLite resets the statement, as
    ``Result.first`` does). The first rows of ``compiled`` teach it its result processors."""
    cursor = None
    try:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if fetch == _MANY:
            cursor.executemany(sql, args)
        elif args is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, args)
        result = cursor.fetchall() if fetch == _ALL else cursor.fetchone() if fetch == _ONE else None
        if compiled is not None and not compiled.described:
            compiled.describe(cursor.description)
        cursor.close()
    except BaseException as exc:  # noqa: BLE001 - handed to the Connection as conn.execute does
        _raise(conn, exc, sql, args, cursor)
    return result


def _converted(row: tuple[Any, ...], processors: list[Any]) -> tuple[Any, ...]:
    return tuple(
        value if f is None or value is None else f(value) for value, f in zip(row, processors, strict=True)
    )


def _raise(conn: Connection, exc: BaseException, sql: str, args: Any, cursor: Any) -> NoReturn:
    """Raise what ``conn.execute`` would have: a DBAPI error (opening the cursor included) or an
    interruption such as KeyboardInterrupt goes through the Connection's own handler, which wraps
    it in the ``sqlalchemy.exc`` class, runs ``handle_error`` events and invalidates the connection
    on a disconnect. (``_handle_dbapi_exception`` is SQLAlchemy's internal; tests/stores/test_sql_driver
    pins what it does for us.) Anything else (a missing parameter) is raised as it is."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    if isinstance(exc, dbapi_error) or not isinstance(exc, Exception):
        conn._handle_dbapi_exception(exc, sql, args, cursor, None)
    raise exc
