"""The SQL store through SQLAlchemy: SQLite for a single node, PostgreSQL in production."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from client_sdk.contract import VERSION, Status
from workers.errors import StoreUnavailable, UnknownUser, UserExists
from workers.stores.base import AcceptResult, InboxEntry, ReceiptResult, StoredMessage, UserInfo
from workers.stores.sql_schema import conversations, credentials, inbox, messages, metadata, receipts, users

__all__ = ["SqlStore", "dm_conversation"]

log = logging.getLogger(__name__)


def dm_conversation(a: str, b: str) -> str:
    """The conversation id of two users' 1-on-1 chat (the same whichever side asks)."""
    first, second = sorted((a, b))
    return f"dm:{first}:{second}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class SqlStore:
    """Store on SQLAlchemy Core. Thread-safe: each call uses its own pooled connection."""

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

    # ----------------------------------------------------------------- users and credentials
    def create_user(self, user: str, *, now: float) -> None:
        try:
            with self._tx() as conn:
                conn.execute(insert(users).values(id=user, created_at=now, inbox_seq=0, disabled=False))
        except IntegrityError:
            raise UserExists(user) from None

    def delete_user(self, user: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(credentials).where(credentials.c.user_id == user))
            if conn.execute(delete(users).where(users.c.id == user)).rowcount == 0:
                raise UnknownUser(user)

    def user_exists(self, user: str) -> bool:
        with self._tx() as conn:
            return conn.execute(select(users.c.id).where(users.c.id == user)).first() is not None

    def list_users(self) -> list[UserInfo]:
        counts = (
            select(credentials.c.user_id, func.count().label("n")).group_by(credentials.c.user_id).subquery()
        )
        query = (
            select(users.c.id, users.c.created_at, users.c.last_seen, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.user_id == users.c.id)
            .order_by(users.c.id)
        )
        with self._tx() as conn:
            return [UserInfo(row[0], row[1], row[2], int(row[3])) for row in conn.execute(query)]

    def add_credential(self, user: str, *, kind: str, secret_hash: str, now: float) -> int:
        with self._tx() as conn:
            if conn.execute(select(users.c.id).where(users.c.id == user)).first() is None:
                raise UnknownUser(user)
            result = conn.execute(
                insert(credentials).values(user_id=user, kind=kind, secret_hash=secret_hash, created_at=now)
            )
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def remove_credentials(self, user: str) -> int:
        with self._tx() as conn:
            return int(conn.execute(delete(credentials).where(credentials.c.user_id == user)).rowcount)

    def credential_hashes(self, user: str) -> list[tuple[str, str]]:
        query = (
            select(credentials.c.kind, credentials.c.secret_hash)
            .join(users, users.c.id == credentials.c.user_id)
            .where(credentials.c.user_id == user, users.c.disabled.is_(False))
        )
        with self._tx() as conn:
            return [(row[0], row[1]) for row in conn.execute(query)]

    def set_last_seen(self, user: str, ts: float) -> None:
        with self._tx() as conn:
            conn.execute(update(users).where(users.c.id == user).values(last_seen=ts))

    def last_seen_all(self) -> dict[str, float]:
        with self._tx() as conn:
            rows = conn.execute(select(users.c.id, users.c.last_seen).where(users.c.last_seen.is_not(None)))
            return {row[0]: float(row[1]) for row in rows}

    # ----------------------------------------------------------------- messages
    def accept_message(
        self, *, sender: str, command_id: str, recipient: str, text: str, now: float
    ) -> AcceptResult:
        try:
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
                if existing is not None:
                    return existing
                if conn.execute(select(users.c.id).where(users.c.id == recipient)).first() is None:
                    raise UnknownUser(recipient)
                return self._insert_message(conn, sender, command_id, recipient, text, now)
        except IntegrityError:
            # a concurrent resend of the same command won the race: answer with what it stored
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
            if existing is None:
                raise
            return existing

    def _find_duplicate(self, conn: Connection, sender: str, command_id: str) -> AcceptResult | None:
        row = conn.execute(
            select(messages).where(messages.c.sender_id == sender, messages.c.command_id == command_id)
        ).first()
        if row is None:
            return None
        message = _message_from_row(row._mapping)
        sent_row = conn.execute(
            select(inbox.c.cursor, inbox.c.payload).where(
                inbox.c.user_id == sender, inbox.c.message_id == message.id, inbox.c.kind == "sent"
            )
        ).first()
        if sent_row is None:  # pragma: no cover - written in the same transaction as the message
            raise RuntimeError(f"message {message.id} has no sent entry")
        sent = InboxEntry(sender, int(sent_row[0]), json.loads(sent_row[1]))
        return AcceptResult(message=message, duplicate=True, entries=[], sent=sent)

    def _insert_message(
        self, conn: Connection, sender: str, command_id: str, recipient: str, text: str, now: float
    ) -> AcceptResult:
        conversation = dm_conversation(sender, recipient)
        seq = self._next_conversation_seq(conn, conversation)
        message = StoredMessage(
            id=uuid.uuid4().hex,
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            text=text,
            ts=now,
        )
        conn.execute(
            insert(messages).values(
                id=message.id,
                conversation_id=conversation,
                seq=seq,
                sender_id=sender,
                recipient_id=recipient,
                command_id=command_id,
                body=text,
                created_at=now,
            )
        )
        conn.execute(
            insert(receipts).values(message_id=message.id, user_id=recipient, status=int(Status.SENT))
        )
        body = message.wire()
        sent = self._append(conn, sender, "sent", message.id, {"ref": command_id, "message": body}, now)
        delivered = self._append(conn, recipient, "message", message.id, {"message": body}, now)
        return AcceptResult(message=message, duplicate=False, entries=[sent, delivered], sent=sent)

    def _next_conversation_seq(self, conn: Connection, conversation: str) -> int:
        bump = (
            update(conversations)
            .where(conversations.c.id == conversation)
            .values(last_seq=conversations.c.last_seq + 1)
            .returning(conversations.c.last_seq)
        )
        row = conn.execute(bump).first()
        if row is not None:
            return int(row[0])
        try:
            with conn.begin_nested():
                conn.execute(insert(conversations).values(id=conversation, last_seq=1))
        except IntegrityError:  # created concurrently
            row = conn.execute(bump).first()
            assert row is not None
            return int(row[0])
        return 1

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

    # ----------------------------------------------------------------- receipts
    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult:
        entries: list[InboxEntry] = []
        refused: list[str] = []
        with self._tx() as conn:
            rows = conn.execute(
                select(
                    receipts.c.message_id,
                    receipts.c.status,
                    messages.c.sender_id,
                    messages.c.conversation_id,
                    messages.c.seq,
                )
                .join(messages, messages.c.id == receipts.c.message_id)
                .where(receipts.c.user_id == user, receipts.c.message_id.in_(list(message_ids)))
            ).all()
            found = {row[0]: row for row in rows}
            for message_id in message_ids:
                row = found.get(message_id)
                if row is None:
                    refused.append(message_id)
                    continue
                if row[1] >= status:
                    continue  # statuses only move forward
                values: dict[str, Any] = {"status": int(status)}
                if status >= Status.DELIVERED and row[1] < Status.DELIVERED:
                    values["delivered_at"] = now
                if status >= Status.READ:
                    values["read_at"] = now
                conn.execute(
                    update(receipts)
                    .where(receipts.c.message_id == message_id, receipts.c.user_id == user)
                    .values(**values)
                )
                body = {
                    "status": status.label,
                    "message_id": message_id,
                    "conversation": row[3],
                    "seq": int(row[4]),
                    "by": user,
                    "ts": now,
                }
                entries.append(self._append(conn, row[2], "receipt", message_id, body, now))
        return ReceiptResult(entries=entries, not_recipient=refused)

    # ----------------------------------------------------------------- sync
    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]:
        query = (
            select(inbox.c.cursor, inbox.c.payload)
            .where(inbox.c.user_id == user, inbox.c.cursor > after)
            .order_by(inbox.c.cursor)
            .limit(limit + 1)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        return [InboxEntry(user, int(r[0]), json.loads(r[1])) for r in rows[:limit]], more


def _message_from_row(row: Any) -> StoredMessage:
    return StoredMessage(
        id=row["id"],
        conversation=row["conversation_id"],
        seq=int(row["seq"]),
        sender=row["sender_id"],
        recipient=row["recipient_id"],
        text=row["body"],
        ts=float(row["created_at"]),
    )
