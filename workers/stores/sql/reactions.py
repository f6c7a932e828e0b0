"""Reactions in the SQL store (the rule: ``rules.reactions``): one ``reactions`` row per user who
reacts to a message.

One transaction locks the message row (``FOR UPDATE`` on PostgreSQL; SQLite writes one at a time
anyway), so two users reacting at once to one message write their summaries one after the other
and neither carrier rewrite drops the other's emoji. Deleting the message takes the same lock
first (its ``UPDATE``), then drops the rows (see ``deletion``).
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from workers.stores.records import ReactionChange
from workers.stores.rules.reactions import not_visible, reaction_events, summary_patch, unchanged
from workers.stores.sql.carriers import SqlCarriers
from workers.stores.sql.schema import message_deletions, messages, reactions

__all__ = ["SqlReactions"]


def _summary(conn: Connection, message_id: str) -> dict[str, str]:
    rows = conn.execute(
        select(reactions.c.user_id, reactions.c.emoji)
        .where(reactions.c.message_id == message_id)
        .order_by(reactions.c.user_id)
    )
    return {str(row[0]): str(row[1]) for row in rows}


class SqlReactions(SqlCarriers):
    """A group message's reactions are heard by its current members (groups)."""

    def react(
        self, *, user: str, message_id: str, emoji: str | None, command_id: str, now: float
    ) -> ReactionChange:
        with self._tx() as conn:
            row = conn.execute(
                select(
                    messages.c.conversation_id,
                    messages.c.seq,
                    messages.c.sender_id,
                    messages.c.recipient_id,
                )
                .where(messages.c.id == message_id)
                .with_for_update()
            ).first()
            if row is None or self._deleted(conn, message_id):
                raise not_visible(message_id)
            conversation, seq, sender, recipient = row
            holders, hearers = self._audience(conn, message_id, sender, recipient)
            if user not in hearers:
                raise not_visible(message_id)
            mine = (reactions.c.message_id == message_id) & (reactions.c.user_id == user)
            found = conn.execute(select(reactions.c.emoji, reactions.c.command_id).where(mine)).first()
            current = None if found is None else (found[0], found[1])
            if unchanged(current, emoji=emoji, command_id=command_id):
                return ReactionChange(changed=False, reactions=_summary(conn, message_id))
            if emoji is None:
                conn.execute(delete(reactions).where(mine))
            elif current is None:
                conn.execute(
                    insert(reactions).values(
                        message_id=message_id,
                        user_id=user,
                        emoji=emoji,
                        command_id=command_id,
                        updated_at=now,
                    )
                )
            else:
                conn.execute(
                    update(reactions).where(mine).values(emoji=emoji, command_id=command_id, updated_at=now)
                )
            summary = _summary(conn, message_id)
            self._rewrite_carriers(conn, message_id, holders, summary_patch(summary))
            where = {"id": message_id, "conversation": conversation, "seq": int(seq)}
            events = reaction_events(
                hearers, where, by=user, emoji=emoji, reactions=summary, ref=command_id, now=now
            )
            entries = self._append_many(conn, events, now)
        return ReactionChange(changed=True, reactions=summary, entries=entries)

    @staticmethod
    def _deleted(conn: Connection, message_id: str) -> bool:
        found = conn.execute(
            select(message_deletions.c.message_id).where(message_deletions.c.message_id == message_id)
        )
        return found.first() is not None
