"""What the rules of changing a sent message need to know of it, in the SQL store (``MessageFacts``):
who sent it and when, whether it is deleted or has media, who holds it, its group's admins, and
who hid it."""

from __future__ import annotations

from sqlalchemy import Connection, select

from client_sdk.contract import is_group_id
from workers.stores.records import MessageFacts
from workers.stores.sql.carriers import SqlCarriers
from workers.stores.sql.media import SqlMedia
from workers.stores.sql.schema import (
    ROLE_ADMIN,
    group_members,
    message_deletions,
    message_hides,
    message_media,
    messages,
    receipts,
)

__all__ = ["SqlMessageFacts"]


class SqlMessageFacts(SqlCarriers, SqlMedia):
    """Changes to a sent message need its audience and carriers (carriers) and its media (media)."""

    def message_facts(self, message_id: str) -> MessageFacts | None:
        with self._tx() as conn:
            return self._facts(conn, message_id)

    def _facts(self, conn: Connection, message_id: str) -> MessageFacts | None:
        row = conn.execute(
            select(
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.sender_id,
                messages.c.recipient_id,
                messages.c.created_at,
                message_deletions.c.deleted_at,
                message_media.c.message_id,
            )
            .outerjoin(message_deletions, message_deletions.c.message_id == messages.c.id)
            .outerjoin(message_media, message_media.c.message_id == messages.c.id)
            .where(messages.c.id == message_id)
        ).first()
        if row is None:
            return None
        conversation, seq, sender, recipient, ts, deleted_at, media = row
        recipients = conn.scalars(select(receipts.c.user_id).where(receipts.c.message_id == message_id))
        admins: list[str] = []
        if is_group_id(recipient):
            admins = list(
                conn.scalars(
                    select(group_members.c.user_id).where(
                        group_members.c.group_id == recipient, group_members.c.role == ROLE_ADMIN
                    )
                )
            )
        return MessageFacts(
            id=message_id,
            conversation=conversation,
            seq=int(seq),
            sender=sender,
            recipient=recipient,
            ts=float(ts),
            deleted=deleted_at is not None,
            media=media is not None,
            holders=(sender, *recipients),
            admins=tuple(admins),
        )

    def _hiders(self, conn: Connection, message_id: str) -> set[str]:
        """The users who hid the message for themselves."""
        return set(
            conn.scalars(select(message_hides.c.user_id).where(message_hides.c.message_id == message_id))
        )
