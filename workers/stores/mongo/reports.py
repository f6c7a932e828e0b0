"""Reports in the MongoDB store (the rule: ``rules.blocks``): a ``reports`` document with copies
of the reported messages as the reporter's inbox carries them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from workers.errors import UnknownUser
from workers.stores.mongo.base import MongoBase
from workers.stores.records import ReportInfo
from workers.stores.rules.blocks import check_block, check_reported
from workers.stores.rules.carriers import CARRIERS

__all__ = ["MongoReports"]


class MongoReports(MongoBase):
    def report_user(
        self, *, reporter: str, user: str, message_ids: Sequence[str], reason: str, ref: str, now: float
    ) -> bool:
        check_block(reporter, user)

        def work(session: ClientSession) -> bool:
            if self._reports.find_one(
                {"reporter": reporter, "command_id": ref}, {"_id": True}, session=session
            ):
                return False  # the same report sent again: stored once
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            copies = check_reported(message_ids, self._seen(session, reporter, message_ids))
            self._reports.insert_one(
                {
                    "_id": self._next_id(session, "reports"),
                    "reporter": reporter,
                    "user": user,
                    "reason": reason,
                    "messages": copies,
                    "command_id": ref,
                    "created_at": float(now),
                },
                session=session,
            )
            return True

        try:
            return self._tx(work)
        except DuplicateKeyError:  # sent again at once: the other one stored it
            return False

    def _seen(
        self, session: ClientSession, reporter: str, message_ids: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        """The messages of ``message_ids`` the reporter can see, as their inbox carries them."""
        if not message_ids:
            return {}
        rows = self._inbox.find(
            {"user": reporter, "message_id": {"$in": list(message_ids)}, "kind": {"$in": list(CARRIERS)}},
            {"message_id": True, "payload": True},
            session=session,
        )
        return {row["message_id"]: row["payload"]["message"] for row in rows}

    def reports_page(self, *, after: int | None, limit: int) -> list[ReportInfo]:
        query = {} if after is None else {"_id": {"$gt": after}}
        with self._guard():
            rows = self._reports.find(query).sort("_id", ASCENDING).limit(limit)
            return [
                ReportInfo(
                    int(r["_id"]),
                    r["reporter"],
                    r["user"],
                    r["reason"],
                    list(r["messages"]),
                    float(r["created_at"]),
                )
                for r in rows
            ]
