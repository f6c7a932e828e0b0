"""The documents behind the chat list in the MongoDB store, written where conversations and groups
change (see chats): a membership document at a 1-on-1 conversation's first message and at group
joins and leaves, the conversation's ``last_at`` in the update that bumps its seq anyway, and read
positions moved by read receipts and ``mark_read``; nothing more per message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pymongo import ReturnDocument, UpdateOne
from pymongo.client_session import ClientSession
from pymongo.collection import Collection

from workers.stores.mongo.base import Doc
from workers.stores.records import InboxItem
from workers.stores.rules.chats import read_items

__all__ = ["advance_reads", "bump_conversation", "member_key", "note_direct", "note_group_change"]


def member_key(user: str, conversation: str) -> str:
    return f"{user}|{conversation}"


def bump_conversation(
    conversations: Collection[Doc], conversation: str, session: ClientSession, now: float
) -> tuple[int, float | None]:
    """The conversation's next seq and its disappearing-message timer (None: off), its
    ``last_at`` set to ``now``, in one round trip."""
    doc = conversations.find_one_and_update(
        {"_id": conversation},
        {"$inc": {"last_seq": 1}, "$set": {"last_at": float(now)}},
        projection={"last_seq": True, "timer": True},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=session,
    )
    assert doc is not None  # upserted
    timer = doc.get("timer")
    return int(doc["last_seq"]), (float(timer) if timer else None)


def _member(user: str, conversation: str, at: int, now: float) -> Doc:
    return {
        "_id": member_key(user, conversation),
        "user": user,
        "conversation": conversation,
        "read_seq": at,
        "from_seq": at,
        "until_seq": None,
        "joined_at": float(now),
    }


def note_direct(
    members: Collection[Doc], conversation: str, users: Iterable[str], session: ClientSession, now: float
) -> None:
    """A 1-on-1 conversation's first message: both users' documents."""
    members.insert_many(
        [_member(user, conversation, 0, now) for user in dict.fromkeys(users)], session=session
    )


def note_group_change(
    members: Collection[Doc],
    conversations: Collection[Doc],
    session: ClientSession,
    group: str,
    action: str,
    affected: Sequence[str],
    now: float,
) -> None:
    """Members joined: they see the group's messages from now on (back after leaving: the time
    away stays unseen); members went: they keep what they saw, up to now."""
    if action not in ("created", "added", "removed", "left") or not affected:
        return
    doc = conversations.find_one({"_id": group}, {"last_seq": True}, session=session)
    at = 0 if doc is None else int(doc["last_seq"])
    keys = [member_key(user, group) for user in dict.fromkeys(affected)]
    if action in ("removed", "left"):
        members.update_many({"_id": {"$in": keys}}, {"$set": {"until_seq": at}}, session=session)
        return
    members.bulk_write(
        [
            UpdateOne(
                {"_id": key},
                {
                    "$set": {"from_seq": at, "until_seq": None, "joined_at": float(now)},
                    "$max": {"read_seq": at},
                    "$setOnInsert": {"user": user, "conversation": group},
                },
                upsert=True,
            )
            for key, user in zip(keys, dict.fromkeys(affected), strict=True)
        ],
        session=session,
    )


def advance_reads(
    members: Collection[Doc],
    session: ClientSession,
    wanted: Mapping[tuple[str, str], int],
    now: float,
    ref: str | None = None,
) -> list[InboxItem]:
    """Move each ``(user, conversation)`` read position forward to its seq where it is behind (one
    read and one bulk write for all), and the ``read`` events of those that moved."""
    if not wanted:
        return []
    keys = {member_key(user, conversation): (user, conversation) for user, conversation in wanted}
    current = {
        keys[doc["_id"]]: int(doc["read_seq"])
        for doc in members.find({"_id": {"$in": list(keys)}}, {"read_seq": True}, session=session)
    }
    moving = [(key, seq) for key, seq in wanted.items() if key in current and current[key] < seq]
    if not moving:
        return []
    members.bulk_write(
        [
            UpdateOne({"_id": member_key(*key), "read_seq": {"$lt": seq}}, {"$set": {"read_seq": seq}})
            for key, seq in moving
        ],
        session=session,
    )
    items: list[InboxItem] = []
    for (user, conversation), seq in moving:
        items += read_items(user, [(conversation, seq)], now, ref)
    return items
