"""Deleting a message for everyone in the SQL store (the rule: ``rules.deletion``).

One transaction: the message's text and media rows go, ``message_deletions`` records when and by
whom, every ``message``/``sent`` inbox entry that carried it is rewritten to carry the tombstone
(``carriers``), the quotes of it in replies lose their excerpt (``replies``), and the ``deleted``
events are appended. Its media objects are removed from storage only when no other message (a
forward) still uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from workers.stores.records import Deletion
from workers.stores.rules.deletion import (
    deleted_events,
    message_not_found,
    tombstone,
)
from workers.stores.rules.hides import unhidden, unless_hidden
from workers.stores.rules.replies import deleted_quote
from workers.stores.sql.facts import SqlMessageFacts
from workers.stores.sql.replies import SqlReplies
from workers.stores.sql.schema import message_deletions, messages, reactions
from workers.stores.sql.search_index import SqlSearchIndex

__all__ = ["SqlDeletion"]


class SqlDeletion(SqlMessageFacts, SqlReplies, SqlSearchIndex):
    """A group message's ``deleted`` events go to its current members (groups)."""

    def delete_for_everyone(
        self, message_id: str, *, by: str, now: float, ref: str | None = None
    ) -> Deletion:
        with self._tx() as conn:
            row = self._place_row(conn, message_id)
            if row is None:
                raise message_not_found(message_id)
            conversation, seq, sender, recipient, ts, deleted_at, deleted_by = row
            done = deleted_at is not None
            stone = tombstone(
                message_id=message_id,
                conversation=conversation,
                seq=int(seq),
                sender=sender,
                recipient=recipient,
                ts=float(ts),
                deleted_at=float(deleted_at) if done else now,
                deleted_by=deleted_by if done else by,
            )
            if done:
                return Deletion(changed=False, message=stone)
            keys, users = self._scrub(conn, stone, by=by, now=now)
            items = deleted_events(users, stone, by=by, now=now, ref=ref)
            entries = self._append_many(conn, items, now)
        return Deletion(changed=True, message=stone, entries=entries, media_keys=keys)

    @staticmethod
    def _place_row(conn: Connection, message_id: str) -> tuple[Any, ...] | None:
        """``(conversation, seq, sender, recipient, ts, deleted_at, deleted_by)`` of a message."""
        row = conn.execute(
            select(
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.sender_id,
                messages.c.recipient_id,
                messages.c.created_at,
                message_deletions.c.deleted_at,
                message_deletions.c.deleted_by,
            )
            .outerjoin(message_deletions, message_deletions.c.message_id == messages.c.id)
            .where(messages.c.id == message_id)
        ).first()
        return None if row is None else tuple(row)

    def _scrub(
        self, conn: Connection, stub: Mapping[str, Any], *, by: str, now: float
    ) -> tuple[list[str], list[str]]:
        """Remove what a message said from the store (text, media rows, reactions, its quote and
        the quotes of it) and put ``stub`` (its wire form now: a tombstone, an expired stub) in
        every entry that carried it, recording it deleted by ``by``: a deletion for everyone and
        an expiry alike. ``(media keys to remove, who hears of it)``; who hid it hears nothing."""
        message_id, sender, recipient = stub["id"], stub["from"], stub["to"]
        holders, users = self._audience(conn, message_id, sender, recipient)
        keys = self._release_media(conn, message_id)
        self._reindex(conn, message_id, "")  # found by search no more
        conn.execute(update(messages).where(messages.c.id == message_id).values(body=""))
        conn.execute(insert(message_deletions).values(message_id=message_id, deleted_at=now, deleted_by=by))
        conn.execute(delete(reactions).where(reactions.c.message_id == message_id))
        self._rewrite_carriers(conn, message_id, holders, unless_hidden(lambda _old: dict(stub)))
        self._drop_reply(conn, message_id)
        self._requote(conn, message_id, deleted_quote({"id": message_id, "from": sender, "seq": stub["seq"]}))
        return keys, unhidden(users, self._hiders(conn, message_id))
