"""Searching a user's messages in the SQL store (the rules: ``rules.search``; the index:
``search_index``).

One statement finds the ids of a page of hits, newest first: the engine's match (FTS5 ``MATCH``,
or ``@@`` on the GIN-indexed ``tsvector``), restricted to messages the user sent or got a copy of,
not deleted for everyone and not hidden by them; then the hits are read as the user sees them now
(``views``). On SQLite the match walks the index newest first (doc numbers grow with time) and stops
at the page's end.
"""

from __future__ import annotations

from sqlalchemy import Connection, exists, or_, select, text

from workers.stores.rules.search import (
    SearchPage,
    dm_member,
    forbidden_conversation,
    fts5_query,
    search_words,
    ts_query,
)
from workers.stores.sql.schema import group_members, messages, receipts
from workers.stores.sql.search_index import SqlSearchIndex, conversation_token, pg_tags_query, viewer_token
from workers.stores.sql.views import SqlViews

__all__ = ["SqlSearch"]

# A match, before the page's end, in the conversation asked for (a NULL one lets all through),
# sent or received by the viewer, not hidden by them, not deleted for everyone.
_SQLITE_SEARCH = text(
    "SELECT s.message_id FROM message_fts f"
    " JOIN message_search s ON s.doc = f.rowid JOIN messages m ON m.id = s.message_id"
    " WHERE message_fts MATCH :query"
    # the page's end: the doc of the cursor's message, or of the first one after it (gone since);
    # a bound on the rowid, so the index is read from there, newest first, and no further than
    # the page needs
    " AND f.rowid < coalesce((SELECT doc FROM message_search WHERE message_id >= :before"
    " ORDER BY message_id LIMIT 1), 9223372036854775807)"
    " AND m.conversation_id = coalesce(CAST(:conversation AS VARCHAR), m.conversation_id)"
    " AND (m.sender_id = :viewer OR EXISTS"
    " (SELECT 1 FROM receipts r WHERE r.message_id = m.id AND r.user_id = :viewer))"
    " AND NOT EXISTS (SELECT 1 FROM message_hides h WHERE h.message_id = m.id AND h.user_id = :viewer)"
    " AND NOT EXISTS (SELECT 1 FROM message_deletions d WHERE d.message_id = m.id)"
    " ORDER BY f.rowid DESC LIMIT :limit"
)
_POSTGRES_SEARCH = text(
    # Only the index's table: the lexemes of who may see it and of its conversation stand for the
    # joins (with them, every match of a common word was joined before the sort kept 20); a
    # deleted message has no row; the views check who may see each hit once more.
    "SELECT t.message_id FROM message_tsv t"
    " WHERE t.tsv @@ (to_tsquery('simple', :query) && CAST(:tags AS TSQUERY))"
    " AND t.message_id < coalesce(CAST(:before AS VARCHAR), 'g')"  # ids are hex: 'g' is past all
    # NOT IN, a hashed filter of the scan: NOT EXISTS became an anti join sorting every match
    " AND t.message_id NOT IN (SELECT message_id FROM message_hides WHERE user_id = :viewer)"
    " ORDER BY t.message_id DESC LIMIT :limit"
)


def _fts5_match(words: list[str], user: str, conversation: str | None) -> str:
    """The words in the text, the user among those who may see it, in the conversation if one
    is given (the tokens are hex: nothing in them is syntax)."""
    match = f'{fts5_query(words)} AND who : "{viewer_token(user)}"'
    if conversation is not None:
        match += f' AND conv : "{conversation_token(conversation)}"'
    return match


class SqlSearch(SqlSearchIndex, SqlViews):
    def search_messages(
        self, *, user: str, query: str, conversation: str | None, before: str | None, limit: int
    ) -> SearchPage:
        if self._sqlite:  # the index first takes the texts still pending (search_index)
            with self.batch(), self._tx() as conn:
                self._catch_up_index(conn)
        with self._tx() as conn:
            if conversation is not None and not self._may_search(conn, user, conversation):
                raise forbidden_conversation()
            words = search_words(query)
            if not words:
                return SearchPage()
            params: dict[str, object] = {
                "query": _fts5_match(words, user, conversation) if self._sqlite else ts_query(words),
                "viewer": user,
                "tags": pg_tags_query(user, conversation),
                "conversation": conversation,
                "before": before,
                "limit": limit + 1,
            }
            statement = _SQLITE_SEARCH if self._sqlite else _POSTGRES_SEARCH
            ids = [row[0] for row in conn.execute(statement, params)]
            more = len(ids) > limit
            ids = ids[:limit]
            views = self._message_views(conn, ids, user)
        hits = [views[message_id] for message_id in ids if message_id in views]
        return SearchPage(hits=hits, more=more, next=ids[-1] if more else None)

    def _may_search(self, conn: Connection, user: str, conversation: str) -> bool:
        """A 1-on-1 chat of the user's own, a group they are in, or one they were in (its
        messages from then are theirs)."""
        member = dm_member(conversation, user)
        if member is not None:
            return member
        now_in = conn.execute(
            select(group_members.c.user_id).where(
                group_members.c.group_id == conversation, group_members.c.user_id == user
            )
        ).first()
        if now_in is not None:
            return True
        got_copy = exists().where(receipts.c.message_id == messages.c.id, receipts.c.user_id == user)
        was_in = conn.execute(
            select(messages.c.id)
            .where(messages.c.conversation_id == conversation, or_(messages.c.sender_id == user, got_copy))
            .limit(1)
        ).first()
        return was_in is not None
