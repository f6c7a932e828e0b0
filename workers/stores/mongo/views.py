"""Messages as one user sees them now, in the MongoDB store (the rule: ``rules.views``).

Three reads for any number of messages: the message documents (they hold the deletion, latest
edit, media, quote, forward mark and who hid them), the viewer's receipts of those they did not
send (who may see what), and their reactions.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pymongo.client_session import ClientSession

from workers.stores.mongo.base import MongoBase
from workers.stores.rules.views import StoredView, wire_view

__all__ = ["MongoViews"]

_FIELDS = dict.fromkeys(
    (
        "conversation",
        "seq",
        "sender",
        "recipient",
        "text",
        "created_at",
        "deleted_at",
        "deleted_by",
        "edited_at",
        "media",
        "reply",
        "forwarded",
        "hidden_for",
    ),
    True,
)


class MongoViews(MongoBase):
    def message_views(self, message_ids: Collection[str], *, viewer: str) -> dict[str, dict[str, Any]]:
        return self._tx(lambda session: self._message_views(session, message_ids, viewer))

    def _message_views(
        self, session: ClientSession | None, message_ids: Collection[str], viewer: str
    ) -> dict[str, dict[str, Any]]:
        """The wire form of each of ``message_ids`` as ``viewer`` sees it now, by id; a message
        the viewer may not see (neither sent it nor got a copy) or that does not exist is absent."""
        ids = sorted(set(message_ids))
        if not ids:
            return {}
        docs = list(self._messages.find({"_id": {"$in": ids}}, _FIELDS, session=session))
        others = [d["_id"] for d in docs if d["sender"] != viewer]
        copies: set[str] = set()
        if others:
            found = self._receipts.find(
                {"message_id": {"$in": others}, "user": viewer}, {"message_id": True}, session=session
            )
            copies = {r["message_id"] for r in found}
        docs = [d for d in docs if d["sender"] == viewer or d["_id"] in copies]
        if not docs:
            return {}
        summaries: dict[str, dict[str, str]] = {}
        found = self._reactions.find(
            {"message_id": {"$in": [d["_id"] for d in docs]}},
            {"message_id": True, "user": True, "emoji": True},
            session=session,
        )
        for r in sorted(found, key=lambda r: (r["message_id"], r["user"])):
            summaries.setdefault(r["message_id"], {})[r["user"]] = r["emoji"]
        views: dict[str, dict[str, Any]] = {}
        for doc in docs:
            deleted_at, edited_at = doc.get("deleted_at"), doc.get("edited_at")
            views[doc["_id"]] = wire_view(
                StoredView(
                    id=doc["_id"],
                    conversation=doc["conversation"],
                    seq=int(doc["seq"]),
                    sender=doc["sender"],
                    recipient=doc["recipient"],
                    text=doc.get("text") or "",
                    ts=float(doc["created_at"]),
                    deleted_at=None if deleted_at is None else float(deleted_at),
                    deleted_by=doc.get("deleted_by"),
                    edited_at=None if edited_at is None else float(edited_at),
                    media=doc.get("media"),
                    reply=doc.get("reply"),
                    forwarded=bool(doc.get("forwarded")),
                    reactions=summaries.get(doc["_id"], {}),
                    hidden=viewer in (doc.get("hidden_for") or []),
                )
            )
        return views
