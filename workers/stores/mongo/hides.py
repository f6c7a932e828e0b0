"""Deleting a message for me in the MongoDB store (the rule: ``rules.hides``).

One transaction: the user joins the message document's ``hidden_for``, the user's own entries
that carried it are rewritten to the hidden stub (``carriers``), and the ``hidden`` event is
appended to the user's inbox.
"""

from __future__ import annotations

from pymongo.client_session import ClientSession

from workers.stores.mongo.facts import MongoMessageFacts
from workers.stores.records import MessageChange
from workers.stores.rules.hides import check_hide, hidden_event, hidden_stub

__all__ = ["MongoHides"]


class MongoHides(MongoMessageFacts):
    def hide_message(self, message_id: str, *, user: str, command_id: str, now: float) -> MessageChange:
        def work(session: ClientSession) -> MessageChange:
            doc = self._messages.find_one({"_id": message_id}, session=session)
            facts = check_hide(
                None if doc is None else self._facts(session, doc), message_id=message_id, user=user
            )
            assert doc is not None
            if user in (doc.get("hidden_for") or []):
                return MessageChange(changed=False)
            self._messages.update_one(
                {"_id": message_id}, {"$addToSet": {"hidden_for": user}}, session=session
            )
            stub = hidden_stub(facts)
            self._rewrite_carriers(session, message_id, [user], lambda _old: dict(stub))
            entries = self._append_many(session, [hidden_event(user, facts, ref=command_id, now=now)], now)
            return MessageChange(changed=True, message=stub, entries=entries)

        return self._tx(work)
