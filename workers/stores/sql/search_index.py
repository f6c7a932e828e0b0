"""The full-text index of message texts in the SQL store, kept in step with ``messages.body``.

SQLite: a contentless FTS5 table ``message_fts`` (the text is already in ``messages``; the index
only holds its tokens) whose rowid is a ``doc`` number, and ``message_search`` mapping each
message id to its doc. PostgreSQL: ``message_tsv``, a ``tsvector`` of each message's text
(``to_tsvector('simple', ...)``: no stemming or stop words, so no guessing the language) with a
GIN index. New tables, not columns of ``messages``: an existing database gets them at start.

Only a message with text is indexed (a photo without a caption has nothing to find). An edit
replaces the indexed text, a delete for everyone removes it; a ``messages`` row deleted by any
other means (retention, an account deleted) takes its index entry with it: PostgreSQL by the
cascading foreign key, SQLite by a trigger (FTS5 has no foreign keys, and a contentless table
must be told the old text to forget it).

SQLite's index takes texts a few transactions at a time (``_PENDING_DOCS``): a new message gets
its doc in ``message_search`` at once, and ``message_search_mark.indexed`` says how far
``message_fts`` has taken them. The docs above it wait, durable, until a later transaction has
enough of them, a search is about to read the index, or a process starts; then one statement
indexes their texts as they are then. An edit or a delete for everyone of a waiting message only
changes its row, and nothing forgets a text the index never had.

The hot path (``accept_texts``) adds two statements per batch on SQLite (the doc numbers, one
multi-row insert; the index's insert every ``_PENDING_DOCS`` docs) and one on PostgreSQL (its GIN
index keeps a pending list of its own: ``fastupdate``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Connection, Text, column, select, text

from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement, execute_sql
from workers.stores.sql.schema import messages, receipts

__all__ = [
    "INSERT_TSVS",
    "Indexed",
    "SqlSearchIndex",
    "conversation_token",
    "pg_tags_query",
    "tsv_arrays",
    "viewer_token",
]

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS message_search ("
    " doc INTEGER PRIMARY KEY,"
    " message_id VARCHAR(32) NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE)",
    # remove_diacritics 2: "resume" finds "résumé"; the query goes through the same tokenizer.
    # ``who`` and ``conv`` hold one token per user who may see the message and one for its
    # conversation (``viewer_token``, ``conversation_token``): the engine itself then keeps to a
    # user's messages (and to one conversation), instead of reading every match of a common word
    # and checking each one's receipts.
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
    " body, who, conv, content='', tokenize='unicode61 remove_diacritics 2')",
    # Index work waits for a few transactions (see ``_index_texts``): docs above ``indexed`` are
    # pending, their text not yet in ``message_fts``. A database from before that has indexed
    # every doc it numbered.
    "CREATE TABLE IF NOT EXISTS message_search_mark ("
    " one INTEGER PRIMARY KEY CHECK (one = 0), indexed INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO message_search_mark (one, indexed)"
    " SELECT 0, coalesce(max(doc), 0) FROM message_search",
    # the trigger from before pending docs told the index to forget texts it never had
    "DROP TRIGGER IF EXISTS message_fts_forget",
    # a message row that goes by any other way than a delete for everyone (which unindexes it
    # itself, leaving an empty body) takes its tokens with it; its receipts are still there (they
    # cascade after this), so ``who`` is what it was. A pending doc has no tokens yet.
    "CREATE TRIGGER IF NOT EXISTS message_fts_forget_indexed BEFORE DELETE ON messages"
    " WHEN old.body <> '' BEGIN"
    " INSERT INTO message_fts (message_fts, rowid, body, who, conv)"
    " SELECT 'delete', doc, old.body,"
    " (SELECT group_concat('u' || lower(hex(u)), ' ') FROM"
    " (SELECT old.sender_id AS u UNION SELECT user_id FROM receipts WHERE message_id = old.id ORDER BY 1)),"
    " 'c' || lower(hex(old.conversation_id))"
    " FROM message_search WHERE message_id = old.id"
    " AND doc <= (SELECT indexed FROM message_search_mark);"
    " END",
)
POSTGRES_DDL = (
    "CREATE TABLE IF NOT EXISTS message_tsv ("
    " message_id VARCHAR(32) PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    " tsv TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_message_tsv ON message_tsv USING GIN (tsv)",
)

_BACKFILL_CHUNK = 1000
_PENDING_DOCS = 64
"""SQLite: docs numbered before their texts go into the index together. FTS5 writes a new segment
of the index at every commit that changed it, and merges segments as they pile up: in batches of
one message that was most of the index's cost. The index catches up at this many, before a
search, and at start; until then the docs are durable in ``message_search``."""
_ANY_INDEXED = text("SELECT 1 FROM message_search LIMIT 1")
_ANY_TSV = text("SELECT 1 FROM message_tsv LIMIT 1")

_DOCS = Statement(  # the last doc numbered, and the last one in the index (never numbered again)
    text(
        "SELECT (SELECT coalesce(max(doc), 0) FROM message_search), indexed FROM message_search_mark"
    ).columns(column("last", BigInteger), column("indexed", BigInteger))
)
_INSERT_DOC = Statement(text("INSERT INTO message_search (doc, message_id) VALUES (:doc, :message_id)"))
_INSERT_FTS = Statement(
    text("INSERT INTO message_fts (rowid, body, who, conv) VALUES (:doc, :body, :who, :conv)")
)
_DOC_OF = Statement(  # ``pending``: numbered, its text not in the index yet
    text(
        "SELECT s.doc, m.body, m.conversation_id, m.sender_id,"
        " s.doc > (SELECT indexed FROM message_search_mark)"
        " FROM messages m LEFT JOIN message_search s ON s.message_id = m.id"
        " WHERE m.id = :message_id"
    ).columns(
        column("doc", BigInteger),
        column("body", Text),
        column("conv", Text),
        column("sender", Text),
        column("pending", Boolean),
    )
)
# The pending docs' texts as they are now (an edit or a delete for everyone since only changed the
# body), with the same ``who`` and ``conv`` the trigger and ``_reindex`` compute to forget them,
# in doc order (FTS5 appends rowids in order most cheaply).
_INDEX_PENDING = Statement(
    text(
        "INSERT INTO message_fts (rowid, body, who, conv)"
        " SELECT s.doc, m.body,"
        " (SELECT group_concat('u' || lower(hex(u)), ' ') FROM"
        " (SELECT m.sender_id AS u UNION SELECT user_id FROM receipts WHERE message_id = m.id ORDER BY 1)),"
        " 'c' || lower(hex(m.conversation_id))"
        " FROM message_search s JOIN messages m ON m.id = s.message_id"
        " WHERE s.doc > :indexed AND s.doc <= :last AND m.body <> ''"
        " ORDER BY s.doc"
    )
)
_MARK_INDEXED = Statement(text("UPDATE message_search_mark SET indexed = :last WHERE one = 0"))
_TEXT_OF = Statement(  # PostgreSQL: no doc numbers
    text("SELECT NULL, body, conversation_id, sender_id, false FROM messages WHERE id = :message_id").columns(
        column("doc", BigInteger),
        column("body", Text),
        column("conv", Text),
        column("sender", Text),
        column("pending", Boolean),
    )
)
_RECEIVERS = Statement(
    text("SELECT user_id FROM receipts WHERE message_id = :message_id").columns(column("user_id", Text))
)
_FORGET_FTS = Statement(
    text(
        "INSERT INTO message_fts (message_fts, rowid, body, who, conv)"
        " VALUES ('delete', :doc, :body, :who, :conv)"
    )
)
_INSERT_TSV = Statement(
    text(
        "INSERT INTO message_tsv (message_id, tsv) VALUES (:message_id,"
        " to_tsvector('simple', :body) || array_to_tsvector(CAST(:tags AS TEXT[])))"
        " ON CONFLICT (message_id) DO UPDATE SET tsv = excluded.tsv"
    )
)
INSERT_TSVS = Statement(  # many at once: one statement of arrays (see driver.Statement)
    text(
        "INSERT INTO message_tsv (message_id, tsv)"
        " SELECT m, to_tsvector('simple', b) || array_to_tsvector(string_to_array(t, ' '))"
        " FROM unnest(CAST(:ids AS TEXT[]), CAST(:bodies AS TEXT[]), CAST(:tags AS TEXT[])) AS r(m, b, t)"
        " ON CONFLICT (message_id) DO UPDATE SET tsv = excluded.tsv"
    ),
    binary=True,
)
_DELETE_TSV = Statement(text("DELETE FROM message_tsv WHERE message_id = :message_id"))


@dataclass(frozen=True, slots=True)
class Indexed:
    """What the index takes of a new message: its text, conversation and who may see it (its
    sender and the users with a copy)."""

    message_id: str
    text: str
    conversation: str
    viewers: Sequence[str]


def viewer_token(user: str) -> str:
    """The ``who`` token of a user: the hex of its UTF-8 bytes (the trigger computes the same with
    ``hex()``), which no tokenizer splits."""
    return "u" + user.encode().hex()


def conversation_token(conversation: str) -> str:
    return "c" + conversation.encode().hex()


def _tags(indexed: Indexed) -> list[str]:
    """PostgreSQL: the lexemes added to a message's ``tsvector`` for who may see it and its
    conversation. ``#`` is a separator to the text parser, so no word of a text becomes one."""
    return ["#" + viewer_token(user) for user in set(indexed.viewers)] + [
        "#" + conversation_token(indexed.conversation)
    ]


