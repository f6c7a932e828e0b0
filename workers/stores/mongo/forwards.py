"""Forwarding a message in the MongoDB store (the rule: ``rules.replies``).

A forward is a new message document in the target conversation with the text and media of a
message the forwarder can read, ``forwarded: true``, and the keys of its media objects in
``shared_keys`` (the original owns them: nothing is uploaded again).
"""

from __future__ import annotations

from pymongo.client_session import ClientSession

from workers.stores.mongo.messages import MongoMessages
from workers.stores.records import AcceptResult
from workers.stores.rules.replies import not_readable

__all__ = ["MongoForwards"]


class MongoForwards(MongoMessages):
    def forward_message(
        self, *, sender: str, command_id: str, message_id: str, recipient: str, now: float
    ) -> AcceptResult:
        def work(session: ClientSession) -> AcceptResult:
            # a resend is answered as the first time, even if the original went meanwhile
            existing = self._find_duplicate(session, sender, command_id)
            if existing is not None:
                return existing
            doc = self._readable(session, sender, message_id)
            if doc is None or doc.get("deleted_at") is not None:
                raise not_readable(message_id)
            conversation, targets = self._targets(session, sender, recipient)
            return self._insert_message(
                session,
                sender,
                command_id,
                recipient,
                conversation,
                targets,
                doc["text"],
                now,
                doc.get("media"),
                forwarded_from=message_id,
            )

        return self._accept(sender, command_id, work)
