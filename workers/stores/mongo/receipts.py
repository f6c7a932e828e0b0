"""Receipts in the MongoDB store: statuses move forward for many messages at once.

A message's group aggregate is kept as counters on the message document (how many recipients
reached ``delivered`` and ``read``), so concurrent receipts for one message conflict on that
document and are serialised by the transaction retry instead of each missing the other's update.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo.client_session import ClientSession

from client_sdk.contract import Status, is_group_id
from workers.stores.mongo.base import MongoBase
from workers.stores.mongo.blocks import blocked_pairs
from workers.stores.mongo.chat_rows import advance_reads
from workers.stores.mongo.privacy_data import read_receipts_off
from workers.stores.mongo.schema import REACHED
from workers.stores.records import InboxItem, ReceiptRequest, ReceiptResult
from workers.stores.rules.blocks import unblocked_items
from workers.stores.rules.privacy import effective_read_status
from workers.stores.rules.receipts import merge_group_receipts, receipt_events

__all__ = ["MongoReceipts"]


class _NotRecipient(Exception):
    """A receipt of a batch names a message not sent to its user: the batch goes one by one."""


class MongoReceipts(MongoBase):
    def apply_receipts_of(
        self, requests: Sequence[ReceiptRequest], *, now: float
    ) -> list[ReceiptResult] | None:
        """Several users' receipts in one transaction, so that a group's members' receipts of one
        message reach its sender as one event (``rules.receipts``); None, with nothing done, when
        one of them names a message that was not sent to its user (each then gets its own answer)."""

        def work(session: ClientSession) -> list[ReceiptResult]:
            given: list[list[InboxItem]] = []
            for request in requests:
                items, refused = self._apply(session, request.user, request.status, request.message_ids, now)
                if refused:
                    raise _NotRecipient  # undoes the transaction
                given.append(items)
            given = merge_group_receipts(given)
            every = [item for items in given for item in items]
            entries = self._append_many(session, every, now) if every else []
            results, start = [], 0
            for items in given:
                results.append(ReceiptResult(entries=entries[start : start + len(items)]))
                start += len(items)
            return results

        try:
            return self._tx(work)
        except _NotRecipient:
            return None

    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult:
        """Set-based, as on SQL: one read of the receipts, an ``update_many`` of them and one of the
        messages' counters per previous status, one read of the counters, one ``insert_many``."""

        def work(session: ClientSession) -> ReceiptResult:
            items, refused = self._apply(session, user, status, message_ids, now)
            entries = self._append_many(session, items, now) if items else []
            return ReceiptResult(entries=entries, not_recipient=refused)

        return self._tx(work)

    def _apply(
        self, session: ClientSession, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> tuple[list[InboxItem], list[str]]:
        """Move ``user``'s statuses of the messages: the events to append, and the messages named
        that were not sent to the user."""
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
        items: list[InboxItem] = []
        for moved_to, moved in self._by_privacy(session, user, status, todo).items():
            moving = {m: current[m] for m in moved if current[m] < moved_to}
            if moving:
                items += self._advance(session, user, moved_to, moving, now)
        if status == Status.READ and todo:  # the reader's own devices, whatever their privacy
            items += self._reads(session, user, todo, now)
        if not items:
            return [], refused
        senders = {item[0] for item in items}
        blocked = {b for _, b in blocked_pairs(self._blocks, [(user, s) for s in senders], session)}
        return unblocked_items(items, user, blocked), refused  # none for whom the user blocks

    def _by_privacy(
        self, session: ClientSession, user: str, status: Status, todo: list[str]
    ) -> dict[Status, list[str]]:
        """``todo`` by the status ``user``'s receipt moves each message to: a ``read`` of a 1-on-1
        message is ``delivered`` when its reader or sender turned read receipts off
        (rules.privacy); only ``read`` receipts read the settings."""
        if status != Status.READ or not todo:
            return {status: todo} if todo else {}
        docs = self._messages.find(
            {"_id": {"$in": todo}}, {"sender": True, "recipient": True}, session=session
        )
        direct = {d["_id"]: d["sender"] for d in docs if not is_group_id(d["recipient"])}
        off = read_receipts_off(self._db, {user, *direct.values()}, session) if direct else set()
        out: dict[Status, list[str]] = {}
        for message_id in todo:
            sender = direct.get(message_id)
            moved_to = effective_read_status(
                status, group=sender is None, reader=user, sender=sender or "", off=off
            )
            out.setdefault(moved_to, []).append(message_id)
        return out

    def _reads(
        self, session: ClientSession, user: str, message_ids: list[str], now: float
    ) -> list[InboxItem]:
        """The read positions the user's read messages move forward, and their ``read`` events."""
        upto: dict[tuple[str, str], int] = {}
        for doc in self._messages.find(
            {"_id": {"$in": message_ids}}, {"conversation": True, "seq": True}, session=session
        ):
            key = (user, doc["conversation"])
            upto[key] = max(upto.get(key, 0), int(doc["seq"]))
        return advance_reads(self._chat_members, session, upto, now)

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
            passed = {f"reached.{name}": 1 for level, name in REACHED.items() if prior < level <= status}
            self._messages.update_many({"_id": {"$in": ids}}, {"$inc": passed}, session=session)
        projection = {"sender": True, "conversation": True, "seq": True, "targets": True, "reached": True}
        docs = {
            d["_id"]: d
            for d in self._messages.find({"_id": {"$in": list(previous)}}, projection, session=session)
        }
        items: list[InboxItem] = []
        for message_id, prior in previous.items():
            doc = docs[message_id]  # a receipt exists only with its message
            after = {level: int(doc["reached"][name]) for level, name in REACHED.items()}
            before = {level: after[level] - int(prior < level <= status) for level in REACHED}
            targets = int(doc["targets"])
            items += receipt_events(
                sender=doc["sender"],
                message_id=message_id,
                conversation=doc["conversation"],
                seq=int(doc["seq"]),
                by=user,
                now=now,
                status=status,
                floor_before=_floor(before, targets),
                floor_after=_floor(after, targets),
            )
        return items


def _floor(reached: dict[Status, int], targets: int) -> Status:
    """The lowest status among the recipients: the highest that all of them reached."""
    floor = Status.SENT
    for level in sorted(reached):
        if reached[level] >= targets:
            floor = level
    return floor
