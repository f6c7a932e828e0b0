"""Disappearing messages in the MongoDB store (the rule: ``rules.timers``).

A conversation's timer is a field of its ``conversations`` document (``timer``, absent when off),
read by the same ``find_one_and_update`` that gives a new message its seq: a message costs no
extra round trip. A message sent under a timer has ``expires_at`` (a sparse index) until the sweep
expires it: ``expire_due`` claims each due message by unsetting the field (a concurrent sweeper
finds it gone) and scrubs it as ``deletion`` does, in one transaction.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING
from pymongo.client_session import ClientSession

from client_sdk.contract import is_group_id
from workers.errors import UnknownUser
from workers.stores.mongo.base import Doc
from workers.stores.mongo.deletion import MongoDeletion
from workers.stores.records import Expiry, TimerChange
from workers.stores.rules.messages import dm_conversation
from workers.stores.rules.timers import (
    EXPIRED_BY,
    check_timer_setter,
    expired_events,
    expired_stub,
    timer_conversation,
    timer_events,
)

__all__ = ["MongoTimers"]


class MongoTimers(MongoDeletion):
    """Timers need a group's roles and members (groups), and expiry scrubs messages as a deletion
    does (deletion)."""

    def set_timer(self, *, user: str, to: str, seconds: int, now: float, ref: str) -> TimerChange:
        def work(session: ClientSession) -> TimerChange:
            if is_group_id(to):
                roles = self._roles(self._load(session, to))
                check_timer_setter(to, user, roles)
                conversation, participants = to, list(roles)
            else:
                if self._users.find_one({"_id": to}, {"_id": True}, session=session) is None:
                    raise UnknownUser(to)
                conversation, participants = dm_conversation(user, to), list(dict.fromkeys((user, to)))
            head = self._conversations.find_one({"_id": conversation}, {"timer": True}, session=session)
            if int((head or {}).get("timer") or 0) == seconds:
                return TimerChange(changed=False, seconds=seconds, conversation=conversation)
            change: Doc = (
                {"$set": {"timer": seconds, "timer_by": user, "timer_at": float(now)}}
                if seconds
                else {"$unset": {"timer": "", "timer_by": "", "timer_at": ""}}
            )
            self._conversations.update_one({"_id": conversation}, change, upsert=True, session=session)
            items = timer_events(
                participants, conversation=conversation, seconds=seconds, by=user, now=now, ref=ref
            )
            entries = self._append_many(session, items, now)
            return TimerChange(changed=True, seconds=seconds, conversation=conversation, entries=entries)

        return self._tx(work)

    def timer_of(self, *, user: str, to: str) -> tuple[str, int]:
        with self._guard():
            members = self._members(None, to) if is_group_id(to) else None
            if not is_group_id(to) and self._users.find_one({"_id": to}, {"_id": True}) is None:
                raise UnknownUser(to)
            conversation = timer_conversation(user, to, members)
            head = self._conversations.find_one({"_id": conversation}, {"timer": True})
        return conversation, int((head or {}).get("timer") or 0)

    def expire_due(self, *, now: float, limit: int) -> Expiry:
        def work(session: ClientSession) -> Expiry:
            due = list(
                self._messages.find({"expires_at": {"$lte": float(now)}}, session=session)
                .sort("expires_at", ASCENDING)
                .limit(limit)
            )
            per_user: dict[str, list[dict[str, Any]]] = {}
            expired: list[str] = []
            keys: list[str] = []
            for doc in due:
                message_id = doc["_id"]
                claimed = self._messages.update_one(
                    {"_id": message_id, "expires_at": {"$exists": True}},
                    {"$unset": {"expires_at": ""}},
                    session=session,
                )
                if claimed.modified_count != 1 or doc.get("deleted_at") is not None:
                    continue  # another sweeper expired it, or it was deleted for everyone
                stub, hearers = self._expire(session, doc, now, keys)
                expired.append(message_id)
                for user in hearers:
                    per_user.setdefault(user, []).append(dict(stub))
            # an account deleted since has no inbox to tell: it must not stop the sweep
            found = self._users.find({"_id": {"$in": list(per_user)}}, {"_id": True}, session=session)
            present = {doc["_id"] for doc in found}
            told = {user: stubs for user, stubs in per_user.items() if user in present}
            entries = self._append_many(session, expired_events(told, now=now), now) if told else []
            return Expiry(expired=expired, entries=entries, media_keys=sorted(set(keys)))

        return self._tx(work)

    def _expire(
        self, session: ClientSession, doc: Doc, now: float, keys: list[str]
    ) -> tuple[dict[str, Any], list[str]]:
        """Scrub one message (its media keys added to ``keys``): ``(stub, hearers)``."""
        message_id, sender, recipient = doc["_id"], doc["sender"], doc["recipient"]
        stub = expired_stub(
            message_id=message_id,
            conversation=doc["conversation"],
            seq=int(doc["seq"]),
            sender=sender,
            recipient=recipient,
            ts=float(doc["created_at"]),
        )
        media_keys, hearers = self._scrub(session, doc, stub, by=EXPIRED_BY, now=now)
        keys.extend(media_keys)
        return stub, hearers
