"""The SQL store through SQLAlchemy: SQLite for a single node, PostgreSQL in production."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from client_sdk.contract import Status, is_group_id
from workers.errors import UnknownUser, UserExists
from workers.stores.base import (
    AcceptResult,
    InboxEntry,
    InboxItem,
    StoredMessage,
    TextSend,
    UserInfo,
    dm_conversation,
    new_message_id,
)
from workers.stores.group_rules import message_targets
from workers.stores.sql_base import Counters, NotInOneGo
from workers.stores.sql_contacts import SqlContacts
from workers.stores.sql_driver import Statement
from workers.stores.sql_groups import SqlGroups
from workers.stores.sql_media import SqlMedia
from workers.stores.sql_push import SqlPush
from workers.stores.sql_receipts import SqlReceipts
from workers.stores.sql_schema import conversations, credentials, inbox, messages, receipts, users

__all__ = ["SqlStore", "dm_conversation"]

log = logging.getLogger(__name__)

# the statements of every message, built once and run on the DBAPI cursor (see sql_base)
_USER = Statement(select(users.c.id).where(users.c.id == bindparam("b_user")))
_CREDENTIALS = Statement(
    select(credentials.c.kind, credentials.c.secret_hash)
    .join(users, users.c.id == credentials.c.user_id)
    .where(credentials.c.user_id == bindparam("b_user"), users.c.disabled.is_(False))
)
_MESSAGE_BY_COMMAND = Statement(
    select(
        messages.c.id,
        messages.c.conversation_id,
        messages.c.seq,
        messages.c.sender_id,
        messages.c.recipient_id,
        messages.c.body,
        messages.c.created_at,
    ).where(messages.c.sender_id == bindparam("b_sender"), messages.c.command_id == bindparam("b_command"))
)
_SENT_ENTRY = Statement(
    select(inbox.c.cursor, inbox.c.payload).where(
        inbox.c.user_id == bindparam("b_user"),
        inbox.c.message_id == bindparam("b_message"),
        inbox.c.kind == literal_column("'sent'"),  # a literal: the partial index matches it
    )
)
_BUMP_CONVERSATION = Statement(
    update(conversations)
    .where(conversations.c.id == bindparam("b_conversation"))
    .values(last_seq=conversations.c.last_seq + 1)
    .returning(conversations.c.last_seq)
)
_CONVERSATION_SEQS = Counters(conversations, "last_seq")
_INSERT_CONVERSATION = Statement(insert(conversations), column_keys=("id", "last_seq"))
_INSERT_MESSAGE = Statement(
    insert(messages),
    column_keys=(
        "id",
        "conversation_id",
        "seq",
        "sender_id",
        "recipient_id",
        "command_id",
        "body",
        "created_at",
    ),
)
_INSERT_RECEIPTS = Statement(insert(receipts), column_keys=("message_id", "user_id", "status"))
_SYNC = Statement(
    select(inbox.c.cursor, inbox.c.payload)
    .where(inbox.c.user_id == bindparam("b_user"), inbox.c.cursor > bindparam("b_after"))
    .order_by(inbox.c.cursor)
    .limit(bindparam("b_limit"))
)


class SqlStore(SqlPush, SqlMedia, SqlGroups, SqlContacts, SqlReceipts):
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
            return _USER.first(conn, {"b_user": user}) is not None

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
        with self._tx() as conn:  # every login: built once, run on the driver's cursor
            return [(row[0], row[1]) for row in _CREDENTIALS.all(conn, {"b_user": user})]

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
        # No lookup first: a resend is rare, and the unique (sender, command id) of its message
        # refuses it, undoing whatever it did; it is then answered with what was stored first.
        try:
            with self._tx() as conn:
                if is_group_id(recipient):
                    targets = message_targets(recipient, sender, self._members(conn, recipient))
                    conversation = recipient
                else:
                    # no recipient: the bump of its inbox cursor raises UnknownUser, undoing it all
                    conversation, targets = dm_conversation(sender, recipient), [recipient]
                return self._insert_message(
                    conn, sender, command_id, recipient, conversation, targets, text, now, media
                )
        except IntegrityError:
            # a resend, or a concurrent one that won the race: answer with what was stored
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
            if existing is None:
                raise
            return existing

    def accept_texts(self, sends: Sequence[TextSend], *, now: float) -> list[AcceptResult] | None:
        # A few statements for the lot instead of seven per message: each conversation's seq is
        # bumped by its count, the messages, receipts and inbox entries are multi-row inserts.
        # Anything unusual (a resend, an unknown user, a new conversation) undoes it all: None.
        try:
            with self._tx() as conn:
                return self._insert_texts(conn, sends, now)
        except (IntegrityError, UnknownUser, NotInOneGo):
            return None

    def _insert_texts(self, conn: Connection, sends: Sequence[TextSend], now: float) -> list[AcceptResult]:
        conversation_of = [dm_conversation(s.sender, s.recipient) for s in sends]
        counts = Counter(conversation_of)
        last = _CONVERSATION_SEQS.add(conn, counts)
        if len(last) < len(counts):
            raise NotInOneGo("a conversation's first message")
        next_seq = {conversation: last[conversation] - count + 1 for conversation, count in counts.items()}
        stored: list[StoredMessage] = []
        for send, conversation in zip(sends, conversation_of, strict=True):
            seq = next_seq[conversation]
            next_seq[conversation] = seq + 1
            stored.append(
                StoredMessage(
                    id=new_message_id(),
                    conversation=conversation,
                    seq=seq,
                    sender=send.sender,
                    recipient=send.recipient,
                    text=send.text,
                    ts=now,
                )
            )
        pairs = list(zip(stored, sends, strict=True))
        _INSERT_MESSAGE.execute_many(conn, [_message_row(m, send.command_id) for m, send in pairs])
        _INSERT_RECEIPTS.execute_many(conn, [_receipt_row(m.id, m.recipient) for m in stored])
        items = [item for m, send in pairs for item in _message_events(m, send.command_id, [m.recipient])]
        entries = self._append_many(conn, items, now)
        return [
            AcceptResult(message=m, duplicate=False, entries=entries[2 * i : 2 * i + 2], sent=entries[2 * i])
            for i, m in enumerate(stored)
        ]

    def sent_entry(self, sender: str, command_id: str) -> InboxEntry | None:
        with self._tx() as conn:
            existing = self._find_duplicate(conn, sender, command_id)
        return None if existing is None else existing.sent

    def _find_duplicate(self, conn: Connection, sender: str, command_id: str) -> AcceptResult | None:
        row = _MESSAGE_BY_COMMAND.first(conn, {"b_sender": sender, "b_command": command_id})
        if row is None:
            return None
        message = replace(_message_from_row(row), media=self._media_of(conn, row[0]))
        sent_row = _SENT_ENTRY.first(conn, {"b_user": sender, "b_message": message.id})
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
            id=new_message_id(),
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            text=text,
            ts=now,
            media=None if media is None else dict(media),
        )
        _INSERT_MESSAGE.execute(conn, _message_row(message, command_id))
        if media is not None:
            self._insert_media(conn, message.id, media)
        if targets:
            _INSERT_RECEIPTS.execute_many(conn, [_receipt_row(message.id, user) for user in targets])
        entries = self._append_many(conn, _message_events(message, command_id, targets), now)
        return AcceptResult(message=message, duplicate=False, entries=entries, sent=entries[0])

    def _next_conversation_seq(self, conn: Connection, conversation: str) -> int:
        params = {"b_conversation": conversation}
        row = _BUMP_CONVERSATION.first(conn, params)
        if row is not None:
            return int(row[0])
        try:
            with conn.begin_nested():
                _INSERT_CONVERSATION.execute(conn, {"id": conversation, "last_seq": 1})
        except IntegrityError:  # created concurrently
            row = _BUMP_CONVERSATION.first(conn, params)
            assert row is not None
            return int(row[0])
        return 1

    # ----------------------------------------------------------------- sync
    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]:
        with self._tx() as conn:
            rows = _SYNC.all(conn, {"b_user": user, "b_after": after, "b_limit": limit + 1})
        more = len(rows) > limit
        return [InboxEntry(user, int(r[0]), json.loads(r[1])) for r in rows[:limit]], more


def _message_row(message: StoredMessage, command_id: str) -> dict[str, Any]:
    """The ``messages`` row of a message just made (its time is its creation time)."""
    return {
        "id": message.id,
        "conversation_id": message.conversation,
        "seq": message.seq,
        "sender_id": message.sender,
        "recipient_id": message.recipient,
        "command_id": command_id,
        "body": message.text,
        "created_at": message.ts,
    }


def _receipt_row(message_id: str, user: str) -> dict[str, Any]:
    return {"message_id": message_id, "user_id": user, "status": int(Status.SENT)}


def _message_events(message: StoredMessage, command_id: str, targets: list[str]) -> list[InboxItem]:
    """The inbox events of a new message: ``sent`` for its sender, then a copy for each target."""
    body = message.wire()
    return [
        (message.sender, "sent", message.id, {"ref": command_id, "message": body}),
        *((user, "message", message.id, {"message": body}) for user in targets),
    ]


def _message_from_row(row: tuple[Any, ...]) -> StoredMessage:
    """A message from a row of ``_MESSAGE_BY_COMMAND``."""
    message_id, conversation, seq, sender, recipient, text, ts = row
    return StoredMessage(
        id=message_id,
        conversation=conversation,
        seq=int(seq),
        sender=sender,
        recipient=recipient,
        text=text,
        ts=float(ts),
    )
