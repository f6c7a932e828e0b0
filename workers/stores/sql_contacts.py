"""Contacts in the SQL store: who may see whose presence.

Two users are contacts when they have a 1-on-1 conversation (either of them sent a message: its
``conversations`` row exists) or share a group. Both checks are index lookups: the conversation by
its primary key, the shared group through ``ix_group_members_user`` on one side and the
``(group_id, user_id)`` primary key on the other.
"""

from __future__ import annotations

from sqlalchemy import select

from workers.stores.base import dm_conversation
from workers.stores.sql_base import SqlBase
from workers.stores.sql_schema import conversations, group_members

__all__ = ["SqlContacts"]


class SqlContacts(SqlBase):
    def can_see_presence(self, watcher: str, user: str) -> bool:
        """Whether ``watcher`` may see ``user``'s presence: itself, a 1-on-1 partner or a group mate."""
        if watcher == user:
            return True
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
            chat = conn.execute(
                select(conversations.c.id).where(conversations.c.id == dm_conversation(watcher, user))
            ).first()
            return chat is not None or conn.execute(shared_group).first() is not None
