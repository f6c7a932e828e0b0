"""Push tokens, phone numbers and the per-user notification state in the MongoDB store.

``notify_state`` collapses bursts (see rules.push), each step one atomic ``find_one_and_update``
(no transaction needed).
"""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from client_sdk.contract import Status
from workers.errors import UnknownUser
from workers.stores.mongo.base import Doc, MongoBase, message_from_doc
from workers.stores.records import PushToken, SmsRecord, StoredMessage
from workers.stores.rules.push import PENDING_MAX

__all__ = ["MongoPush"]


class MongoPush(MongoBase):
    # ------------------------------------------------------------------ tokens and phones
    def register_push_token(self, *, user: str, token: str, platform: str, preview: bool, now: float) -> None:
        with self._guard():  # one document per token: a phone that changes hands moves with it
            self._push_tokens.replace_one(
                {"_id": token},
                {"user": user, "platform": platform, "preview": preview, "created_at": float(now)},
                upsert=True,
            )

    def unregister_push_token(self, *, user: str, token: str) -> bool:
        with self._guard():
            return bool(self._push_tokens.delete_one({"_id": token, "user": user}).deleted_count)

    def remove_push_token(self, token: str) -> None:
        with self._guard():
            self._push_tokens.delete_one({"_id": token})

    def push_tokens(self, user: str) -> list[PushToken]:
        with self._guard():
            rows = list(
                self._push_tokens.find({"user": user}).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            )
        return [PushToken(token=r["_id"], platform=r["platform"], preview=bool(r["preview"])) for r in rows]

    def set_phone(self, user: str, phone: str | None) -> None:
        def work(session: ClientSession) -> None:
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            if phone is None:
                self._phones.delete_one({"_id": user}, session=session)
            else:
                self._phones.replace_one({"_id": user}, {"phone": phone}, upsert=True, session=session)

        self._tx(work)

    def phone_of(self, user: str) -> str | None:
        with self._guard():
            doc = self._phones.find_one({"_id": user})
        return None if doc is None else str(doc["phone"])

    # ------------------------------------------------------------------ collapsing
    def note_waiting(self, *, user: str, message_id: str) -> tuple[bool, bool]:
        """Add a message to the user's pending list; (push job needed, SMS check needed)."""
        update = {
            "$set": {"push_due": True, "sms_due": True},
            "$push": {"pending": {"$each": [message_id], "$slice": -PENDING_MAX}},
            "$setOnInsert": {"sms_until": 0.0},
        }
        before = self._upsert_state(user, update)
        if before is None:
            return True, True
        return not before["push_due"], not before["sms_due"]

    def take_pending(self, user: str) -> list[str]:
        """The messages of the burst a push is due for; the next message starts a new burst."""
        with self._guard():
            before = self._notify.find_one_and_update(
                {"_id": user}, {"$set": {"push_due": False, "pending": []}}, projection={"pending": True}
            )
        return [] if before is None else list(before["pending"])

    def sms_checked(self, user: str) -> float:
        """Clear the SMS check; returns the time up to which messages were already texted."""
        with self._guard():
            before = self._notify.find_one_and_update(
                {"_id": user}, {"$set": {"sms_due": False}}, projection={"sms_until": True}
            )
        return 0.0 if before is None else float(before["sms_until"])

    def sms_sent(self, user: str, *, until: float) -> None:
        with self._guard():
            self._notify.update_one({"_id": user}, {"$set": {"sms_until": float(until)}})

    def _upsert_state(self, user: str, update: Doc) -> Doc | None:
        """Apply ``update`` to the user's state, creating it; the state before (None: it was new)."""
        with self._guard():
            try:
                return self._notify.find_one_and_update({"_id": user}, update, upsert=True)
            except DuplicateKeyError:  # created concurrently: now it exists, so this is a plain update
                return self._notify.find_one_and_update({"_id": user}, update, upsert=True)

    # ------------------------------------------------------------------ undelivered messages
    def undelivered(self, *, user: str, message_ids: Sequence[str]) -> list[StoredMessage]:
        """Those of the messages that no device of ``user`` has yet, oldest first."""
        if not message_ids:
            return []
        with self._guard():
            waiting = [
                r["message_id"]
                for r in self._receipts.find(
                    {"user": user, "status": int(Status.SENT), "message_id": {"$in": list(message_ids)}},
                    {"message_id": True},
                )
            ]
            return self._messages_by_age(waiting)

    def undelivered_since(self, *, user: str, since: float) -> list[StoredMessage]:
        with self._guard():
            waiting = [
                r["message_id"]
                for r in self._receipts.find(
                    {"user": user, "status": int(Status.SENT), "created_at": {"$gt": since}},
                    {"message_id": True},
                )
            ]
            return self._messages_by_age(waiting)

    def _messages_by_age(self, ids: list[str]) -> list[StoredMessage]:
        if not ids:
            return []
        docs = self._messages.find({"_id": {"$in": ids}}).sort(
            [("created_at", ASCENDING), ("seq", ASCENDING)]
        )
        return [message_from_doc(doc) for doc in docs]

    # ------------------------------------------------------------------ the SMS outbox
    def record_sms(self, *, user: str, phone: str, body: str, now: float) -> None:
        def work(session: ClientSession) -> None:
            key = self._next_id(session, "sms_outbox")
            self._sms.insert_one(
                {"_id": key, "user": user, "phone": phone, "body": body, "created_at": float(now)},
                session=session,
            )

        self._tx(work)

    def sms_outbox(self, user: str | None = None) -> list[SmsRecord]:
        query: Doc = {} if user is None else {"user": user}
        with self._guard():
            rows = list(self._sms.find(query).sort("_id", ASCENDING))
        return [
            SmsRecord(user=r["user"], phone=r["phone"], body=r["body"], ts=float(r["created_at"]))
            for r in rows
        ]
