"""Editing a message in the MongoDB store (the rule: ``rules.edits``).

One transaction: the message document's ``text`` becomes the new text (older versions are not
kept), ``edited_at`` the edit time, and the edit's command id joins ``edit_ids`` (a resent edit
changes nothing more); every ``message``/``sent`` entry that carried it is rewritten
(``carriers``), and the ``edited`` events are appended.
"""

from __future__ import annotations

from typing import Any

from pymongo.client_session import ClientSession

from workers.stores.mongo.base import Doc, message_from_doc
from workers.stores.mongo.facts import MongoMessageFacts
from workers.stores.mongo.replies import MongoReplies
from workers.stores.records import MessageChange
from workers.stores.rules.deletion import message_not_found
from workers.stores.rules.edits import check_edit, edit_patch, edited_events
from workers.stores.rules.hides import is_hidden, unhidden
from workers.stores.rules.replies import quote_of
from workers.stores.rules.search import index_terms

__all__ = ["MongoEdits"]


class MongoEdits(MongoMessageFacts, MongoReplies):
    def edit_message(
        self, message_id: str, *, user: str, text: str, command_id: str, now: float, window: float
    ) -> MessageChange:
        def work(session: ClientSession) -> MessageChange:
            doc = self._messages.find_one({"_id": message_id}, session=session)
            if doc is None:
                raise message_not_found(message_id)
            if command_id in (doc.get("edit_ids") or []) and doc["sender"] == user:
                return MessageChange(changed=False)  # a resend: done already
            facts = check_edit(
                self._facts(session, doc), message_id=message_id, user=user, text=text, now=now, window=window
            )
            message = {**self._as_sent(session, doc), "text": text, "edited_at": now}
            self._messages.update_one(
                {"_id": message_id},
                {
                    "$set": {"text": text, "edited_at": float(now), "terms": index_terms(text)},
                    "$addToSet": {"edit_ids": command_id},
                },
                session=session,
            )
            holders, hearers = self._audience(session, message_id, facts.sender, facts.recipient)
            self._rewrite_carriers(session, message_id, holders, edit_patch(text, now))
            # the quotes of it in replies follow: only the latest text is kept, there too
            self._requote(session, message_id, quote_of(message))
            users = unhidden(hearers, doc.get("hidden_for") or [])
            items = edited_events(users, message, by=user, ref=command_id, now=now)
            entries = self._append_many(session, items, now)
            return MessageChange(changed=True, message=message, entries=entries)

        return self._tx(work)

    def _as_sent(self, session: ClientSession, doc: Doc) -> dict[str, Any]:
        """The message as its sender's ``sent`` entry carries it (with what other changes added
        to it: a reply, reactions...), or from its document when the sender hid it."""
        sent = self._inbox.find_one(
            {"user": doc["sender"], "message_id": doc["_id"], "kind": "sent"},
            {"payload": True},
            session=session,
        )
        if sent is not None:
            message: dict[str, Any] = dict(sent["payload"]["message"])
            if not is_hidden(message):
                return message
        return message_from_doc(doc).wire()
