"""Contacts in the MongoDB store: the lookups behind who may see whose presence (see rules.contacts).

A 1-on-1 conversation is found by ``_id`` (its ``conversations`` document exists once either side
sent a message), a shared group through the ``member`` index on ``members.user``.
"""

from __future__ import annotations

from workers.stores.mongo.base import MongoBase
from workers.stores.mongo.blocks import blocked_pairs
from workers.stores.rules.contacts import may_see_presence

__all__ = ["MongoContacts"]


class MongoContacts(MongoBase):
    def can_see_presence(self, watcher: str, user: str) -> bool:
        if not may_see_presence(watcher, user, chatted=self._chatted, share_a_group=self._share_a_group):
            return False
        if watcher == user:
            return True
        with self._guard():  # whom the user blocks is refused as a stranger is (rules.blocks)
            return not blocked_pairs(self._blocks, [(user, watcher)])

    def _chatted(self, conversation: str) -> bool:
        with self._guard():
            return self._conversations.find_one({"_id": conversation}, {"_id": True}) is not None

    def _share_a_group(self, watcher: str, user: str) -> bool:
        both = {"$and": [{"members.user": watcher}, {"members.user": user}]}
        with self._guard():
            return self._groups.find_one(both, {"_id": True}) is not None
