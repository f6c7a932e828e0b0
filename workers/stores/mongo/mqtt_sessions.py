"""Persistent MQTT sessions in the MongoDB store (collection ``mqtt_sessions``): a document per
device that connected with a persistent session, its cursors written in batches by the node."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import UpdateOne
from pymongo.client_session import ClientSession

from workers.stores.mongo.base import MongoBase
from workers.stores.records import ResumedSession, SessionMark

__all__ = ["MongoMqttSessions"]


def _id(user: str, device: str) -> str:
    return f"{user}/{device}"


class MongoMqttSessions(MongoBase):
    def open_mqtt_session(self, user: str, device: str, *, now: float, expiry: float) -> ResumedSession:
        sessions, key = self._db["mqtt_sessions"], _id(user, device)

        def work(session: ClientSession) -> ResumedSession:
            doc = sessions.find_one({"_id": key}, session=session)
            if doc is not None and float(doc["expires_at"]) >= now:
                sessions.update_one({"_id": key}, {"$set": {"expires_at": now + expiry}}, session=session)
                return ResumedSession(int(doc["acked"]), int(doc["sent"]), present=True)
            found = self._users.find_one({"_id": user}, {"inbox_seq": True}, session=session)
            head = int((found or {}).get("inbox_seq", 0) or 0)
            fresh = {"user": user, "device": device, "acked": head, "sent": head, "expires_at": now + expiry}
            sessions.replace_one({"_id": key}, fresh, upsert=True, session=session)
            return ResumedSession(head, head, present=False)

        return self._tx(work)

    def end_mqtt_sessions(self, devices: Sequence[tuple[str, str]]) -> None:
        if devices:
            with self._guard():
                self._db["mqtt_sessions"].delete_many({"_id": {"$in": [_id(u, d) for u, d in devices]}})

    def save_mqtt_sessions(self, marks: Sequence[SessionMark]) -> None:
        writes = [
            UpdateOne(
                {"_id": _id(m.user, m.device)},
                {"$max": {"acked": m.acked, "sent": m.sent}, "$set": {"expires_at": m.expires_at}},
            )
            for m in marks
        ]
        if writes:
            with self._guard():
                self._db["mqtt_sessions"].bulk_write(writes, ordered=False)

    def expire_mqtt_sessions(self, *, now: float) -> int:
        with self._guard():
            return int(self._db["mqtt_sessions"].delete_many({"expires_at": {"$lt": now}}).deleted_count)
