"""Deleting a message for everyone in the MongoDB store (the rule: ``rules.deletion``).

One transaction: the message document loses ``text``, its media fields and its quote and gains
``deleted_at`` and ``deleted_by``; every ``message``/``sent`` inbox entry that carried it (found by
the ``user_message`` index) is rewritten to carry the tombstone; the quotes of it in replies lose
their excerpt (``replies``); the ``deleted`` events are appended. Its media objects are removed
from storage only when no other message (a forward) still uses them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.client_session import ClientSession

from workers.stores.mongo.base import Doc
from workers.stores.mongo.replies import MongoReplies
from workers.stores.records import Deletion
from workers.stores.rules.deletion import (
    deleted_events,
    message_not_found,
    tombstone,
)
from workers.stores.rules.hides import unhidden, unless_hidden
from workers.stores.rules.replies import deleted_quote

__all__ = ["MongoDeletion"]


class MongoDeletion(MongoReplies):
    """A group message's ``deleted`` events go to its current members (groups)."""

    def delete_for_everyone(
        self, message_id: str, *, by: str, now: float, ref: str | None = None
    ) -> Deletion:
        def work(session: ClientSession) -> Deletion:
            doc = self._messages.find_one({"_id": message_id}, session=session)
            if doc is None:
                raise message_not_found(message_id)
            done = doc.get("deleted_at") is not None
            stone = tombstone(
                message_id=message_id,
                conversation=doc["conversation"],
                seq=int(doc["seq"]),
                sender=doc["sender"],
                recipient=doc["recipient"],
                ts=float(doc["created_at"]),
                deleted_at=float(doc["deleted_at"]) if done else now,
                deleted_by=doc["deleted_by"] if done else by,
            )
            if done:
                return Deletion(changed=False, message=stone)
            keys, users = self._scrub(session, doc, stone, by=by, now=now)
            items = deleted_events(users, stone, by=by, now=now, ref=ref)
            entries = self._append_many(session, items, now)
            return Deletion(changed=True, message=stone, entries=entries, media_keys=keys)

        return self._tx(work)

    def _scrub(
        self, session: ClientSession, doc: Doc, stub: Mapping[str, Any], *, by: str, now: float
    ) -> tuple[list[str], list[str]]:
        """Remove what message ``doc`` said (text, media fields, reactions, its quote and the
        quotes of it) and put ``stub`` (its wire form now: a tombstone, an expired stub) in every
        entry that carried it, recording it deleted by ``by``: a deletion for everyone and an
        expiry alike. ``(media keys to remove, who hears of it)``; who hid it hears nothing."""
        message_id, sender, recipient = doc["_id"], doc["sender"], doc["recipient"]
        holders, users = self._audience(session, message_id, sender, recipient)
        keys = self._release_media(session, doc)
        self._messages.update_one(
            {"_id": message_id},
            {
                "$set": {"text": "", "deleted_at": float(now), "deleted_by": by},
                "$unset": {
                    "media": "",
                    "media_keys": "",
                    "shared_keys": "",
                    "reply": "",
                    "reply_to": "",
                    "terms": "",  # found by search no more
                },
            },
            session=session,
        )
        self._reactions.delete_many({"message_id": message_id}, session=session)
        self._rewrite_carriers(session, message_id, holders, unless_hidden(lambda _old: dict(stub)))
        self._requote(
            session, message_id, deleted_quote({"id": message_id, "from": sender, "seq": stub["seq"]})
        )
        return keys, unhidden(users, doc.get("hidden_for") or [])
