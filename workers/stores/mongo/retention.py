"""Retention in the MongoDB store (the rule: ``rules.retention``).

As in the SQL store: the sweeps walk users and conversations by id a few at a time, recording
where they are in ``retention_state``; of each user the old prefix of the inbox (``user_cursor``
index) is deleted as a cursor range and its top recorded in ``inbox_pruned``; of each
conversation the old messages (``conversation_seq`` index) are deleted with their receipts and
reactions, and the media objects no other message uses are returned for removal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pymongo import ASCENDING
from pymongo.client_session import ClientSession

from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.rules.retention import MessagePrune

__all__ = ["MongoRetention"]

_CHUNK: Final = 1000


class MongoRetention(MongoBase):
    def inbox_floor(self, user: str) -> int:
        with self._guard():
            found = self._db["inbox_pruned"].find_one({"_id": user})
        return 0 if found is None else int(found["up_to"])

    def retention_lease(self, holder: str, *, now: float, ttl: float) -> bool:
        def work(session: ClientSession) -> bool:
            state = self._db["retention_state"]
            found = state.find_one({"_id": "lease"}, session=session)
            if found is not None and found["value"] != holder and float(found["until"]) > now:
                return False
            state.update_one(
                {"_id": "lease"},
                {"$set": {"value": holder, "until": now + ttl}},
                upsert=True,
                session=session,
            )
            return True

        return self._tx(work)

    # ---------------------------------------------------------------- the inbox
    def prune_inbox(self, *, older_than: float, max_users: int) -> tuple[int, bool]:
        after = self._position("inbox")
        with self._guard():
            batch = [
                d["_id"]
                for d in self._users.find({"_id": {"$gt": after}}, {"_id": True})
                .sort("_id", ASCENDING)
                .limit(max_users)
            ]
        pruned = sum(self._prune_user_inbox(user, older_than) for user in batch)
        done = len(batch) < max_users
        self._set_position("inbox", "" if done else batch[-1])
        return pruned, done

    def _prune_user_inbox(self, user: str, older_than: float) -> int:
        pruned, probe = 0, 1  # most users have nothing old: one entry read tells

        def step(session: ClientSession) -> int:
            found = (
                self._inbox.find({"user": user}, {"cursor": True, "created_at": True}, session=session)
                .sort("cursor", ASCENDING)
                .limit(probe)
            )
            old = _prefix(found, older_than)
            if not old:
                return 0
            up_to = int(old[-1]["cursor"])
            self._inbox.delete_many({"user": user, "cursor": {"$lte": up_to}}, session=session)
            self._db["inbox_pruned"].update_one(
                {"_id": user}, {"$set": {"up_to": up_to}}, upsert=True, session=session
            )
            return len(old)

        while True:
            old = self._tx(step)
            pruned += old
            if old < probe:
                return pruned
            probe = _CHUNK

    # ---------------------------------------------------------------- messages
    def prune_messages(self, *, older_than: float, max_conversations: int) -> MessagePrune:
        after = self._position("messages")
        with self._guard():
            batch = [
                d["_id"]
                for d in self._conversations.find({"_id": {"$gt": after}}, {"_id": True})
                .sort("_id", ASCENDING)
                .limit(max_conversations)
            ]
        deleted, keys = 0, []
        for conversation in batch:
            n, freed = self._prune_conversation(conversation, older_than)
            deleted += n
            keys.extend(freed)
        done = len(batch) < max_conversations
        self._set_position("messages", "" if done else batch[-1])
        return MessagePrune(deleted=deleted, media_keys=keys, done=done)

    def _prune_conversation(self, conversation: str, older_than: float) -> tuple[int, list[str]]:
        deleted, probe = 0, 1
        freed: list[str] = []

        def step(session: ClientSession) -> tuple[int, list[str]]:
            found = (
                self._messages.find(
                    {"conversation": conversation},
                    {"created_at": True, "media_keys": True, "shared_keys": True},
                    session=session,
                )
                .sort("seq", ASCENDING)
                .limit(probe)
            )
            old = _prefix(found, older_than)
            if not old:
                return 0, []
            ids = [d["_id"] for d in old]
            keys = {k for d in old for k in (*(d.get("media_keys") or []), *(d.get("shared_keys") or []))}
            self._messages.delete_many({"_id": {"$in": ids}}, session=session)
            self._receipts.delete_many({"message_id": {"$in": ids}}, session=session)
            self._reactions.delete_many({"message_id": {"$in": ids}}, session=session)
            used: set[str] = set()
            if keys:
                for doc in self._messages.find(
                    {"$or": [{"media_keys": {"$in": list(keys)}}, {"shared_keys": {"$in": list(keys)}}]},
                    {"media_keys": True, "shared_keys": True},
                    session=session,
                ):
                    used.update(doc.get("media_keys") or [])
                    used.update(doc.get("shared_keys") or [])
            return len(ids), sorted(keys - used)

        while True:
            n, keys = self._tx(step)
            deleted += n
            freed.extend(keys)
            if n < probe:
                return deleted, freed
            probe = _CHUNK

    # ---------------------------------------------------------------- where the sweeps are
    def _position(self, name: str) -> str:
        with self._guard():
            found = self._db["retention_state"].find_one({"_id": name})
        return "" if found is None else str(found["value"])

    def _set_position(self, name: str, value: str) -> None:
        with self._guard():
            self._db["retention_state"].update_one({"_id": name}, {"$set": {"value": value}}, upsert=True)


def _prefix(docs: Iterable[Doc], older_than: float) -> list[Doc]:
    """The leading documents created before ``older_than``."""
    old: list[Doc] = []
    for doc in docs:
        if float(doc["created_at"]) >= older_than:
            break
        old.append(doc)
    return old
