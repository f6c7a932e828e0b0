"""Replies (quotes) in the SQL store (the rule: ``rules.replies``).

``message_replies`` holds each reply's quote and the id of the message it quotes. Only a reply
writes there; ``_requote`` rewrites the quotes of a message (and the inbox entries that carry
them) when it is deleted for everyone, or edited.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from workers.stores.rules.replies import check_quotable, quote, requoted
from workers.stores.sql.carriers import SqlCarriers
from workers.stores.sql.media import SqlMedia
from workers.stores.sql.schema import message_deletions, message_replies, messages, receipts

__all__ = ["SqlReplies"]


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"))


class SqlReplies(SqlCarriers, SqlMedia):
    """Quotes need the carriers of the replies (carriers) and the quoted media (media)."""

    def _readable(self, conn: Connection, user: str, message_id: str) -> tuple[Any, ...] | None:
        """``(conversation, seq, sender, recipient, text, deleted)`` of a message ``user`` sent or
        got a copy of; None for one they cannot see (or that does not exist)."""
        row = conn.execute(
            select(
                messages.c.conversation_id,
                messages.c.seq,
                messages.c.sender_id,
                messages.c.recipient_id,
                messages.c.body,
                message_deletions.c.deleted_at.is_not(None),
            )
            .outerjoin(message_deletions, message_deletions.c.message_id == messages.c.id)
            .where(messages.c.id == message_id)
        ).first()
        if row is None:
            return None
        if row[2] != user:
            got_it = conn.execute(
                select(receipts.c.user_id).where(
                    receipts.c.message_id == message_id, receipts.c.user_id == user
                )
            ).first()
            if got_it is None:
                return None
        return tuple(row)

    def _quote_for(self, conn: Connection, sender: str, conversation: str, reply_to: str) -> dict[str, Any]:
        """The quote of ``reply_to`` for ``sender``'s reply in ``conversation``, or the refusal."""
        row = self._readable(conn, sender, reply_to)
        check_quotable(
            reply_to,
            visible=row is not None,
            conversation=None if row is None else row[0],
            reply_conversation=conversation,
        )
        assert row is not None
        _conversation, seq, quoted_sender, _recipient, text, deleted = row
        return quote(
            message_id=reply_to,
            sender=quoted_sender,
            seq=int(seq),
            text=text,
            media=None if deleted else self._media_of(conn, reply_to),
            deleted=bool(deleted),
        )

    def _insert_reply(self, conn: Connection, message_id: str, reply: Mapping[str, Any]) -> None:
        conn.execute(
            insert(message_replies).values(message_id=message_id, reply_to_id=reply["id"], info=_json(reply))
        )

    def _reply_of(self, conn: Connection, message_id: str) -> dict[str, Any] | None:
        info = conn.scalar(select(message_replies.c.info).where(message_replies.c.message_id == message_id))
        return None if info is None else dict(json.loads(info))

    def _drop_reply(self, conn: Connection, message_id: str) -> None:
        """A reply deleted for everyone keeps no quote."""
        conn.execute(delete(message_replies).where(message_replies.c.message_id == message_id))

    def _requote(self, conn: Connection, message_id: str, reply_patch: Mapping[str, Any]) -> None:
        """Every reply to ``message_id`` now quotes it as ``reply_patch`` (the wire ``reply``): the
        stored quote and the inbox entries that carry the reply, in the caller's transaction."""
        replies = conn.execute(
            select(message_replies.c.message_id, messages.c.sender_id, messages.c.recipient_id)
            .join(messages, messages.c.id == message_replies.c.message_id)
            .where(message_replies.c.reply_to_id == message_id)
        ).all()
        if not replies:
            return
        conn.execute(
            update(message_replies)
            .where(message_replies.c.reply_to_id == message_id)
            .values(info=_json(reply_patch))
        )
        patch = requoted(reply_patch)
        for reply_id, sender, recipient in replies:
            holders, _hearers = self._audience(conn, reply_id, sender, recipient)
            self._rewrite_carriers(conn, reply_id, holders, patch)
