"""Deleting a message for everyone in the SQL store (the rule: ``rules.deletion``).

One transaction: the message's text and media rows go, ``message_deletions`` records when and by
whom, every ``message``/``sent`` inbox entry that carried it is rewritten to carry the tombstone,
and the ``deleted`` events are appended. The carrying entries are found by the participants'
inboxes and the message id: only ``sent`` entries are in an index on the message (see
``schema.inbox``), so the recipients' ``message`` entries are found by a range scan of each of
their inboxes. A deletion is rare; an index on every inbox entry would cost every message sent.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from client_sdk.contract import is_group_id
from workers.events import dumps
from workers.stores.records import Deletion
from workers.stores.rules.deletion import (
    CARRIERS,
    deleted_events,
    hearers,
    message_not_found,
    scrubbed,
    tombstone,
)
from workers.stores.sql.groups import SqlGroups
from workers.stores.sql.schema import (
    inbox,
    media_objects,
    message_deletions,
    message_media,
    messages,
    receipts,
)

__all__ = ["SqlDeletion"]


class SqlDeletion(SqlGroups):
    """A group message's ``deleted`` events go to its current members (groups)."""

    def delete_for_everyone(self, message_id: str, *, by: str, now: float) -> Deletion:
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
            recipients = list(
                conn.scalars(select(receipts.c.user_id).where(receipts.c.message_id == message_id))
            )
            keys = list(
                conn.scalars(select(media_objects.c.key).where(media_objects.c.message_id == message_id))
            )
            conn.execute(update(messages).where(messages.c.id == message_id).values(body=""))
            conn.execute(
                insert(message_deletions).values(message_id=message_id, deleted_at=now, deleted_by=by)
            )
            conn.execute(delete(media_objects).where(media_objects.c.message_id == message_id))
            conn.execute(delete(message_media).where(message_media.c.message_id == message_id))
            self._scrub(conn, message_id, [sender, *recipients], stone)
            members = (self._members(conn, recipient) or []) if is_group_id(recipient) else None
            users = hearers(sender, recipients, group_members=members)
            entries = self._append_many(conn, deleted_events(users, stone, by=by, now=now), now)
        return Deletion(changed=True, message=stone, entries=entries, media_keys=keys)

    def _scrub(self, conn: Connection, message_id: str, users: list[str], stone: dict[str, Any]) -> None:
        """Rewrite every inbox entry of ``users`` that carried the message to carry ``stone``."""
        carriers = conn.execute(
            select(inbox.c.user_id, inbox.c.cursor, inbox.c.payload).where(
                inbox.c.user_id.in_(users),
                inbox.c.message_id == message_id,
                inbox.c.kind.in_(CARRIERS),
            )
        ).all()
        for user, cursor, payload in carriers:
            conn.execute(
                update(inbox)
                .where(inbox.c.user_id == user, inbox.c.cursor == cursor)
                .values(payload=dumps(scrubbed(json.loads(payload), stone)))
            )
