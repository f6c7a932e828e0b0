"""Messages as one user sees them now, in the SQL store (the rule: ``rules.views``).

Three statements for any number of messages: the messages with their deletion, media, quote,
forward mark and the viewer's hide (outer joins, each on a primary key), restricted to those the
viewer sent or got a copy of (a ``receipts`` row); the latest edit of each; their reactions.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, and_, exists, func, or_, select

from workers.stores.rules.views import StoredView, wire_view
from workers.stores.sql.base import SqlBase
from workers.stores.sql.schema import (
    message_deletions,
    message_edits,
    message_forwards,
    message_hides,
    message_media,
    message_replies,
    messages,
    reactions,
    receipts,
)

__all__ = ["SqlViews"]


class SqlViews(SqlBase):
    def message_views(self, message_ids: Collection[str], *, viewer: str) -> dict[str, dict[str, Any]]:
        with self._tx() as conn:
            return self._message_views(conn, message_ids, viewer)

    def _message_views(
        self, conn: Connection, message_ids: Collection[str], viewer: str
    ) -> dict[str, dict[str, Any]]:
        """The wire form of each of ``message_ids`` as ``viewer`` sees it now, by id; a message
        the viewer may not see (neither sent it nor got a copy) or that does not exist is absent."""
        ids = sorted(set(message_ids))
        if not ids:
            return {}
        got_copy = exists().where(receipts.c.message_id == messages.c.id, receipts.c.user_id == viewer)
        rows = conn.execute(
            select(
                messages.c.id,
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.sender_id,
                messages.c.recipient_id,
                messages.c.body,
                messages.c.created_at,
                message_deletions.c.deleted_at,
                message_deletions.c.deleted_by,
                message_media.c.info,
                message_replies.c.info,
                message_forwards.c.message_id,
                message_hides.c.message_id,
            )
            .outerjoin(message_deletions, message_deletions.c.message_id == messages.c.id)
            .outerjoin(message_media, message_media.c.message_id == messages.c.id)
            .outerjoin(message_replies, message_replies.c.message_id == messages.c.id)
            .outerjoin(message_forwards, message_forwards.c.message_id == messages.c.id)
            .outerjoin(
                message_hides,
                and_(message_hides.c.message_id == messages.c.id, message_hides.c.user_id == viewer),
            )
            .where(messages.c.id.in_(ids), or_(messages.c.sender_id == viewer, got_copy))
        ).all()
        if not rows:
            return {}
        seen = [str(row[0]) for row in rows]
        edited = dict(
            conn.execute(
                select(message_edits.c.message_id, func.max(message_edits.c.edited_at))
                .where(message_edits.c.message_id.in_(seen))
                .group_by(message_edits.c.message_id)
            ).all()
        )
        summaries: dict[str, dict[str, str]] = {}
        for message_id, user, emoji in conn.execute(
            select(reactions.c.message_id, reactions.c.user_id, reactions.c.emoji)
            .where(reactions.c.message_id.in_(seen))
            .order_by(reactions.c.message_id, reactions.c.user_id)
        ):
            summaries.setdefault(str(message_id), {})[str(user)] = str(emoji)
        views: dict[str, dict[str, Any]] = {}
        for row in rows:
            (message_id, conversation, seq, sender, recipient, body, ts) = row[:7]
            deleted_at, deleted_by, media, reply, forwarded, hidden = row[7:]
            edited_at = edited.get(message_id)
            views[str(message_id)] = wire_view(
                StoredView(
                    id=str(message_id),
                    conversation=str(conversation),
                    seq=int(seq),
                    sender=str(sender),
                    recipient=str(recipient),
                    text=str(body),
                    ts=float(ts),
                    deleted_at=None if deleted_at is None else float(deleted_at),
                    deleted_by=deleted_by,
                    edited_at=None if edited_at is None else float(edited_at),
                    media=None if media is None else json.loads(media),
                    reply=None if reply is None else json.loads(reply),
                    forwarded=forwarded is not None,
                    reactions=summaries.get(str(message_id), {}),
                    hidden=hidden is not None,
                )
            )
        return views
