"""The SQL store through SQLAlchemy: SQLite for a single node, PostgreSQL in production."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from client_sdk.contract import Status, is_group_id
from workers.errors import UnknownUser, UserExists
from workers.stores.base import (
    AcceptResult,
    InboxEntry,
    ReceiptResult,
    StoredMessage,
    UserInfo,
    dm_conversation,
)
from workers.stores.group_rules import message_targets
from workers.stores.sql_contacts import SqlContacts
from workers.stores.sql_groups import SqlGroups
from workers.stores.sql_media import SqlMedia
from workers.stores.sql_push import SqlPush
from workers.stores.sql_schema import conversations, credentials, inbox, messages, receipts, users

__all__ = ["SqlStore", "dm_conversation"]

log = logging.getLogger(__name__)


class SqlStore(SqlPush, SqlMedia, SqlGroups, SqlContacts):
    """The whole store on SQLAlchemy Core (see workers.stores.base.Store)."""

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
        self,
        *,
        sender: str,
        command_id: str,
        recipient: str,
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
    ) -> AcceptResult:
        try:
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
                if existing is not None:
                    return existing
                if is_group_id(recipient):
                    targets = message_targets(recipient, sender, self._members(conn, recipient))
                    conversation = recipient
                else:
                    if conn.execute(select(users.c.id).where(users.c.id == recipient)).first() is None:
                        raise UnknownUser(recipient)
                    conversation, targets = dm_conversation(sender, recipient), [recipient]
                return self._insert_message(
                    conn, sender, command_id, recipient, conversation, targets, text, now, media
                )
        except IntegrityError:
            # a concurrent resend of the same command won the race: answer with what it stored
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
            if existing is None:
                raise
            return existing

    def sent_entry(self, sender: str, command_id: str) -> InboxEntry | None:
        with self._tx() as conn:
            existing = self._find_duplicate(conn, sender, command_id)
        return None if existing is None else existing.sent

    def _find_duplicate(self, conn: Connection, sender: str, command_id: str) -> AcceptResult | None:
        row = conn.execute(
            select(messages).where(messages.c.sender_id == sender, messages.c.command_id == command_id)
        ).first()
        if row is None:
            return None
        message = replace(_message_from_row(row._mapping), media=self._media_of(conn, row.id))
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
        self,
        conn: Connection,
        sender: str,
        command_id: str,
        recipient: str,
        conversation: str,
        targets: list[str],
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
    ) -> AcceptResult:
        seq = self._next_conversation_seq(conn, conversation)
        message = StoredMessage(
            id=uuid.uuid4().hex,
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            text=text,
            ts=now,
            media=None if media is None else dict(media),
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
        if media is not None:
            self._insert_media(conn, message.id, media)
        if targets:
            conn.execute(
                insert(receipts),
                [{"message_id": message.id, "user_id": user, "status": int(Status.SENT)} for user in targets],
            )
        body = message.wire()
        sent = self._append(conn, sender, "sent", message.id, {"ref": command_id, "message": body}, now)
        copies = [self._append(conn, user, "message", message.id, {"message": body}, now) for user in targets]
        return AcceptResult(message=message, duplicate=False, entries=[sent, *copies], sent=sent)

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
                    messages.c.recipient_id,
                )
                .join(messages, messages.c.id == receipts.c.message_id)
                .where(receipts.c.user_id == user, receipts.c.message_id.in_(list(message_ids)))
            ).all()
            found = {row[0]: row for row in rows}
            for message_id in message_ids:
                row = found.get(message_id)
                if row is None:
                    refused.append(message_id)
                elif row[1] < status:  # statuses only move forward
                    entries += self._advance(conn, user, status, row, now)
        return ReceiptResult(entries=entries, not_recipient=refused)

    def _advance(self, conn: Connection, user: str, status: Status, row: Any, now: float) -> list[InboxEntry]:
        """Move one recipient's status and tell the sender; ``all`` once every recipient is there."""
        message_id, previous, sender, conversation, seq, recipient = row
        group = is_group_id(recipient)
        if group:
            # members' receipts for one message may be applied by several workers at once: take
            # the message's row lock so that exactly one of them sees the status complete
            conn.execute(select(messages.c.id).where(messages.c.id == message_id).with_for_update())
        floor_before = self._lowest_status(conn, message_id) if group else previous
        values: dict[str, Any] = {"status": int(status)}
        if status >= Status.DELIVERED > previous:
            values["delivered_at"] = now
        if status >= Status.READ:
            values["read_at"] = now
        moved = conn.execute(
            update(receipts)
            .where(
                receipts.c.message_id == message_id,
                receipts.c.user_id == user,
                receipts.c.status < int(status),  # another device of the user may have just moved it
            )
            .values(**values)
        )
        if moved.rowcount == 0:
            return []
        floor_after = self._lowest_status(conn, message_id) if group else status
        body = {
            "message_id": message_id,
            "conversation": conversation,
            "seq": int(seq),
            "by": user,
            "ts": now,
        }
        out = []
        if floor_before < floor_after < status:
            # this receipt also completed a lower status for everyone (the last to get it read it at once)
            lower = {"status": Status(floor_after).label, **body, "all": True}
            out.append(self._append(conn, sender, "receipt", message_id, lower, now))
        event = {"status": status.label, **body, "all": floor_after >= status}
        out.append(self._append(conn, sender, "receipt", message_id, event, now))
        return out

    @staticmethod
    def _lowest_status(conn: Connection, message_id: str) -> int:
        lowest = conn.execute(select(func.min(receipts.c.status)).where(receipts.c.message_id == message_id))
        return int(lowest.scalar_one())

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
