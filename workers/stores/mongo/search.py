"""Searching a user's messages in the MongoDB store (the rules: ``rules.search``).

Not a ``$text`` index: SecantusDB, the MongoDB-wire server the tests run on, refuses text
indexes ("text indexes are not supported by SecantusDB"), and a store that works only on MongoDB
proper could not be tested here. Instead each message with text holds the prefixes of its words
in ``terms`` (lowercased, up to 16 characters: ``rules.search.index_terms``) under a multikey
index, and a search asks for messages having every query word among them (``$all`` of plain
strings: equalities, never a regex or an operator; a longer word by its 16-character prefix,
then checked against the text). Equalities, because SecantusDB answers a range or an anchored
regex on an array by reading every message. An edit rewrites ``terms`` with the text, a delete
for everyone removes them, and a document removed takes them with it.

The hits are read newest first (``_id`` grows with time) a chunk at a time, keeping those the
user sent or has a receipt for, until the page is full.
"""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING, UpdateOne
from pymongo.client_session import ClientSession

from workers.stores.mongo.views import MongoViews
from workers.stores.rules.search import (
    SearchPage,
    dm_member,
    forbidden_conversation,
    index_terms,
    search_words,
    term_of,
    text_has_words,
)

__all__ = ["MongoSearch", "search_fields"]

_CHUNK = 200
"""Candidates read at a time while filling a page (most of them are the user's own)."""


def search_fields(text: str) -> dict[str, Any]:
    """The fields a message document gets for search: its ``terms``, none when it has no text."""
    terms = index_terms(text)
    return {"terms": terms} if terms else {}


class MongoSearch(MongoViews):
    def create_schema(self) -> None:
        super().create_schema()
        self._backfill()

    def _backfill(self) -> None:
        """Messages stored before search have text and no ``terms``: give them theirs (an empty
        list for a text without words, so that they are not looked at again)."""
        with self._guard():
            while True:
                docs = list(
                    self._messages.find(
                        {"terms": {"$exists": False}, "text": {"$gt": ""}}, {"text": True}
                    ).limit(_CHUNK)
                )
                if not docs:
                    return
                self._messages.bulk_write(
                    [UpdateOne({"_id": d["_id"]}, {"$set": {"terms": index_terms(d["text"])}}) for d in docs]
                )

    def search_messages(
        self, *, user: str, query: str, conversation: str | None, before: str | None, limit: int
    ) -> SearchPage:
        def work(session: ClientSession) -> SearchPage:
            if conversation is not None and not self._may_search(session, user, conversation):
                raise forbidden_conversation()
            words = search_words(query)
            if not words:
                return SearchPage()
            ids = self._hit_ids(session, user, words, conversation, before, limit + 1)
            more = len(ids) > limit
            ids = ids[:limit]
            views = self._message_views(session, ids, user)
            hits = [views[message_id] for message_id in ids if message_id in views]
            return SearchPage(hits=hits, more=more, next=ids[-1] if more else None)

        return self._tx(work)

    def _hit_ids(
        self,
        session: ClientSession,
        user: str,
        words: list[str],
        conversation: str | None,
        before: str | None,
        wanted: int,
    ) -> list[str]:
        match: dict[str, Any] = {
            "terms": {"$all": sorted({term_of(w) for w in words})},  # equalities: the index answers
            "hidden_for": {"$ne": user},
            "deleted_at": None,
        }
        long_words = [w for w in words if term_of(w) != w]
        if conversation is not None:
            match["conversation"] = conversation
        ids: list[str] = []
        while len(ids) < wanted:
            if before is not None:
                match["_id"] = {"$lt": before}
            fields = {"sender": True, "text": True} if long_words else {"sender": True}
            read = list(
                self._messages.find(match, fields, session=session).sort("_id", DESCENDING).limit(_CHUNK)
            )
            if not read:
                break
            chunk = [d for d in read if not long_words or text_has_words(d["text"], long_words)]
            others = [d["_id"] for d in chunk if d["sender"] != user]
            copies: set[str] = set()
            if others:
                found = self._receipts.find(
                    {"message_id": {"$in": others}, "user": user}, {"message_id": True}, session=session
                )
                copies = {r["message_id"] for r in found}
            ids += [d["_id"] for d in chunk if d["sender"] == user or d["_id"] in copies]
            if len(read) < _CHUNK:
                break
            before = read[-1]["_id"]
        return ids[:wanted]

    def _may_search(self, session: ClientSession, user: str, conversation: str) -> bool:
        """A 1-on-1 chat of the user's own, a group they are in, or one they were in."""
        member = dm_member(conversation, user)
        if member is not None:
            return member
        if self._groups.find_one({"_id": conversation, "members.user": user}, {"_id": True}, session=session):
            return True
        if self._messages.find_one(
            {"conversation": conversation, "sender": user}, {"_id": True}, session=session
        ):
            return True
        # a copy of any of its messages (a receipt names the message, not its conversation)
        found = self._messages.find({"conversation": conversation}, {"_id": True}, session=session)
        chunk: list[str] = []
        for doc in found.sort("seq", DESCENDING).batch_size(_CHUNK):
            chunk.append(doc["_id"])
            if len(chunk) == _CHUNK and self._has_copy(session, user, chunk):
                return True
            if len(chunk) == _CHUNK:
                chunk = []
        return bool(chunk) and self._has_copy(session, user, chunk)

    def _has_copy(self, session: ClientSession, user: str, message_ids: list[str]) -> bool:
        query = {"message_id": {"$in": message_ids}, "user": user}
        return self._receipts.find_one(query, {"_id": True}, session=session) is not None
