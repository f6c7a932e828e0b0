"""Deleting a message for everyone in the MongoDB store (the rule: ``rules.deletion``).

One transaction: the message document loses ``text``, ``media`` and ``media_keys`` and gains
``deleted_at`` and ``deleted_by``; every ``message``/``sent`` inbox entry that carried it (found by
the ``user_message`` index) is rewritten to carry the tombstone; the ``deleted`` events are appended.
"""

from __future__ import annotations

from typing import Any

from pymongo.client_session import ClientSession

from client_sdk.contract import is_group_id
from workers.stores.mongo.groups import MongoGroups
from workers.stores.records import Deletion
from workers.stores.rules.deletion import (
    CARRIERS,
    deleted_events,
    hearers,
    message_not_found,
    scrubbed,
    tombstone,
)

__all__ = ["MongoDeletion"]


class MongoDeletion(MongoGroups):
    """A group message's ``deleted`` events go to its current members (groups)."""

    def delete_for_everyone(self, message_id: str, *, by: str, now: float) -> Deletion:
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
            sender, recipient = doc["sender"], doc["recipient"]
            recipients = [
                r["user"]
                for r in self._receipts.find({"message_id": message_id}, {"user": True}, session=session)
            ]
            keys = list(doc.get("media_keys") or [])
            self._messages.update_one(
                {"_id": message_id},
                {
                    "$set": {"text": "", "deleted_at": float(now), "deleted_by": by},
                    "$unset": {"media": "", "media_keys": ""},
                },
                session=session,
            )
            self._scrub(session, message_id, [sender, *recipients], stone)
            members = (self._members(session, recipient) or []) if is_group_id(recipient) else None
            users = hearers(sender, recipients, group_members=members)
            entries = self._append_many(session, deleted_events(users, stone, by=by, now=now), now)
            return Deletion(changed=True, message=stone, entries=entries, media_keys=keys)

        return self._tx(work)

    def _scrub(
        self, session: ClientSession, message_id: str, users: list[str], stone: dict[str, Any]
    ) -> None:
        """Rewrite every inbox entry of ``users`` that carried the message to carry ``stone``."""
        carriers = self._inbox.find(
            {"user": {"$in": users}, "message_id": message_id, "kind": {"$in": list(CARRIERS)}},
            {"payload": True},
            session=session,
        )
        for entry in list(carriers):
            self._inbox.update_one(
                {"_id": entry["_id"]},
                {"$set": {"payload": scrubbed(entry["payload"], stone)}},
                session=session,
            )
