"""Contacts in the MongoDB store: who may see whose presence (see rules.contacts).

The two lookups are ``privacy_data.contact_checks``, the ones every rule of contacts uses (presence,
profiles, group consent): a 1-on-1 conversation by ``_id`` (its ``conversations`` document exists
once either side sent a message), a shared group through the ``member`` index on ``members.user``.
"""

from __future__ import annotations

from workers.stores.mongo.base import MongoBase
from workers.stores.mongo.blocks import blocked_pairs
from workers.stores.mongo.privacy_data import contact_checks
from workers.stores.rules.contacts import may_see_presence

__all__ = ["MongoContacts"]


class MongoContacts(MongoBase):
    def can_see_presence(self, watcher: str, user: str) -> bool:
        with self._guard():
            chatted, share_a_group = contact_checks(self._db, None)
            if not may_see_presence(watcher, user, chatted=chatted, share_a_group=share_a_group):
                return False
            if watcher == user:
                return True
            # whom the user blocks is refused as a stranger is (rules.blocks)
            return not blocked_pairs(self._blocks, [(user, watcher)])
