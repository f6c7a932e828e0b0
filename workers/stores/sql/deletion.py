"""Deleting a message for everyone in the SQL store (the rule: ``rules.deletion``).

One transaction: the message's text and media rows go, ``message_deletions`` records when and by
whom, every ``message``/``sent`` inbox entry that carried it is rewritten to carry the tombstone
(``carriers``), the quotes of it in replies lose their excerpt (``replies``), and the ``deleted``
events are appended. Its media objects are removed from storage only when no other message (a
forward) still uses them.
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
            keys = self._release_media(conn, message_id)
            self._reindex(conn, message_id, "")
            conn.execute(update(messages).where(messages.c.id == message_id).values(body=""))
            conn.execute(
                insert(message_deletions).values(message_id=message_id, deleted_at=now, deleted_by=by)
            )
            conn.execute(delete(reactions).where(reactions.c.message_id == message_id))
            self._rewrite_carriers(conn, message_id, holders, unless_hidden(lambda _old: dict(stone)))
            self._drop_reply(conn, message_id)
            self._requote(conn, message_id, deleted_quote({"id": message_id, "from": sender, "seq": seq}))
            # who deleted it for themselves hears nothing more of it
            users = unhidden(users, self._hiders(conn, message_id))
            items = deleted_events(users, stone, by=by, now=now, ref=ref)
            entries = self._append_many(conn, items, now)
        return Deletion(changed=True, message=stone, entries=entries, media_keys=keys)
