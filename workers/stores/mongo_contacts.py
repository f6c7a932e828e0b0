"""Contacts in the MongoDB store: who may see whose presence.

Two users are contacts when they have a 1-on-1 conversation (either of them sent a message: its
``conversations`` document exists) or share a group. The conversation is found by ``_id``, the
shared group through the ``member`` index on ``members.user``.
"""

from __future__ import annotations

from workers.stores.base import dm_conversation
from workers.stores.mongo_base import MongoBase

__all__ = ["MongoContacts"]


class MongoContacts(MongoBase):
    def can_see_presence(self, watcher: str, user: str) -> bool:
        """Whether ``watcher`` may see ``user``'s presence: itself, a 1-on-1 partner or a group mate."""
        if watcher == user:
            return True
        with self._guard():
            if self._conversations.find_one({"_id": dm_conversation(watcher, user)}, {"_id": True}):
                return True
            both = {"$and": [{"members.user": watcher}, {"members.user": user}]}
            return self._groups.find_one(both, {"_id": True}) is not None
