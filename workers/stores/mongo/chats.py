"""The chat list and read state in the MongoDB store (rules: ``rules.chats``).

The user's membership documents (index ``user``) and their conversations' ``last_seq`` and
``last_at`` give each chat's activity without reading a message; they are ordered here, and only
the page's chats read more: their last messages (``conversation_seq``), unread counts (a range of
that index, for chats with anything past the read position), the groups' names and the peers'
presence. A former member's chat (or a conversation from before ``last_at``) reads its last
visible message for its time.
"""

from __future__ import annotations

from typing import Any

from pymongo.client_session import ClientSession

from client_sdk.contract import is_group_id
from workers.stores.mongo.base import Doc
from workers.stores.mongo.chat_rows import advance_reads, member_key
from workers.stores.mongo.groups import MongoGroups
from workers.stores.mongo.views import MongoViews
from workers.stores.records import ChatSummary, ReadChange
from workers.stores.rules.chats import (
    ChatCursor,
    not_in_conversation,
    peer_of,
    presence_wire,
    visible_last,
)
from workers.stores.rules.messages import message_targets

__all__ = ["MongoChats"]


class MongoChats(MongoGroups, MongoViews):
    def chat_list(
        self, *, user: str, before: ChatCursor | None, limit: int
    ) -> tuple[list[ChatSummary], bool]:
        with self._guard():
            return self._chat_list(user, before, limit)

    def _chat_list(self, user: str, before: ChatCursor | None, limit: int) -> tuple[list[ChatSummary], bool]:
        members = list(self._chat_members.find({"user": user}))
        if not members:
            return [], False
        heads = {
            doc["_id"]: doc
            for doc in self._conversations.find(
                {"_id": {"$in": [m["conversation"] for m in members]}}, {"last_seq": True, "last_at": True}
            )
        }
        # each chat: (activity, conversation, last visible seq, membership)
        chats: list[tuple[float, str, int, Doc]] = []
        unknown: list[tuple[str, int]] = []  # chats whose last visible message's time is not at hand
        for member in members:
            conversation = member["conversation"]
            head = heads.get(conversation, {})
            last = visible_last(
                int(head.get("last_seq", 0)), int(member["from_seq"]), member.get("until_seq")
            )
            if last and (last != head.get("last_seq") or "last_at" not in head):
                unknown.append((conversation, last))
            at = float(head["last_at"]) if last and "last_at" in head else float(member["joined_at"])
            chats.append((at, conversation, last, member))
        times = {(d["conversation"], d["seq"]): float(d["created_at"]) for d in self._at(unknown)}
        chats = [
            (times.get((conversation, last), at) if last else at, conversation, last, member)
            for at, conversation, last, member in chats
        ]
        chats.sort(key=lambda chat: (chat[0], chat[1]), reverse=True)
        if before is not None:
            chats = [chat for chat in chats if (chat[0], chat[1]) < before]
        more = len(chats) > limit
        return self._summaries(user, chats[:limit]), more

    def _at(self, pairs: list[tuple[str, int]], projection: Doc | None = None) -> list[Doc]:
        """The messages at these ``(conversation, seq)``."""
        if not pairs:
            return []
        wanted = projection or {"conversation": True, "seq": True, "created_at": True}
        return list(self._messages.find({"$or": [{"conversation": c, "seq": s} for c, s in pairs]}, wanted))

    def _summaries(self, user: str, chats: list[tuple[float, str, int, Doc]]) -> list[ChatSummary]:
        lasts = {
            (d["conversation"], d["seq"]): d
            for d in self._at(
                [(conversation, last) for _, conversation, last, _ in chats if last],
                {"conversation": True, "seq": True},
            )
        }
        views = self._message_views(None, [d["_id"] for d in lasts.values()], user)
        group_ids = [conversation for _, conversation, _, _ in chats if is_group_id(conversation)]
        names = {d["_id"]: d["name"] for d in self._groups.find({"_id": {"$in": group_ids}}, {"name": True})}
        peers = [p for _, conversation, _, _ in chats if (p := peer_of(conversation, user)) is not None]
        presence = self._presence(peers)
        page = []
        for at, conversation, last, member in chats:
            read_seq, floor = int(member["read_seq"]), int(member["from_seq"])
            unread = 0
            if last > max(read_seq, floor):
                unread = self._messages.count_documents(
                    {
                        "conversation": conversation,
                        "seq": {"$gt": max(read_seq, floor), "$lte": last},
                        "sender": {"$ne": user},
                    }
                )
            doc = lasts.get((conversation, last))
            peer = peer_of(conversation, user)
            page.append(
                ChatSummary(
                    conversation=conversation,
                    ts=at,
                    last_seq=last,
                    read_seq=read_seq,
                    unread=unread,
                    last_message=None if doc is None else views.get(doc["_id"]),
                    group_name=names.get(conversation, "") if peer is None else None,
                    member=member.get("until_seq") is None,
                    presence=presence.get(peer) if peer is not None else None,
                )
            )
        return page

    def _presence(self, peers: list[str]) -> dict[str, dict[str, Any]]:
        if not peers:
            return {}
        online = set(self._devices.distinct("user", {"user": {"$in": peers}, "node": {"$ne": None}}))
        return {
            d["_id"]: dict(presence_wire(d["_id"] in online, d.get("last_seen")))
            for d in self._users.find({"_id": {"$in": peers}}, {"last_seen": True})
        }

    def mark_read(self, *, user: str, conversation: str, seq: int, now: float, ref: str) -> ReadChange:
        def work(session: ClientSession) -> ReadChange:
            member = self._chat_members.find_one({"_id": member_key(user, conversation)}, session=session)
            if member is None:
                raise not_in_conversation(conversation)
            head = self._conversations.find_one({"_id": conversation}, {"last_seq": True}, session=session)
            last_seq = 0 if head is None else int(head["last_seq"])
            read_seq, from_seq = int(member["read_seq"]), int(member["from_seq"])
            seen = visible_last(last_seq, from_seq, member.get("until_seq")) or from_seq
            target = min(seq, max(seen, read_seq))  # never past what the user can have seen
            items = advance_reads(self._chat_members, session, {(user, conversation): target}, now, ref)
            if not items:
                return ReadChange(changed=False)
            return ReadChange(changed=True, entries=self._append_many(session, items, now))

        return self._tx(work)

    def typing_audience(self, *, user: str, group: str) -> list[str]:
        with self._guard():
            return message_targets(group, user, self._members(None, group))