def pg_tags_query(user: str, conversation: str | None) -> str:
    """The ``tsquery`` (as text, for a cast: no parsing) of the user's messages (in the conversation)."""
    tags = ["#" + viewer_token(user)] + (
        [] if conversation is None else ["#" + conversation_token(conversation)]
    )
    return " & ".join(f"'{tag}'" for tag in tags)


def tsv_arrays(texts: Sequence[Indexed]) -> dict[str, list[str]]:
    """PostgreSQL: the parameters of ``INSERT_TSVS`` for the texts of ``texts`` (none for a message
    without text)."""
    last = {t.message_id: t for t in texts if t.text}  # one row each: ON CONFLICT takes a row once
    return {
        "ids": list(last),
        "bodies": [t.text for t in last.values()],
        "tags": [" ".join(_tags(t)) for t in last.values()],  # no tag has a space
    }


def _who(viewers: Iterable[str]) -> str:
    return " ".join(viewer_token(user) for user in sorted(set(viewers)))


class SqlSearchIndex(SqlBase):
    def create_schema(self) -> None:
        super().create_schema()
        with self._tx() as conn:
            for ddl in SQLITE_DDL if self._sqlite else POSTGRES_DDL:
                execute_sql(conn, ddl)
            self._backfill(conn)
            self._catch_up_index(conn)  # what a process that stopped left pending

    def _backfill(self, conn: Connection) -> None:
        """A database from before search has messages and an empty index: index them all once, in
        id order (SQLite's doc numbers then grow with time, as they do for new ones). Checked in
        the transaction that created the tables, so two processes starting at once do not both
        index them (SQLite: the write lock; PostgreSQL: an insert of a row there is an update)."""
        if conn.execute(_ANY_INDEXED if self._sqlite else _ANY_TSV).first() is not None:
            return
        after = ""
        while True:
            rows = conn.execute(
                select(messages.c.id, messages.c.body, messages.c.conversation_id, messages.c.sender_id)
                .where(messages.c.id > after, messages.c.body != "")
                .order_by(messages.c.id)
                .limit(_BACKFILL_CHUNK)
            ).all()
            if not rows:
                return
            viewers: dict[str, list[str]] = {row[0]: [row[3]] for row in rows}
            if not self._sqlite:  # SQLite reads who may see a text when the index takes it
                found = conn.execute(
                    select(receipts.c.message_id, receipts.c.user_id).where(
                        receipts.c.message_id.in_(list(viewers))
                    )
                )
                for message_id, user in found:
                    viewers[message_id].append(user)
            self._index_texts(conn, [Indexed(row[0], row[1], row[2], viewers[row[0]]) for row in rows])
            after = rows[-1][0]

    def _index_texts(self, conn: Connection, texts: Sequence[Indexed]) -> None:
        """Index new messages' texts: a few statements for the lot."""
        texts = [t for t in texts if t.text]
        if not texts:
            return
        if not self._sqlite:
            if len(texts) == 1:
                only = texts[0]
                _INSERT_TSV.execute(
                    conn, {"message_id": only.message_id, "body": only.text, "tags": _tags(only)}
                )
                return
            INSERT_TSVS.execute(conn, tsv_arrays(texts))
            return
        # SQLite has one writer at a time: the next doc numbers are ours until the commit
        last, indexed = _DOCS.first(conn, {}) or (0, 0)
        first = max(last, indexed) + 1  # not a doc the index has seen: its message may have gone
        _INSERT_DOC.execute_many(
            conn, [{"doc": first + i, "message_id": t.message_id} for i, t in enumerate(texts)]
        )
        # the docs of earlier calls: these ones' receipts (their ``who``) are not written yet
        if first - 1 - indexed >= _PENDING_DOCS:
            self._index_pending(conn, indexed, first - 1)

    def _catch_up_index(self, conn: Connection) -> None:
        """SQLite: index the pending docs now (before a search reads the index, and at start)."""
        if not self._sqlite:
            return
        last, indexed = _DOCS.first(conn, {}) or (0, 0)
        if last > indexed:
            self._index_pending(conn, indexed, last)

    def _index_pending(self, conn: Connection, indexed: int, last: int) -> None:
        _INDEX_PENDING.execute(conn, {"indexed": indexed, "last": last})
        _MARK_INDEXED.execute(conn, {"last": last})

    def _reindex(self, conn: Connection, message_id: str, new_text: str) -> None:
        """Before ``messages.body`` of ``message_id`` becomes ``new_text`` (an edit; "" for a delete
        for everyone): the index forgets the old text and learns the new one."""
        if not self._sqlite and not new_text:
            _DELETE_TSV.execute(conn, {"message_id": message_id})
            return
        row = (_DOC_OF if self._sqlite else _TEXT_OF).first(conn, {"message_id": message_id})
        if row is None:
            return
        doc, old_text, conversation, sender, pending = row
        if pending:  # the index takes the text the message has when it catches up
            return
        viewers = [sender, *_RECEIVERS.scalars(conn, {"message_id": message_id})]
        if not self._sqlite:
            indexed = Indexed(message_id, new_text, conversation, viewers)
            _INSERT_TSV.execute(conn, {"message_id": message_id, "body": new_text, "tags": _tags(indexed)})
            return
        if doc is None:  # its text was empty (or it predates the index): a doc of its own now
            self._index_texts(conn, [Indexed(message_id, new_text, conversation, viewers)])
            return
        values = {"doc": doc, "who": _who(viewers), "conv": conversation_token(conversation)}
        if old_text:  # a contentless table forgets a text when told exactly what it was
            _FORGET_FTS.execute(conn, {**values, "body": old_text})
        if new_text:
            _INSERT_FTS.execute(conn, {**values, "body": new_text})
