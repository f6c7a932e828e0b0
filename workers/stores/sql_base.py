"""The shared core of the SQL store: engine, transactions and the inbox log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, event, insert, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from client_sdk.contract import VERSION
from workers.errors import StoreUnavailable, UnknownUser
from workers.stores.base import InboxEntry
from workers.stores.sql_schema import inbox, metadata, users

__all__ = ["SqlBase"]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class SqlBase:
    """Engine and transactions on SQLAlchemy Core. Thread-safe: each call uses its own pooled connection."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgres":
            parsed = parsed.set(drivername="postgresql")
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs: dict[str, Any] = {"future": True}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs["pool_pre_ping"] = True
        self.url = parsed
        self.engine: Engine = create_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def __repr__(self) -> str:
        return f"SqlStore({self.url.render_as_string(hide_password=True)!r})"

    def create_schema(self) -> None:
        with self._tx() as conn:
            metadata.create_all(conn)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise StoreUnavailable(f"database unavailable: {exc.orig}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable(f"database connection lost: {exc.orig}") from exc
            raise

    def _append(
        self, conn: Connection, user: str, kind: str, message_id: str | None, body: dict[str, Any], now: float
    ) -> InboxEntry:
        row = conn.execute(
            update(users)
            .where(users.c.id == user)
            .values(inbox_seq=users.c.inbox_seq + 1)
            .returning(users.c.inbox_seq)
        ).first()
        if row is None:
            raise UnknownUser(user)
        cursor = int(row[0])
        payload = {"v": VERSION, "type": kind, "cursor": cursor, **body}
        conn.execute(
            insert(inbox).values(
                user_id=user,
                cursor=cursor,
                kind=kind,
                message_id=message_id,
                payload=json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
                created_at=now,
            )
        )
        return InboxEntry(user, cursor, payload)
