"""Retention in the SQL store (the rule: ``rules.retention``).

Both sweeps walk their keys in order (users by id, conversations by id) a few at a time, each
step a transaction of its own that also records where the sweep is (``retention_state``), so a
restart goes on where it stopped. Of each user, the old prefix of the inbox is found by the
primary key ``(user_id, cursor)`` from its oldest entry and deleted as a cursor range, in chunks;
of each conversation, the old messages by ``(conversation_id, seq)``, deleted with their rows in
the other tables (foreign keys with ``ON DELETE CASCADE``) after their media keys are gathered.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Final

from sqlalchemy import Connection, delete, insert, select, update

from workers.stores.rules.retention import MessagePrune, old_prefix
from workers.stores.sql.base import SqlBase
from workers.stores.sql.schema import (
    conversations,
    inbox,
    inbox_pruned,
    media_objects,
    media_shares,
    messages,
    retention_state,
    users,
)

__all__ = ["SqlRetention"]

_CHUNK: Final = 1000
"""Inbox entries or messages deleted by one statement."""


_OLDEST_ENTRY = (
    select(inbox.c.created_at)
    .where(inbox.c.user_id == users.c.id)
    .order_by(inbox.c.cursor)
    .limit(1)
    .correlate(users)
    .scalar_subquery()
)
"""When a user's oldest inbox entry was made (NULL: none), by the primary key: the step's users
read with it in one statement, and only those with something old looked at again (most have
nothing: a transaction and a statement each made a sweep of a node's users as costly as a
connect storm)."""


class SqlRetention(SqlBase):
    # ---------------------------------------------------------------- the floor
    def inbox_floor(self, user: str) -> int:
        with self._tx() as conn:
            found = conn.scalar(select(inbox_pruned.c.up_to).where(inbox_pruned.c.user_id == user))
        return 0 if found is None else int(found)

    # ---------------------------------------------------------------- the lease
    def retention_lease(self, holder: str, *, now: float, ttl: float) -> bool:
        with self._tx() as conn:
            row = conn.execute(
                select(retention_state.c.value, retention_state.c.until)
                .where(retention_state.c.name == "lease")
                .with_for_update()
            ).first()
            if row is None:
                conn.execute(insert(retention_state).values(name="lease", value=holder, until=now + ttl))
                return True
            if row[0] != holder and float(row[1]) > now:
                return False
            conn.execute(
                update(retention_state)
                .where(retention_state.c.name == "lease")
                .values(value=holder, until=now + ttl)
            )
            return True

    def retention_release(self, holder: str) -> None:
        with self._tx() as conn:
            conn.execute(
                update(retention_state)
                .where(retention_state.c.name == "lease", retention_state.c.value == holder)
                .values(until=0.0)
            )

    # ---------------------------------------------------------------- the inbox
    def prune_inbox(self, *, older_than: float, max_users: int) -> tuple[int, bool]:
        with self._tx() as conn:
            after = self._position(conn, "inbox")
            found = conn.execute(
                select(users.c.id, _OLDEST_ENTRY)
                .where(users.c.id > after)
                .order_by(users.c.id)
                .limit(max_users)
            ).all()
        batch = [row[0] for row in found]
        pruned = 0
        for user, oldest in found:
            if oldest is not None and old_prefix([oldest], older_than, float):
                pruned += self._prune_user_inbox(user, older_than)
        with self._tx() as conn:
            done = len(batch) < max_users
            self._set_position(conn, "inbox", "" if done else batch[-1])
        return pruned, done

    def _prune_user_inbox(self, user: str, older_than: float) -> int:
        pruned, probe = 0, 1  # most users have nothing old: one row read tells
        while True:
            with self._tx() as conn:
                rows = conn.execute(
                    select(inbox.c.cursor, inbox.c.created_at)
                    .where(inbox.c.user_id == user)
                    .order_by(inbox.c.cursor)
                    .limit(probe)
                ).all()
                old = len(old_prefix(rows, older_than, itemgetter(1)))
                if old == 0:
                    return pruned
                up_to = int(rows[old - 1][0])
                conn.execute(delete(inbox).where(inbox.c.user_id == user, inbox.c.cursor <= up_to))
                done = conn.execute(
                    update(inbox_pruned).where(inbox_pruned.c.user_id == user).values(up_to=up_to)
                ).rowcount
                if not done:
                    conn.execute(insert(inbox_pruned).values(user_id=user, up_to=up_to))
            pruned += old
            if old < probe:
                return pruned
            probe = _CHUNK

    # ---------------------------------------------------------------- messages
    def prune_messages(self, *, older_than: float, max_conversations: int) -> MessagePrune:
        with self._tx() as conn:
            after = self._position(conn, "messages")
            batch = list(
                conn.scalars(
                    select(conversations.c.id)
                    .where(conversations.c.id > after)
                    .order_by(conversations.c.id)
                    .limit(max_conversations)
                )
            )
        deleted, keys = 0, []
        for conversation in batch:
            n, freed = self._prune_conversation(conversation, older_than)
            deleted += n
            keys.extend(freed)
        with self._tx() as conn:
            done = len(batch) < max_conversations
            self._set_position(conn, "messages", "" if done else batch[-1])
        return MessagePrune(deleted=deleted, media_keys=keys, done=done)

    def _prune_conversation(self, conversation: str, older_than: float) -> tuple[int, list[str]]:
        deleted, probe = 0, 1
        freed: list[str] = []
        while True:
            with self._tx() as conn:
                rows = conn.execute(
                    select(messages.c.id, messages.c.created_at)
                    .where(messages.c.conversation_id == conversation)
                    .order_by(messages.c.seq)
                    .limit(probe)
                ).all()
                ids = [str(row[0]) for row in old_prefix(rows, older_than, itemgetter(1))]
                if not ids:
                    return deleted, freed
                freed.extend(self._drop_messages(conn, ids))
            deleted += len(ids)
            if len(ids) < probe:
                return deleted, freed
            probe = _CHUNK

    def _drop_messages(self, conn: Connection, ids: Sequence[str]) -> list[str]:
        """Delete the messages and all their rows; the keys of the objects nobody uses any more."""
        keys = set(conn.scalars(select(media_objects.c.key).where(media_objects.c.message_id.in_(ids))))
        keys.update(conn.scalars(select(media_shares.c.key).where(media_shares.c.message_id.in_(ids))))
        conn.execute(delete(messages).where(messages.c.id.in_(ids)))  # the rest cascades
        if not keys:
            return []
        used = set(conn.scalars(select(media_objects.c.key).where(media_objects.c.key.in_(keys))))
        used.update(conn.scalars(select(media_shares.c.key).where(media_shares.c.key.in_(keys))))
        return sorted(keys - used)

    # ---------------------------------------------------------------- where the sweeps are
    @staticmethod
    def _position(conn: Connection, name: str) -> str:
        found = conn.scalar(select(retention_state.c.value).where(retention_state.c.name == name))
        return "" if found is None else str(found)

    @staticmethod
    def _set_position(conn: Connection, name: str, value: str) -> None:
        done = conn.execute(
            update(retention_state).where(retention_state.c.name == name).values(value=value)
        ).rowcount
        if not done:
            conn.execute(insert(retention_state).values(name=name, value=value, until=0.0))
