"""Reactions in the MongoDB store (the rule: ``rules.reactions``): one ``reactions`` document per
user who reacts to a message.

Two reactions to one message at once both rewrite the message's carriers, so the transactions
conflict and one runs again (see ``base._tx``), reading the other's emoji: neither summary drops
the other's.
"""

from __future__ import annotations

from pymongo.client_session import ClientSession

from workers.stores.mongo.carriers import MongoCarriers
from workers.stores.records import ReactionChange
from workers.stores.rules.reactions import not_visible, reaction_events, summary_patch, unchanged

__all__ = ["MongoReactions"]


class MongoReactions(MongoCarriers):
    """A group message's reactions are heard by its current members (groups)."""

    def react(
        self, *, user: str, message_id: str, emoji: str | None, command_id: str, now: float
    ) -> ReactionChange:
        def work(session: ClientSession) -> ReactionChange:
            doc = self._messages.find_one(
                {"_id": message_id},
                {"conversation": True, "seq": True, "sender": True, "recipient": True, "deleted_at": True},
                session=session,
            )
            if doc is None or doc.get("deleted_at") is not None:
                raise not_visible(message_id)
            holders, hearers = self._audience(session, message_id, doc["sender"], doc["recipient"])
            if user not in hearers:
                raise not_visible(message_id)
            mine = {"message_id": message_id, "user": user}
            found = self._reactions.find_one(mine, session=session)
            current = None if found is None else (found["emoji"], found["command_id"])
            if unchanged(current, emoji=emoji, command_id=command_id):
                return ReactionChange(changed=False, reactions=self._summary(session, message_id))
            if emoji is None:
                self._reactions.delete_one(mine, session=session)
            else:
                self._reactions.update_one(
                    mine,
                    {"$set": {"emoji": emoji, "command_id": command_id, "updated_at": float(now)}},
                    upsert=True,
                    session=session,
                )
            summary = self._summary(session, message_id)
            self._rewrite_carriers(session, message_id, holders, summary_patch(summary))
            where = {"id": message_id, "conversation": doc["conversation"], "seq": int(doc["seq"])}
            events = reaction_events(
                hearers, where, by=user, emoji=emoji, reactions=summary, ref=command_id, now=now
            )
            entries = self._append_many(session, events, now)
            return ReactionChange(changed=True, reactions=summary, entries=entries)

        return self._tx(work)

    def _summary(self, session: ClientSession, message_id: str) -> dict[str, str]:
        found = self._reactions.find(
            {"message_id": message_id}, {"user": True, "emoji": True}, session=session
        )
        return {r["user"]: r["emoji"] for r in sorted(found, key=lambda r: r["user"])}
