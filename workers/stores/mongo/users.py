"""Users in the MongoDB store: accounts, their credentials, and when each was last seen."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from workers.errors import UnknownUser, UserExists
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.records import UserInfo
from workers.stores.rules.credentials import credentials_by_login

__all__ = ["MongoUsers"]


class MongoUsers(MongoBase):
    def create_user(self, user: str, *, now: float) -> None:
        try:
            with self._guard():
                self._users.insert_one(
                    {
                        "_id": user,
                        "created_at": float(now),
                        "inbox_seq": 0,
                        "last_seen": None,
                        "disabled": False,
                    }
                )
        except DuplicateKeyError:
            raise UserExists(user) from None

    def delete_user(self, user: str) -> None:
        def work(session: ClientSession) -> None:
            self._credentials.delete_many({"user": user}, session=session)
            self._devices.delete_many({"user": user}, session=session)
            if self._users.delete_one({"_id": user}, session=session).deleted_count == 0:
                raise UnknownUser(user)

        self._tx(work)

    def user_exists(self, user: str) -> bool:
        with self._guard():
            return self._users.find_one({"_id": user}, {"_id": True}) is not None

    def list_users(self) -> list[UserInfo]:
        with self._guard():
            counts = {
                row["_id"]: int(row["n"])
                for row in self._credentials.aggregate([{"$group": {"_id": "$user", "n": {"$sum": 1}}}])
            }
            docs = list(self._users.find({}, {"created_at": True, "last_seen": True}).sort("_id", ASCENDING))
        return [
            UserInfo(
                d["_id"],
                float(d["created_at"]),
                None if d.get("last_seen") is None else float(d["last_seen"]),
                counts.get(d["_id"], 0),
            )
            for d in docs
        ]

    def users_page(self, *, after: str | None, limit: int) -> list[UserInfo]:
        query = {} if after is None else {"_id": {"$gt": after}}
        with self._guard():
            docs = list(
                self._users.find(query, {"created_at": True, "last_seen": True})
                .sort("_id", ASCENDING)
                .limit(limit)
            )
        return self._infos(docs)

    def user_info(self, user: str) -> UserInfo | None:
        with self._guard():
            doc = self._users.find_one({"_id": user}, {"created_at": True, "last_seen": True})
        return self._infos([doc])[0] if doc is not None else None

    def _infos(self, docs: list[Doc]) -> list[UserInfo]:
        """``docs`` of users as UserInfo, with their number of credentials."""
        with self._guard():
            counts = {
                row["_id"]: int(row["n"])
                for row in self._credentials.aggregate(
                    [
                        {"$match": {"user": {"$in": [d["_id"] for d in docs]}}},
                        {"$group": {"_id": "$user", "n": {"$sum": 1}}},
                    ]
                )
            }
        return [
            UserInfo(
                d["_id"],
                float(d["created_at"]),
                None if d.get("last_seen") is None else float(d["last_seen"]),
                counts.get(d["_id"], 0),
            )
            for d in docs
        ]

    def add_credential(
        self, user: str, *, kind: str, secret_hash: str, now: float, device: str | None = None
    ) -> int:
        if device is not None and kind != "token":
            raise ValueError("only tokens can be bound to a device")

        def work(session: ClientSession) -> int:
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            key = self._next_id(session, "credentials")
            doc = {
                "_id": key,
                "user": user,
                "kind": kind,
                "secret_hash": secret_hash,
                "created_at": float(now),
            }
            if device is not None:
                doc["device"] = device
            self._credentials.insert_one(doc, session=session)
            return key

        return self._tx(work)

    def remove_credentials(self, user: str) -> int:
        with self._guard():
            return int(self._credentials.delete_many({"user": user}).deleted_count)

    def credential_hashes(self, user: str, device: str | None = None) -> list[tuple[str, str]]:
        return self.credential_hashes_many([(user, device)])[0]

    def credential_hashes_many(self, logins: Sequence[tuple[str, str | None]]) -> list[list[tuple[str, str]]]:
        """The batch's enabled users in one query, their credentials in another (``$in``); a
        credential without ``device`` is user-wide."""
        if not logins:
            return []
        wanted = sorted({user for user, _ in logins})
        with self._guard():
            enabled = [
                doc["_id"]
                for doc in self._users.find({"_id": {"$in": wanted}, "disabled": False}, {"_id": True})
            ]
            if not enabled:
                return [[] for _ in logins]
            docs = self._credentials.find(
                {"user": {"$in": enabled}}, {"user": True, "device": True, "kind": True, "secret_hash": True}
            ).sort("_id", ASCENDING)
            rows = [(d["user"], d.get("device"), d["kind"], d["secret_hash"]) for d in docs]
        return credentials_by_login(logins, rows)

    def set_last_seen(self, user: str, ts: float) -> None:
        with self._guard():
            self._users.update_one({"_id": user}, {"$set": {"last_seen": float(ts)}})

    def last_seen_all(self) -> dict[str, float]:
        with self._guard():
            rows = self._users.find({"last_seen": {"$ne": None}}, {"last_seen": True})
            return {r["_id"]: float(r["last_seen"]) for r in rows}
