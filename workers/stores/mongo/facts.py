"""What the rules of changing a sent message need to know of it, in the MongoDB store
(``MessageFacts``): read from its document (``deleted_at``, ``media``, ``hidden_for``), its
receipts (who holds it) and its group (the admins)."""

from __future__ import annotations

from pymongo.client_session import ClientSession

from client_sdk.contract import is_group_id
from workers.stores.mongo.base import Doc
from workers.stores.mongo.carriers import MongoCarriers
from workers.stores.mongo.schema import ROLE_ADMIN
from workers.stores.records import MessageFacts

__all__ = ["MongoMessageFacts"]


class MongoMessageFacts(MongoCarriers):
    def message_facts(self, message_id: str) -> MessageFacts | None:
        with self._guard():
            doc = self._messages.find_one({"_id": message_id})
            return None if doc is None else self._facts(None, doc)

    def _facts(self, session: ClientSession | None, doc: Doc) -> MessageFacts:
        message_id, recipient = doc["_id"], doc["recipient"]
        found = self._receipts.find({"message_id": message_id}, {"user": True}, session=session)
        admins: list[str] = []
        if is_group_id(recipient):
            group = self._groups.find_one({"_id": recipient}, {"members": True}, session=session)
            members = group["members"] if group is not None else []
            admins = [m["user"] for m in members if m["role"] == ROLE_ADMIN]
        return MessageFacts(
            id=message_id,
            conversation=doc["conversation"],
            seq=int(doc["seq"]),
            sender=doc["sender"],
            recipient=recipient,
            ts=float(doc["created_at"]),
            deleted=doc.get("deleted_at") is not None,
            media=doc.get("media") is not None,
            holders=(doc["sender"], *(r["user"] for r in found)),
            admins=tuple(admins),
        )
