"""Replies (quotes) in the MongoDB store (the rule: ``rules.replies``).

A reply's message document has ``reply_to`` (the quoted message's id, indexed) and ``reply`` (its
quote); only replies have them. ``_requote`` rewrites the quotes of a message (and the inbox
entries that carry them) when it is deleted for everyone, or edited.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.client_session import ClientSession

from workers.stores.mongo.base import Doc
from workers.stores.mongo.carriers import MongoCarriers
from workers.stores.mongo.media import MongoMedia
from workers.stores.rules.replies import check_quotable, quote, requoted

__all__ = ["MongoReplies"]


class MongoReplies(MongoCarriers, MongoMedia):
    """Quotes need the carriers of the replies (carriers) and the quoted media (media)."""

    def _readable(self, session: ClientSession, user: str, message_id: str) -> Doc | None:
        """The document of a message ``user`` sent or got a copy of; None for one they cannot see
        (or that does not exist)."""
        doc = self._messages.find_one({"_id": message_id}, session=session)
        if doc is None:
            return None
        if doc["sender"] != user:
            got_it = self._receipts.find_one(
                {"message_id": message_id, "user": user}, {"_id": True}, session=session
            )
            if got_it is None:
                return None
        return doc

    def _quote_for(
        self, session: ClientSession, sender: str, conversation: str, reply_to: str
    ) -> dict[str, Any]:
        """The quote of ``reply_to`` for ``sender``'s reply in ``conversation``, or the refusal."""
        doc = self._readable(session, sender, reply_to)
        check_quotable(
            reply_to,
            visible=doc is not None,
            conversation=None if doc is None else doc["conversation"],
            reply_conversation=conversation,
        )
        assert doc is not None
        return quote(
            message_id=reply_to,
            sender=doc["sender"],
            seq=int(doc["seq"]),
            text=doc["text"],
            media=doc.get("media"),
            deleted=doc.get("deleted_at") is not None,
        )

    def _requote(self, session: ClientSession, message_id: str, reply_patch: Mapping[str, Any]) -> None:
        """Every reply to ``message_id`` now quotes it as ``reply_patch`` (the wire ``reply``): the
        stored quote and the inbox entries that carry the reply, in the caller's transaction."""
        replies = list(
            self._messages.find(
                {"reply_to": message_id}, {"sender": True, "recipient": True}, session=session
            )
        )
        if not replies:
            return
        self._messages.update_many(
            {"reply_to": message_id}, {"$set": {"reply": dict(reply_patch)}}, session=session
        )
        patch = requoted(reply_patch)
        for reply in replies:
            holders, _hearers = self._audience(session, reply["_id"], reply["sender"], reply["recipient"])
            self._rewrite_carriers(session, reply["_id"], holders, patch)
