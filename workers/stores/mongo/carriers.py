"""The inbox entries that carry a message, in the MongoDB store (the rule: ``rules.carriers``).

A change to a delivered message (a delete, an edit, a reaction) rewrites its carriers, found by
the ``user_message`` index, in the transaction of the change.
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo.client_session import ClientSession

from client_sdk.contract import is_group_id
from workers.stores.mongo.groups import MongoGroups
from workers.stores.rules.carriers import CARRIERS, Patch, hearers, patched

__all__ = ["MongoCarriers"]


class MongoCarriers(MongoGroups):
    """Who holds a message, who hears of its changes (groups: the current members), and the
    rewriting of the entries that carry it."""

    def _audience(
        self, session: ClientSession, message_id: str, sender: str, recipient: str
    ) -> tuple[list[str], list[str]]:
        """``(holders, hearers)`` of a message: the sender and everyone who got a copy; and of
        those, who hears of a change (see ``rules.carriers.hearers``)."""
        found = self._receipts.find({"message_id": message_id}, {"user": True}, session=session)
        recipients = [r["user"] for r in found]
        members = (self._members(session, recipient) or []) if is_group_id(recipient) else None
        return [sender, *recipients], hearers(sender, recipients, group_members=members)

    def _rewrite_carriers(
        self, session: ClientSession, message_id: str, users: Sequence[str], patch: Patch
    ) -> None:
        """Rewrite every inbox entry of ``users`` that carries the message by ``patch``."""
        carriers = self._inbox.find(
            {"user": {"$in": list(users)}, "message_id": message_id, "kind": {"$in": list(CARRIERS)}},
            {"payload": True},
            session=session,
        )
        for entry in list(carriers):
            new = patched(entry["payload"], patch)
            if new is not None:
                self._inbox.update_one({"_id": entry["_id"]}, {"$set": {"payload": new}}, session=session)
