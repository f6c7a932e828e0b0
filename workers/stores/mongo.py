"""The message store on MongoDB through pymongo, with the same contract as the SQL store.

Writes that span documents (a message with its receipts and inbox entries, a receipt with the
sender's entries, a group change with every member's entry) are one transaction each. A
message's group aggregate is kept as counters on the message document (how many recipients
reached ``delivered`` and ``read``), so concurrent receipts for one message conflict on that
document and are serialised by the transaction retry instead of each missing the other's update.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from client_sdk.contract import Status, is_group_id
from workers.errors import UnknownUser, UserExists
from workers.stores.base import (
    AcceptResult,
    InboxEntry,
    InboxItem,
    ReceiptRequest,
    ReceiptResult,
    StoredMessage,
    TextSend,
    UserInfo,
    dm_conversation,
    new_message_id,
)
from workers.stores.group_rules import message_targets
from workers.stores.inbox_log import receipt_events
from workers.stores.mongo_base import message_from_doc
from workers.stores.mongo_contacts import MongoContacts
from workers.stores.mongo_groups import MongoGroups
from workers.stores.mongo_media import MongoMedia, media_fields
from workers.stores.mongo_push import MongoPush

__all__ = ["MongoStore"]

log = logging.getLogger(__name__)

_REACHED = {Status.DELIVERED: "delivered", Status.READ: "read"}
"""The counter on the message document of each status past ``sent``."""
_ACCEPT_ATTEMPTS = 3


class MongoStore(MongoPush, MongoMedia, MongoGroups, MongoContacts):
    """The whole store on MongoDB (see workers.stores.base.Store). Thread-safe."""

    # ----------------------------------------------------------------- users and credentials
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

    def add_credential(self, user: str, *, kind: str, secret_hash: str, now: float) -> int:
        def work(session: ClientSession) -> int:
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            key = self._next_id(session, "credentials")
            self._credentials.insert_one(
                {
                    "_id": key,
                    "user": user,
                    "kind": kind,
                    "secret_hash": secret_hash,
                    "created_at": float(now),
                },
                session=session,
            )
            return key

        return self._tx(work)

    def remove_credentials(self, user: str) -> int:
        with self._guard():
            return int(self._credentials.delete_many({"user": user}).deleted_count)

    def credential_hashes(self, user: str) -> list[tuple[str, str]]:
        with self._guard():
            if self._users.find_one({"_id": user, "disabled": False}, {"_id": True}) is None:
                return []
            rows = self._credentials.find({"user": user}, {"kind": True, "secret_hash": True})
            return [(r["kind"], r["secret_hash"]) for r in rows.sort("_id", ASCENDING)]

    def set_last_seen(self, user: str, ts: float) -> None:
        with self._guard():
            self._users.update_one({"_id": user}, {"$set": {"last_seen": float(ts)}})

    def last_seen_all(self) -> dict[str, float]:
        with self._guard():
            rows = self._users.find({"last_seen": {"$ne": None}}, {"last_seen": True})
            return {r["_id"]: float(r["last_seen"]) for r in rows}

    # ----------------------------------------------------------------- messages
    def accept_texts(self, sends: Sequence[TextSend], *, now: float) -> list[AcceptResult] | None:
        return None  # not on MongoDB (a transaction per message): the pipeline stores them one by one

    def apply_receipts_of(
        self, requests: Sequence[ReceiptRequest], *, now: float
    ) -> list[ReceiptResult] | None:
        return None  # not on MongoDB: the pipeline applies them one by one

    def accept_message(
        self,
        *,
        sender: str,
        command_id: str,
        recipient: str,
        text: str,
        now: float,
        media: Mapping[str, Any] | None = None,
    ) -> AcceptResult:
        def work(session: ClientSession) -> AcceptResult:
            existing = self._find_duplicate(session, sender, command_id)
            if existing is not None:
                return existing
            if is_group_id(recipient):
                targets = message_targets(recipient, sender, self._members(session, recipient))
                conversation = recipient
            else:
                if self._users.find_one({"_id": recipient}, {"_id": True}, session=session) is None:
                    raise UnknownUser(recipient)
                conversation, targets = dm_conversation(sender, recipient), [recipient]
            return self._insert_message(
                session, sender, command_id, recipient, conversation, targets, text, now, media
            )

        for attempt in range(1, _ACCEPT_ATTEMPTS + 1):
            try:
                return self._tx(work)
            except DuplicateKeyError:
                # a concurrent resend of the same command won the race: answer with what it stored
                with self._guard():
                    existing = self._find_duplicate(None, sender, command_id)
                if existing is not None:
                    return existing
                if attempt == _ACCEPT_ATTEMPTS:
                    raise
                # otherwise two first messages of a conversation raced to create its seq counter
                log.debug("accept_message: retrying after a duplicate key (%s/%s)", sender, command_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def sent_entry(self, sender: str, command_id: str) -> InboxEntry | None:
        with self._guard():
            existing = self._find_duplicate(None, sender, command_id)
        return None if existing is None else existing.sent

    def _find_duplicate(
        self, session: ClientSession | None, sender: str, command_id: str
    ) -> AcceptResult | None:
        doc = self._messages.find_one({"sender": sender, "command_id": command_id}, session=session)
        if doc is None:
            return None
        message = message_from_doc(doc)
        sent_doc = self._inbox.find_one(
            {"user": sender, "message_id": message.id, "kind": "sent"},
            {"cursor": True, "payload": True},
            session=session,
        )
        if sent_doc is None:  # pragma: no cover - written in the same transaction as the message
            raise RuntimeError(f"message {message.id} has no sent entry")
        sent = InboxEntry(sender, int(sent_doc["cursor"]), sent_doc["payload"])
        return AcceptResult(message=message, duplicate=True, entries=[], sent=sent)

    def _insert_message(
        self,
        session: ClientSession,
        sender: str,
        command_id: str,
        recipient: str,
        conversation: str,
        targets: list[str],
        text: str,
        now: float,
        media: Mapping[str, Any] | None,
    ) -> AcceptResult:
        seq = self._bump(self._conversations, conversation, "last_seq", session, upsert=True)
        assert seq is not None
        message = StoredMessage(
            id=new_message_id(),
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            text=text,
            ts=now,
            media=None if media is None else dict(media),
        )
        self._messages.insert_one(
            {
                "_id": message.id,
                "conversation": conversation,
                "seq": seq,
                "sender": sender,
                "recipient": recipient,
                "command_id": command_id,
                "text": text,
                "created_at": float(now),
                "targets": len(targets),
                "reached": dict.fromkeys(_REACHED.values(), 0),
                **media_fields(media),
            },
            session=session,
        )
        if targets:
            self._receipts.insert_many(
                [
                    {
                        "message_id": message.id,
                        "user": user,
                        "status": int(Status.SENT),
                        "created_at": float(now),
                        "delivered_at": None,
                        "read_at": None,
                    }
                    for user in targets
                ],
                session=session,
            )
        body = message.wire()
        entries = self._append_many(
            session,
            [
                (sender, "sent", message.id, {"ref": command_id, "message": body}),
                *((user, "message", message.id, {"message": body}) for user in targets),
            ],
            now,
        )
        return AcceptResult(message=message, duplicate=False, entries=entries, sent=entries[0])

    # ----------------------------------------------------------------- receipts
    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult:
        """Set-based, as on SQL: one read of the receipts, an ``update_many`` of them and one of the
        messages' counters per previous status, one read of the counters, one ``insert_many``."""

        def work(session: ClientSession) -> ReceiptResult:
            ids = list(dict.fromkeys(message_ids))
            current = {
                r["message_id"]: int(r["status"])
                for r in self._receipts.find(
                    {"user": user, "message_id": {"$in": ids}},
                    {"message_id": True, "status": True},
                    session=session,
                )
            }
            refused = [m for m in message_ids if m not in current]
            todo = [m for m in ids if m in current and current[m] < status]  # statuses only move forward
            if not todo:
                return ReceiptResult(not_recipient=refused)
            items = self._advance(session, user, status, {m: current[m] for m in todo}, now)
            return ReceiptResult(entries=self._append_many(session, items, now), not_recipient=refused)

        return self._tx(work)

    def _advance(
        self, session: ClientSession, user: str, status: Status, previous: dict[str, int], now: float
    ) -> list[InboxItem]:
        """Move the user's statuses of the messages (id -> previous status) and make the events for
        the senders, in order; ``all`` once every recipient of a message is there."""
        for prior in sorted(set(previous.values())):
            ids = [m for m, p in previous.items() if p == prior]
            values: dict[str, Any] = {"status": int(status)}
            if status >= Status.DELIVERED > prior:
                values["delivered_at"] = float(now)
            if status >= Status.READ:
                values["read_at"] = float(now)
            self._receipts.update_many(
                {"user": user, "message_id": {"$in": ids}}, {"$set": values}, session=session
            )
            passed = {f"reached.{name}": 1 for level, name in _REACHED.items() if prior < level <= status}
            self._messages.update_many({"_id": {"$in": ids}}, {"$inc": passed}, session=session)
        projection = {"sender": True, "conversation": True, "seq": True, "targets": True, "reached": True}
        docs = {
            d["_id"]: d
            for d in self._messages.find({"_id": {"$in": list(previous)}}, projection, session=session)
        }
        items: list[InboxItem] = []
        for message_id, prior in previous.items():
            doc = docs[message_id]  # a receipt exists only with its message
            after = {level: int(doc["reached"][name]) for level, name in _REACHED.items()}
            before = {level: after[level] - int(prior < level <= status) for level in _REACHED}
            targets = int(doc["targets"])
            body = {
                "message_id": message_id,
                "conversation": doc["conversation"],
                "seq": int(doc["seq"]),
                "by": user,
                "ts": now,
            }
            items += receipt_events(
                sender=doc["sender"],
                body=body,
                status=status,
                floor_before=_floor(before, targets),
                floor_after=_floor(after, targets),
            )
        return items

    # ----------------------------------------------------------------- sync
    def sync(self, *, user: str, after: int, limit: int) -> tuple[list[InboxEntry], bool]:
        with self._guard():
            rows = list(
                self._inbox.find({"user": user, "cursor": {"$gt": after}}, {"cursor": True, "payload": True})
                .sort("cursor", ASCENDING)
                .limit(limit + 1)
            )
        more = len(rows) > limit
        return [InboxEntry(user, int(r["cursor"]), r["payload"]) for r in rows[:limit]], more


def _floor(reached: dict[Status, int], targets: int) -> Status:
    """The lowest status among the recipients: the highest that all of them reached."""
    floor = Status.SENT
    for level in sorted(reached):
        if reached[level] >= targets:
            floor = level
    return floor
