"""The PostgreSQL plans of the chat path's statements (a batch of texts, a batch of receipts) use
indexes, never a sequential scan of a table that grows with messages, both on tables that were
never analyzed (a fresh database before autovacuum first runs, which PostgreSQL has no column
statistics for) and on analyzed ones. The tables are filled to a realistic size (100,000 messages
of 5,000 users) in a schema of their own, as in test_sql_indexes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import ClientCursor
from sqlalchemy import Connection, create_engine, text

from client_sdk.contract import Status
from tests.harness import unique
from tests.stores.test_sql_indexes import _created
from workers.stores.sql import (
    base,
    blocks,
    chat_rows,
    merged,
    messages,
    privacy_data,
    receipts,
    statistics,
    timers,
)
from workers.stores.sql.driver import Statement
from workers.stores.sql.store import SqlStore

pytestmark = pytest.mark.postgres

USERS = 5_000
MESSAGES = 100_000
GROWING = ("messages", "receipts", "inbox", "message_tsv")
"""Tables that grow with messages: a sequential scan of any of them is a bug on the chat path."""

# the data: user u<n>; a 1-on-1 conversation between u<2k> and u<2k+1>; message m<n> in
# conversation n % 2,500 from its even user to its odd one, with its receipt and two inbox entries
_EVEN = f"(2 * mod(i, {USERS // 2}))"  # message i's sender; its recipient is the next user
_FILL = [
    f"INSERT INTO users (id, created_at, inbox_seq, disabled) SELECT 'u' || i, 0, {MESSAGES}, false"
    f" FROM generate_series(0, {USERS - 1}) i",
    f"INSERT INTO conversations (id, last_seq) SELECT 'dm:u' || (2 * i) || ':u' || (2 * i + 1),"
    f" {MESSAGES // (USERS // 2)} FROM generate_series(0, {USERS // 2 - 1}) i",
    "INSERT INTO messages (id, conversation_id, seq, sender_id, recipient_id, command_id, body, created_at)"
    f" SELECT 'm' || i, 'dm:u' || {_EVEN} || ':u' || ({_EVEN} + 1), i / {USERS // 2} + 1,"
    f" 'u' || {_EVEN}, 'u' || ({_EVEN} + 1), 'c' || i, 'hello', i FROM generate_series(0, {MESSAGES - 1}) i",
    "INSERT INTO receipts (message_id, user_id, status)"
    f" SELECT 'm' || i, 'u' || ({_EVEN} + 1), 1 FROM generate_series(0, {MESSAGES - 1}) i",
    "INSERT INTO inbox (user_id, cursor, kind, message_id, payload, created_at)"
    f" SELECT 'u' || ({_EVEN} + k), i, CASE k WHEN 0 THEN 'sent' ELSE 'message' END,"
    f" 'm' || i, '{{}}', i FROM generate_series(0, {MESSAGES - 1}) i, generate_series(0, 1) k",
]

IDS = [f"m{i}" for i in range(MESSAGES - 200, MESSAGES, 2)]  # a hundred recent messages
SENDERS = [f"u{2 * i}" for i in range(50)]
RECIPIENTS = [f"u{2 * i + 1}" for i in range(50)]
CONVERSATIONS = [f"dm:u{2 * i}:u{2 * i + 1}" for i in range(50)]


def _hot() -> dict[str, tuple[Statement, dict[str, Any]]]:
    """The statements of the chat path that read or update existing rows, with parameters."""
    return {
        "inbox cursors: lock and bump": (
            base._INBOXES._lock_and_bump,
            {"b_keys": sorted(SENDERS + RECIPIENTS), "b_counts": [1] * len(SENDERS + RECIPIENTS)},
        ),
        "inbox cursors: bump": (base._INBOXES._bump, {"b_keys": SENDERS + RECIPIENTS, "b_count": 1}),
        "conversation seqs: lock and bump": (
            messages._CONVERSATION_SEQS._lock_and_bump,
            {"b_keys": CONVERSATIONS, "b_counts": [1, 2] * (len(CONVERSATIONS) // 2)},
        ),
        "conversation seqs: bump": (
            messages._CONVERSATION_SEQS._bump,
            {"b_keys": CONVERSATIONS, "b_count": 1},
        ),
        "resend: message": (messages._MESSAGE_BY_COMMAND, {"b_sender": "u0", "b_command": "c5"}),
        "resend: sent entry": (messages._SENT_ENTRY, {"b_user": "u0", "b_message": "m0"}),
        "sync": (messages._SYNC, {"b_user": "u1", "b_after": 10, "b_limit": 101}),
        "blocks": (blocks._BLOCKS_AMONG, {"b_blockers": RECIPIENTS, "b_blocked": SENDERS}),
        "timers": (timers._TIMERS_OF, {"b_ids": CONVERSATIONS}),
        "read receipts off": (privacy_data._RECEIPTS_OFF, {"b_users": RECIPIENTS}),
        "read positions": (chat_rows._READS, {"b_users": RECIPIENTS, "b_conversations": CONVERSATIONS}),
        "receipts: rows of a user": (receipts._ROWS, {"b_user": "u1", "b_ids": IDS}),
        "receipts: rows of a batch": (receipts._ROWS_OF_MESSAGES, {"b_ids": IDS}),
        "receipts: rows of a batch's group messages": (receipts._ROWS_OF_GROUP_MESSAGES, {"b_ids": IDS}),
        "receipts: move a user's": (
            receipts._MOVE[Status.DELIVERED],
            {"b_user": "u1", "b_ids": IDS, "b_now": 1.0},
        ),
        "receipts: move a batch's": (
            receipts._MOVE_MESSAGES[Status.READ],
            {"b_ids": IDS, "b_now": 1.0},
        ),
        "receipts: move a batch's and append to the inboxes": (
            receipts._MOVE_MESSAGES_AND_APPEND[Status.DELIVERED].many,
            {"b_ids": IDS, "b_now": 1.0, **_entries(SENDERS)},
        ),
        "receipts: move a batch's and append to one inbox": (
            receipts._MOVE_MESSAGES_AND_APPEND[Status.DELIVERED].one,
            {"b_ids": IDS[:1], "b_now": 1.0, **_entries(SENDERS[:1])},
        ),
        "texts: seqs, timers and blocks": (merged.TEXT_READS.many, _text_reads(CONVERSATIONS)),
        "texts: one seq, timers and blocks": (merged.TEXT_READS.one, _text_reads(CONVERSATIONS[:1])),
        "texts: inserts and the inbox appends": (messages._TEXT_WRITES.many, _text_writes(50)),
        "texts: inserts and one inbox append": (messages._TEXT_WRITES.one, _text_writes(1, one_inbox=True)),
        "receipts: lowest": (receipts._LOWEST, {"b_ids": IDS}),
        "receipts: lock messages": (receipts._LOCK_MESSAGES, {"b_ids": IDS}),
    }


def _text_reads(conversations: list[str]) -> dict[str, Any]:
    """Parameters of the texts' merged reads: a message in each conversation."""
    return {
        "b_keys": conversations,
        "b_counts": [1, 2] * (len(conversations) // 2) or [1],
        "t_ids": conversations,
        "b_blockers": RECIPIENTS[: len(conversations)],
        "b_blocked": SENDERS[: len(conversations)],
    }


def _text_writes(count: int, *, one_inbox: bool = False) -> dict[str, Any]:
    """Parameters of the texts' merged writes: a new message from each of ``count`` senders to its
    recipient; ``one_inbox``: only the sender's inbox gets an event (its recipient blocks it)."""
    rows = [
        {
            "id": f"new{i}",
            "conversation_id": conversation,
            "seq": 1_000,
            "sender_id": sender,
            "recipient_id": recipient,
            "command_id": f"new{i}",
            "body": "hello",
            "created_at": 1.0,
        }
        for i, (sender, recipient, conversation) in enumerate(
            zip(SENDERS[:count], RECIPIENTS[:count], CONVERSATIONS[:count], strict=True)
        )
    ]
    receipt_rows = (
        []
        if one_inbox
        else [{"message_id": row["id"], "user_id": row["recipient_id"], "status": 1} for row in rows]
    )
    return {
        **messages._INSERT_MESSAGE.unnest_arrays(rows),
        **messages._INSERT_RECEIPTS.unnest_arrays(receipt_rows),
        "ids": [row["id"] for row in rows],
        "bodies": ["hello"] * len(rows),
        "tags": ["#u0"] * len(rows),
        **_entries(SENDERS[:count] if one_inbox else SENDERS[:count] + RECIPIENTS[:count]),
    }


def _entries(users: list[str]) -> dict[str, Any]:
    """Parameters of the inbox cursors' bump and entries merged into a statement: one event each."""
    keys = sorted(users)
    return {
        "b_keys": keys,
        "b_counts": [1] * len(keys),
        "e_users": keys,
        "e_kinds": ["message"] * len(keys),
        "e_messages": [None] * len(keys),
        "e_heads": ['{"cursor":'] * len(keys),
        "e_tails": ["}"] * len(keys),
        "e_now": 1.0,
    }


@pytest.fixture(scope="module")
def filled(postgres_url: str) -> Iterator[str]:
    """A schema of the store's tables, filled and never analyzed."""
    schema = unique("plans").replace("-", "_")
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        url = f"{postgres_url}?options=-csearch_path%3D{schema}"
        _created(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            for sql in _FILL:
                conn.exec_driver_sql(sql)
        engine.dispose()
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _plans(conn: Connection, *, generic: bool = False) -> dict[str, str]:
    """Each hot statement's plan for its parameters; ``generic``: the plan PostgreSQL may keep for
    a prepared statement whatever its parameters (psycopg prepares a statement it runs often, and
    an ``IN`` list is one array parameter, so every batch runs the same one)."""
    plans = {}
    for name, (statement, params) in _hot().items():
        sql = statement.sql(conn.dialect, params)
        args = statement.compiled_for(conn.dialect).plan(params).args(params)
        dbapi = conn.connection.dbapi_connection
        cursor = dbapi.cursor()  # type: ignore[union-attr]
        if generic:  # PREPARE with $n for each name, then EXPLAIN EXECUTE it with literals
            numbered, names = _numbered(sql)
            literals = ClientCursor(dbapi).mogrify(", ".join(["%s"] * len(names)), [args[n] for n in names])
            cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            cursor.execute(f"PREPARE hot AS {numbered}")
            cursor.execute(f"EXPLAIN EXECUTE hot({literals})")
        else:
            cursor.execute(f"EXPLAIN {sql}", args)
        plans[name] = " | ".join(row[0] for row in cursor.fetchall())
        if generic:
            cursor.execute("DEALLOCATE hot")
        cursor.close()
    return plans


_PLACEHOLDER = re.compile(r"%\(([^)]+)\)[sb]")


def _numbered(sql: str) -> tuple[str, list[str]]:
    """``sql`` with ``$1, $2...`` for psycopg's named placeholders, and the names in that order."""
    names = list(dict.fromkeys(_PLACEHOLDER.findall(sql)))
    return _PLACEHOLDER.sub(lambda m: f"${names.index(m.group(1)) + 1}", sql), names


def _sequential(plans: dict[str, str]) -> dict[str, str]:
    return {name: plan for name, plan in plans.items() if any(f"Seq Scan on {t} " in plan for t in GROWING)}


POSTGRES_ONLY = {
    "receipts: move a batch's and append to the inboxes",
    "receipts: move a batch's and append to one inbox",
    "texts: seqs, timers and blocks",
    "texts: one seq, timers and blocks",
    "texts: inserts and the inbox appends",
    "texts: inserts and one inbox append",
}
"""Statements that merge several of a step's (workers/stores/sql/merged.py): SQLite keeps them apart."""

NEED_STATISTICS = {
    "receipts: move a batch's",
    "receipts: move a batch's and append to the inboxes",
    "receipts: move a batch's and append to one inbox",
    "receipts: lowest",
    "receipts: rows of a batch's group messages",
}
"""Joins of ``messages`` to ``receipts`` that the planner hashes over a scan of ``receipts`` while it
has no statistics of it (no shape avoids that): the store analyzes the tables as they grow."""


def test_the_hot_statements_use_indexes_without_statistics_and_the_store_keeps_them(filled: str) -> None:
    store = SqlStore(filled)
    engine = create_engine(filled)
    try:
        with engine.connect() as conn:
            analyzed = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema()"
                    " AND tablename IN ('messages', 'receipts', 'inbox')"
                )
            ).scalar_one()
            before = _plans(conn)
            conn.rollback()
            before_generic = _plans(conn, generic=True)
            conn.rollback()
        assert analyzed == 0  # what the first half is about: no column statistics at all
        assert set(_sequential(before)) <= NEED_STATISTICS
        assert set(_sequential(before_generic)) <= NEED_STATISTICS

        # the store analyzes the tables that have rows and never were analyzed...
        assert {"conversations", "inbox", "messages", "receipts", "users"} <= set(store.refresh_statistics())
        with engine.connect() as conn:
            after = _plans(conn)
            conn.rollback()
            after_generic = _plans(conn, generic=True)
            conn.rollback()
        assert _sequential(after) == {}
        assert _sequential(after_generic) == {}
        # ...and then only those that grew by the factor again
        assert store.refresh_statistics() == []
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO receipts (message_id, user_id, status)"
                f" SELECT 'm' || mod(i, {MESSAGES}), 'x' || i, 1 FROM generate_series(0, {MESSAGES + 1000}) i"
            )
        assert store.refresh_statistics() == ["receipts"]
    finally:
        store.close()
        engine.dispose()


def test_one_process_analyzes_at_a_time(filled: str) -> None:
    store = SqlStore(filled)
    engine = create_engine(filled)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": statistics._LOCK_KEY})
            assert store.refresh_statistics() == []  # another holds the lock: nothing done, no wait
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": statistics._LOCK_KEY})
    finally:
        store.close()
        engine.dispose()
