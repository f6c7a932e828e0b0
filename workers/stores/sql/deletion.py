"""Deleting a message for everyone in the SQL store (the rule: ``rules.deletion``).

One transaction: the message's text and media rows go, ``message_deletions`` records when and by
whom, every ``message``/``sent`` inbox entry that carried it is rewritten to carry the tombstone
(``carriers``), and the ``deleted`` events are appended.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, update

from workers.stores.records import Deletion
from workers.stores.rules.deletion import (
    deleted_events,
    message_not_found,
    tombstone,
)
from workers.stores.rules.hides import unhidden, unless_hidden
from workers.stores.sql.facts import SqlMessageFacts
from workers.stores.sql.schema import (
    media_objects,
    message_deletions,
    message_media,
    messages,
    reactions,
)

__all__ = ["SqlDeletion"]


class SqlDeletion(SqlMessageFacts):
    """A group message's ``deleted`` events go to its current members (groups)."""

    def delete_for_everyone(
        self, message_id: str, *, by: str, now: float, ref: str | None = None
    ) -> Deletion:
        with self._tx() as conn:
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
            holders, users = self._audience(conn, message_id, sender, recipient)
            keys = list(
                conn.scalars(select(media_objects.c.key).where(media_objects.c.message_id == message_id))
            )
            conn.execute(update(messages).where(messages.c.id == message_id).values(body=""))
            conn.execute(
                insert(message_deletions).values(message_id=message_id, deleted_at=now, deleted_by=by)
            )
            conn.execute(delete(media_objects).where(media_objects.c.message_id == message_id))
            conn.execute(delete(message_media).where(message_media.c.message_id == message_id))
            conn.execute(delete(reactions).where(reactions.c.message_id == message_id))
            self._rewrite_carriers(conn, message_id, holders, unless_hidden(lambda _old: dict(stone)))
            # who deleted it for themselves hears nothing more of it
            users = unhidden(users, self._hiders(conn, message_id))
            items = deleted_events(users, stone, by=by, now=now, ref=ref)
            entries = self._append_many(conn, items, now)
        return Deletion(changed=True, message=stone, entries=entries, media_keys=keys)
