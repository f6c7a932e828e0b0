"""Editing a message in the SQL store (the rule: ``rules.edits``).

One transaction: ``messages.body`` takes the new text (older versions are not kept), a
``message_edits`` row records the edit's command id and time, every ``message``/``sent`` entry
that carried it is rewritten (``carriers``), and the ``edited`` events are appended.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, literal_column, select, update

from workers.stores.records import MessageChange, MessageFacts
from workers.stores.rules.edits import check_edit, edit_patch, edited_events
from workers.stores.rules.hides import is_hidden, unhidden
from workers.stores.rules.replies import quote_of
from workers.stores.sql.facts import SqlMessageFacts
from workers.stores.sql.replies import SqlReplies
from workers.stores.sql.schema import inbox, message_edits, messages
from workers.stores.sql.search_index import SqlSearchIndex

__all__ = ["SqlEdits"]


class SqlEdits(SqlMessageFacts, SqlReplies, SqlSearchIndex):
    def edit_message(
        self, message_id: str, *, user: str, text: str, command_id: str, now: float, window: float
    ) -> MessageChange:
        with self._tx() as conn:
            seen = conn.execute(
                select(message_edits.c.edited_at).where(
                    message_edits.c.message_id == message_id, message_edits.c.command_id == command_id
                )
            ).first()
            facts = self._facts(conn, message_id)
            if seen is not None and facts is not None and facts.sender == user:
                return MessageChange(changed=False)  # a resend: done already
            facts = check_edit(facts, message_id=message_id, user=user, text=text, now=now, window=window)
            message = {**self._as_sent(conn, facts), "text": text, "edited_at": now}
            self._reindex(conn, message_id, text)
            conn.execute(update(messages).where(messages.c.id == message_id).values(body=text))
            conn.execute(
                insert(message_edits).values(message_id=message_id, command_id=command_id, edited_at=now)
            )
            holders, hearers = self._audience(conn, message_id, facts.sender, facts.recipient)
            self._rewrite_carriers(conn, message_id, holders, edit_patch(text, now))
            # the quotes of it in replies follow: only the latest text is kept, there too
            self._requote(conn, message_id, quote_of(message))
            users = unhidden(hearers, self._hiders(conn, message_id))
            items = edited_events(users, message, by=user, ref=command_id, now=now)
            entries = self._append_many(conn, items, now)
        return MessageChange(changed=True, message=message, entries=entries)

    def _as_sent(self, conn: Connection, facts: MessageFacts) -> dict[str, Any]:
        """The message as its sender's ``sent`` entry carries it (with what other changes added
        to it: a reply, reactions...), or from its row when the sender hid it."""
        payload = conn.execute(
            select(inbox.c.payload).where(
                inbox.c.user_id == facts.sender,
                inbox.c.message_id == facts.id,
                inbox.c.kind == literal_column("'sent'"),  # a literal: the partial index matches it
            )
        ).scalar()
        if payload is not None:
            message: dict[str, Any] = json.loads(payload)["message"]
            if not is_hidden(message):
                return message
        body = conn.execute(select(messages.c.body).where(messages.c.id == facts.id)).scalar()
        wire: dict[str, Any] = {
            "id": facts.id,
            "conversation": facts.conversation,
            "seq": facts.seq,
            "from": facts.sender,
            "to": facts.recipient,
            "text": body or "",
            "ts": facts.ts,
        }
        media = self._media_of(conn, facts.id)
        if media is not None:
            wire["media"] = media
        return wire
