"""Contacts in the SQL store: who may see whose presence (see rules.contacts).

The two lookups are ``privacy_data.contact_checks``, the ones every rule of contacts uses (presence,
profiles, group consent): a 1-on-1 conversation by its primary key (its ``conversations`` row exists
once either side sent a message), a shared group through ``ix_group_members_user`` on one side and
the ``(group_id, user_id)`` primary key on the other.
"""

from __future__ import annotations

from workers.stores.rules.contacts import may_see_presence
from workers.stores.sql.base import SqlBase
from workers.stores.sql.blocks import blocked_pairs
from workers.stores.sql.privacy_data import contact_checks

__all__ = ["SqlContacts"]


class SqlContacts(SqlBase):
    def can_see_presence(self, watcher: str, user: str) -> bool:
        with self._tx() as conn:
            chatted, share_a_group = contact_checks(conn)
            if not may_see_presence(watcher, user, chatted=chatted, share_a_group=share_a_group):
                return False
            if watcher == user:
                return True
            # whom the user blocks is refused as a stranger is (rules.blocks)
            return not blocked_pairs(conn, [(user, watcher)])
