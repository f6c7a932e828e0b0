"""Messages in the SQL store: storing them (alone or a batch's 1-on-1 texts together), finding a
resent one, and reading the inbox log (sync)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from client_sdk.contract import Status, is_group_id
from workers.errors import UnknownUser
from workers.stores.records import AcceptResult, InboxEntry, StoredMessage, SyncPage, TextSend
from workers.stores.rules.group_settings import check_may_send
from workers.stores.rules.inbox import sync_page
from workers.stores.rules.messages import (
    dm_conversation,
    message_events,
    message_targets,
    new_message_id,
    new_message_ids,
)
from workers.stores.sql.base import Counters, NotInOneGo
from workers.stores.sql.blocks import blocked_pairs
from workers.stores.sql.chat_rows import note_direct
from workers.stores.sql.driver import Statement
from workers.stores.sql.merged import inserts_and_append, text_reads, text_writes
from workers.stores.sql.replies import SqlReplies
from workers.stores.sql.schema import conversations, inbox, message_forwards, messages, receipts
from workers.stores.sql.search_index import INSERT_TSVS, Indexed, SqlSearchIndex, tsv_arrays
from workers.stores.sql.timers import record_expiry, timers_of

__all__ = ["SqlMessages"]

log = logging.getLogger(__name__)

# the statements of every message, built once and run on the DBAPI cursor (see base)
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
_TEXT_WRITES = inserts_and_append(  # PostgreSQL: a batch of texts' writes (see merged)
    _INSERT_MESSAGE.unnest_form(), INSERT_TSVS.statement, _INSERT_RECEIPTS.unnest_form()
)
_SYNC = Statement(
    select(inbox.c.cursor, inbox.c.payload)
    .where(inbox.c.user_id == bindparam("b_user"), inbox.c.cursor > bindparam("b_after"))
    .order_by(inbox.c.cursor)
    .limit(bindparam("b_limit"))
)


class SqlMessages(SqlReplies, SqlSearchIndex):
    """Messages need their group's members (groups), record their media objects (media) and the
    quote of a reply (replies), and index their text for search (search_index)."""

    def accept_message(
        self,
        *,
        sender: str,
        command_id: str,
        recipient: str,
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
        reply_to: str | None = None,
    ) -> AcceptResult:
        # No lookup first: a resend is rare, and the unique (sender, command id) of its message
        # refuses it, undoing whatever it did; it is then answered with what was stored first.
        try:
            with self._tx() as conn:
                conversation, targets = self._targets(conn, sender, recipient)
                reply = None if reply_to is None else self._quote_for(conn, sender, conversation, reply_to)
                return self._insert_message(
                    conn, sender, command_id, recipient, conversation, targets, text, now, media, reply
                )
        except IntegrityError:
            # a resend, or a concurrent one that won the race: answer with what was stored
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
            if existing is None:
                raise
            return existing

    def _targets(self, conn: Connection, sender: str, recipient: str) -> tuple[str, list[str]]:
        """The conversation of ``sender``'s message to ``recipient`` and who gets a copy."""
        if is_group_id(recipient):
            roster = self._roster(conn, recipient)
            targets = message_targets(recipient, sender, None if roster is None else roster.members)
            check_may_send(recipient, sender, None if roster is None else roster.senders)
            return recipient, targets
        # no recipient: the bump of its inbox cursor raises UnknownUser, undoing it all
        conversation = dm_conversation(sender, recipient)
        if blocked_pairs(conn, [(recipient, sender)]):
            return conversation, []  # blocked: stored and sent, but no copy (rules.blocks)
        return conversation, [recipient]

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
        # whose recipient blocks its sender (no copy for them, rules.blocks)
        pairs = {(s.recipient, s.sender) for s in sends}
        if self._sqlite:
            last = _CONVERSATION_SEQS.add(conn, counts)
            timers = timers_of(conn, counts)  # disappearing messages: one lookup for the batch
            blocked = blocked_pairs(conn, pairs)  # one lookup for the batch
        else:  # the same, as one statement
            last, timers, blocked = text_reads(conn, counts, pairs)
        if len(last) < len(counts):
            raise NotInOneGo("a conversation's first message")
        next_seq = {conversation: last[conversation] - count + 1 for conversation, count in counts.items()}
        stored: list[StoredMessage] = []
        ids = new_message_ids(len(sends))
        for send, conversation, message_id in zip(sends, conversation_of, ids, strict=True):
            seq = next_seq[conversation]
            next_seq[conversation] = seq + 1
            stored.append(
                StoredMessage(
                    id=message_id,
                    conversation=conversation,
                    seq=seq,
                    sender=send.sender,
                    recipient=send.recipient,
                    text=send.text,
                    ts=now,
                    expires_at=now + timers[conversation] if conversation in timers else None,
                )
            )
        pairs_of = list(zip(stored, sends, strict=True))
        targets = [[] if (m.recipient, m.sender) in blocked else [m.recipient] for m in stored]
        message_rows = [_message_row(m, send.command_id) for m, send in pairs_of]
        receipt_rows = [
            _receipt_row(m.id, user) for m, users in zip(stored, targets, strict=True) for user in users
        ]
        indexed = [Indexed(m.id, m.text, m.conversation, (m.sender, m.recipient)) for m in stored]
        expiring = [(m.id, m.expires_at) for m in stored if m.expires_at is not None]
        items = [
            item
            for (m, send), users in zip(pairs_of, targets, strict=True)
            for item in message_events(m, send.command_id, users)
        ]
        if self._sqlite:
            _INSERT_MESSAGE.execute_many(conn, message_rows)
            record_expiry(conn, expiring)
            self._index_texts(conn, indexed)
            _INSERT_RECEIPTS.execute_many(conn, receipt_rows)
            entries = self._append_many(conn, items, now)
        else:  # the inserts, the inbox cursors' bump and the entries as one statement
            inserted = {
                **_INSERT_MESSAGE.unnest_arrays(message_rows),
                **tsv_arrays(indexed),
                **_INSERT_RECEIPTS.unnest_arrays(receipt_rows),
            }
            entries = text_writes(conn, _TEXT_WRITES, inserted, items, now)
            record_expiry(conn, expiring)
        results = []
        start = 0
        for m, users in zip(stored, targets, strict=True):
            end = start + 1 + len(users)
            results.append(
                AcceptResult(message=m, duplicate=False, entries=entries[start:end], sent=entries[start])
            )
            start = end
        return results

    def sent_entry(self, sender: str, command_id: str) -> InboxEntry | None:
        with self._tx() as conn:
            existing = self._find_duplicate(conn, sender, command_id)
        return None if existing is None else existing.sent

    def _find_duplicate(self, conn: Connection, sender: str, command_id: str) -> AcceptResult | None:
        row = _MESSAGE_BY_COMMAND.first(conn, {"b_sender": sender, "b_command": command_id})
        if row is None:
            return None
        message = replace(
            _message_from_row(row),
            media=self._media_of(conn, row[0]),
            reply=self._reply_of(conn, row[0]),
            forwarded=conn.scalar(
                select(message_forwards.c.message_id).where(message_forwards.c.message_id == row[0])
            )
            is not None,
        )
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
        reply: Mapping[str, Any] | None = None,
        forwarded_from: str | None = None,
    ) -> AcceptResult:
        """``reply``: the quote of a reply; ``forwarded_from``: the message a forward copies (its
        media objects are then shared, not owned)."""
        seq = self._next_conversation_seq(conn, conversation)
        timer = timers_of(conn, [conversation]).get(conversation)
        if seq == 1 and not is_group_id(conversation):  # the chat list's rows
            note_direct(conn, conversation, (sender, recipient), now)
        message = StoredMessage(
            id=new_message_id(),
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            text=text,
            ts=now,
            media=None if media is None else dict(media),
            reply=None if reply is None else dict(reply),
            forwarded=forwarded_from is not None,
            expires_at=None if timer is None else now + timer,
        )
        _INSERT_MESSAGE.execute(conn, _message_row(message, command_id))
        if message.expires_at is not None:
            record_expiry(conn, [(message.id, message.expires_at)])
        self._index_texts(conn, [Indexed(message.id, text, conversation, (sender, *targets))])
        if forwarded_from is not None:
            conn.execute(insert(message_forwards).values(message_id=message.id, original_id=forwarded_from))
            if media is not None:
                self._insert_media(conn, message.id, media, shared=True)
        elif media is not None:
            self._insert_media(conn, message.id, media)
        if reply is not None:
            self._insert_reply(conn, message.id, reply)
        if targets:
            _INSERT_RECEIPTS.execute_many(conn, [_receipt_row(message.id, user) for user in targets])
        entries = self._append_many(conn, message_events(message, command_id, targets), now)
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

    def sync_page(self, *, user: str, after: int, limit: int, max_bytes: int) -> SyncPage:
        # the stored text is the event's wire JSON (events.dumps): a page of a catching-up
        # device is written from it as it is, where parsing and encoding each again cost most
        with self._tx() as conn:
            rows = _SYNC.all(conn, {"b_user": user, "b_after": after, "b_limit": limit + 1})
        return sync_page(
            ((int(cursor), orjson.Fragment(text), len(text)) for cursor, text in rows[:limit]),
            more=len(rows) > limit,
            max_bytes=max_bytes,
        )


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
