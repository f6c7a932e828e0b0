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

The hot path (``accept_texts``) adds three statements per batch on SQLite (the last doc number,
one multi-row insert into each table) and one on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Connection, Text, column, text

from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement, execute_sql

__all__ = ["SqlSearchIndex"]

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS message_search ("
    " doc INTEGER PRIMARY KEY,"
    " message_id VARCHAR(32) NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE)",
    # remove_diacritics 2: "resume" finds "résumé"; the query goes through the same tokenizer
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5("
    " body, content='', tokenize='unicode61 remove_diacritics 2')",
    # a message row that goes by any other way than a delete for everyone (which unindexes it
    # itself, leaving an empty body) takes its tokens with it
    "CREATE TRIGGER IF NOT EXISTS message_fts_forget BEFORE DELETE ON messages"
    " WHEN old.body <> '' BEGIN"
    " INSERT INTO message_fts (message_fts, rowid, body)"
    " SELECT 'delete', doc, old.body FROM message_search WHERE message_id = old.id;"
    " END",
)
POSTGRES_DDL = (
    "CREATE TABLE IF NOT EXISTS message_tsv ("
    " message_id VARCHAR(32) PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
    " tsv TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_message_tsv ON message_tsv USING GIN (tsv)",
)

_LAST_DOC = Statement(
    text("SELECT coalesce(max(doc), 0) FROM message_search").columns(column("doc", BigInteger))
)
_INSERT_DOC = Statement(text("INSERT INTO message_search (doc, message_id) VALUES (:doc, :message_id)"))
_INSERT_FTS = Statement(text("INSERT INTO message_fts (rowid, body) VALUES (:doc, :body)"))
_DOC_OF = Statement(
    text(
        "SELECT s.doc, m.body FROM messages m LEFT JOIN message_search s ON s.message_id = m.id"
        " WHERE m.id = :message_id"
    ).columns(column("doc", BigInteger), column("body", Text))
)
_FORGET_FTS = Statement(
    text("INSERT INTO message_fts (message_fts, rowid, body) VALUES ('delete', :doc, :body)")
)
_INSERT_TSV = Statement(
    text(
        "INSERT INTO message_tsv (message_id, tsv) VALUES (:message_id, to_tsvector('simple', :body))"
        " ON CONFLICT (message_id) DO UPDATE SET tsv = excluded.tsv"
    )
)
_DELETE_TSV = Statement(text("DELETE FROM message_tsv WHERE message_id = :message_id"))


class SqlSearchIndex(SqlBase):
    def create_schema(self) -> None:
        super().create_schema()
        with self._tx() as conn:
            for ddl in SQLITE_DDL if self._sqlite else POSTGRES_DDL:
                execute_sql(conn, ddl)

    def _index_texts(self, conn: Connection, texts: Sequence[tuple[str, str]]) -> None:
        """Index new messages' texts (``(message id, text)``): a few statements for the lot."""
        texts = [(message_id, body) for message_id, body in texts if body]
        if not texts:
            return
        if not self._sqlite:
            _INSERT_TSV.execute_many(conn, [{"message_id": m, "body": body} for m, body in texts])
            return
        # SQLite has one writer at a time: the next doc numbers are ours until the commit
        first = int(_LAST_DOC.scalar(conn, {})) + 1
        docs = [{"doc": first + i, "message_id": m, "body": body} for i, (m, body) in enumerate(texts)]
        _INSERT_DOC.execute_many(conn, docs)
        _INSERT_FTS.execute_many(conn, docs)

    def _reindex(self, conn: Connection, message_id: str, new_text: str) -> None:
        """Before ``messages.body`` of ``message_id`` becomes ``new_text`` (an edit; "" for a delete
        for everyone): the index forgets the old text and learns the new one."""
        if not self._sqlite:
            if new_text:
                _INSERT_TSV.execute(conn, {"message_id": message_id, "body": new_text})
            else:
                _DELETE_TSV.execute(conn, {"message_id": message_id})
            return
        row = _DOC_OF.first(conn, {"message_id": message_id})
        if row is None:
            return
        doc, old_text = row
        if doc is None:  # its text was empty (or it predates the index): a doc of its own now
            self._index_texts(conn, [(message_id, new_text)])
            return
        if old_text:  # a contentless table forgets a text when told exactly what it was
            _FORGET_FTS.execute(conn, {"doc": doc, "body": old_text})
        if new_text:
            _INSERT_FTS.execute(conn, {"doc": doc, "body": new_text})
