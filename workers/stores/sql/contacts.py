"""Contacts in the SQL store: the lookups behind who may see whose presence (see rules.contacts).

A 1-on-1 conversation is found by its primary key (its ``conversations`` row exists once either
side sent a message), a shared group through ``ix_group_members_user`` on one side and the
``(group_id, user_id)`` primary key on the other.
"""

from __future__ import annotations

from sqlalchemy import select

from workers.stores.rules.contacts import may_see_presence
from workers.stores.sql.base import SqlBase
from workers.stores.sql.blocks import blocked_pairs
from workers.stores.sql.schema import conversations, group_members

__all__ = ["SqlContacts"]


class SqlContacts(SqlBase):
    def can_see_presence(self, watcher: str, user: str) -> bool:
        if not may_see_presence(watcher, user, chatted=self._chatted, share_a_group=self._share_a_group):
            return False
        if watcher == user:
            return True
        with self._tx() as conn:  # whom the user blocks is refused as a stranger is (rules.blocks)
            return not blocked_pairs(conn, [(user, watcher)])

    def _chatted(self, conversation: str) -> bool:
        with self._tx() as conn:
            found = conn.execute(select(conversations.c.id).where(conversations.c.id == conversation))
            return found.first() is not None

    def _share_a_group(self, watcher: str, user: str) -> bool:
        theirs = group_members.alias("theirs")
        shared_group = (
            select(group_members.c.group_id)
            .join(
                theirs,
                (theirs.c.group_id == group_members.c.group_id) & (theirs.c.user_id == user),
            )
            .where(group_members.c.user_id == watcher)
            .limit(1)
        )
        with self._tx() as conn:
            return conn.execute(shared_group).first() is not None
