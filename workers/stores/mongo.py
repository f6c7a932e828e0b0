"""The message store on MongoDB through pymongo, with the same contract as the SQL store.

Writes that span documents (a message with its receipts and inbox entries, a receipt with the
sender's entries, a group change with every member's entry) are one transaction each. A
message's group aggregate is kept as counters on the message document (how many recipients
reached ``delivered`` and ``read``), so concurrent receipts for one message conflict on that
document and are serialised by the transaction retry instead of each missing the other's update.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.errors import DuplicateKeyError

from client_sdk.contract import Status, is_group_id
from workers.errors import UnknownUser, UserExists
from workers.stores.base import (
    AcceptResult,
    InboxEntry,
    ReceiptResult,
    StoredMessage,
    UserInfo,
    dm_conversation,
)
from workers.stores.group_rules import message_targets
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
            id=uuid.uuid4().hex,
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
        sent = self._append(session, sender, "sent", message.id, {"ref": command_id, "message": body}, now)
        copies = [
            self._append(session, user, "message", message.id, {"message": body}, now) for user in targets
        ]
        return AcceptResult(message=message, duplicate=False, entries=[sent, *copies], sent=sent)

    # ----------------------------------------------------------------- receipts
    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult:
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
            entries: list[InboxEntry] = []
            refused: list[str] = []
            for message_id in message_ids:
                previous = current.get(message_id)
                if previous is None:
                    refused.append(message_id)
                elif previous < status:  # statuses only move forward
                    entries += self._advance(session, user, status, message_id, previous, now)
                    current[message_id] = int(status)
            return ReceiptResult(entries=entries, not_recipient=refused)

        return self._tx(work)

    def _advance(
        self, session: ClientSession, user: str, status: Status, message_id: str, previous: int, now: float
    ) -> list[InboxEntry]:
        """Move one recipient's status and tell the sender; ``all`` once every recipient is there."""
        values: dict[str, Any] = {"status": int(status)}
        if status >= Status.DELIVERED > previous:
            values["delivered_at"] = float(now)
        if status >= Status.READ:
            values["read_at"] = float(now)
        self._receipts.update_one({"message_id": message_id, "user": user}, {"$set": values}, session=session)
        passed = {f"reached.{name}": 1 for level, name in _REACHED.items() if previous < level <= status}
        doc = self._messages.find_one_and_update(
            {"_id": message_id},
            {"$inc": passed},
            projection={"sender": True, "conversation": True, "seq": True, "targets": True, "reached": True},
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None  # a receipt exists only with its message
        after = {level: int(doc["reached"][name]) for level, name in _REACHED.items()}
        before = {level: after[level] - passed.get(f"reached.{_REACHED[level]}", 0) for level in _REACHED}
        targets = int(doc["targets"])
        floor_before, floor_after = _floor(before, targets), _floor(after, targets)
        body = {
            "message_id": message_id,
            "conversation": doc["conversation"],
            "seq": int(doc["seq"]),
            "by": user,
            "ts": now,
        }
        sender = doc["sender"]
        out = []
        if floor_before < floor_after < status:
            # this receipt also completed a lower status for everyone (the last to get it read it at once)
            lower = {"status": Status(floor_after).label, **body, "all": True}
            out.append(self._append(session, sender, "receipt", message_id, lower, now))
        event = {"status": status.label, **body, "all": floor_after >= status}
        out.append(self._append(session, sender, "receipt", message_id, event, now))
        return out

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
