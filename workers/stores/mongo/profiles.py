"""Profiles in the MongoDB store: one ``profiles`` document per user who set one (see rules.profiles).

A change finds the user's contacts (the other side of each 1-on-1 conversation, by the prefix of
``_id`` and a pattern on the rest, and group mates through the ``member`` index) and writes the
``profile`` event to each inbox in its transaction. Profile changes are rare, so the
conversations are matched by pattern rather than kept in a collection of their own on the
message path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.client_session import ClientSession
from pymongo.collection import Collection

from workers.errors import UnknownUser
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.mongo.blocks import blocked_by, blocked_pairs
from workers.stores.records import Profile, ProfileChange
from workers.stores.rules.profiles import dm_partner, may_see_profile, profile_events

__all__ = ["MongoProfiles", "member_profiles"]

_FIELDS = {"name": True, "about": True, "avatar": True, "updated_at": True}


def _profile(doc: Doc) -> Profile:
    return Profile(doc["_id"], doc.get("name"), doc.get("about"), doc.get("avatar"), float(doc["updated_at"]))


def member_profiles(
    collection: Collection[Doc], members: Sequence[str], session: ClientSession | None
) -> dict[str, dict[str, Any]]:
    """The profile card of each of ``members`` who set one (for group snapshots)."""
    if not members:
        return {}
    docs = collection.find({"_id": {"$in": list(members)}}, _FIELDS, session=session)
    return {doc["_id"]: _profile(doc).card() for doc in docs}


class MongoProfiles(MongoBase):
    def update_profile(
        self, *, user: str, changes: Mapping[str, Any], now: float, ref: str | None
    ) -> ProfileChange:
        def work(session: ClientSession) -> tuple[Profile, Profile, list[Any]]:
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            before = self._profiles.find_one({"_id": user}, _FIELDS, session=session)
            old = Profile(user) if before is None else _profile(before)
            values: Doc = {"updated_at": float(now)}
            for field in ("name", "about", "avatar"):
                if field in changes:
                    values[field] = changes[field]
            if "avatar" in changes:
                values["avatar_key"] = None if changes["avatar"] is None else changes["avatar"]["key"]
            self._profiles.update_one({"_id": user}, {"$set": values}, upsert=True, session=session)
            after = self._profiles.find_one({"_id": user}, _FIELDS, session=session)
            assert after is not None
            new = _profile(after)
            events = profile_events(new, self._contacts(session, user), ref=ref, now=now)
            return old, new, self._append_many(session, events, now)

        old, new, entries = self._tx(work)
        replaced = []
        if "avatar" in changes and old.avatar is not None and old.avatar != new.avatar:
            replaced.append(old.avatar["key"])
        return ProfileChange(profile=new, entries=entries, replaced=replaced)

    def profiles_for(self, *, watcher: str, users: Sequence[str], everyone: bool) -> list[Profile]:
        wanted = list(dict.fromkeys(users))
        with self._guard():
            known = {d["_id"] for d in self._users.find({"_id": {"$in": wanted}}, {"_id": True})}
            found = {d["_id"]: _profile(d) for d in self._profiles.find({"_id": {"$in": wanted}}, _FIELDS)}
            return [
                found.get(user, Profile(user))
                for user in wanted
                if user in known and self._may_see(watcher, user, everyone=everyone)
            ]

    def can_read_avatar(self, user: str, key: str, *, everyone: bool) -> bool:
        with self._guard():
            doc = self._profiles.find_one({"avatar_key": key}, {"_id": True})
            return doc is not None and self._may_see(user, doc["_id"], everyone=everyone)

    def _may_see(self, watcher: str, user: str, *, everyone: bool) -> bool:
        def chatted(conversation: str) -> bool:
            return self._conversations.find_one({"_id": conversation}, {"_id": True}) is not None

        def share_a_group(a: str, b: str) -> bool:
            both = {"$and": [{"members.user": a}, {"members.user": b}]}
            return self._groups.find_one(both, {"_id": True}) is not None

        if watcher != user and blocked_pairs(self._blocks, [(user, watcher)]):
            return False  # whom a user blocks sees their profile as a stranger's (rules.blocks)
        return may_see_profile(watcher, user, everyone=everyone, chatted=chatted, share_a_group=share_a_group)

    def _contacts(self, session: ClientSession, user: str) -> set[str]:
        """The other side of each of ``user``'s 1-on-1 conversations, and their group mates."""
        mine = re.escape(user)
        pattern = {"$or": [{"_id": {"$regex": f"^dm:{mine}:"}}, {"_id": {"$regex": f"^dm:[^:]*:{mine}$"}}]}
        ids = (d["_id"] for d in self._conversations.find(pattern, {"_id": True}, session=session))
        contacts = {p for cid in ids if (p := dm_partner(cid, user)) is not None}
        groups = self._groups.find({"members.user": user}, {"members.user": True}, session=session)
        contacts.update(m["user"] for doc in groups for m in doc["members"])
        contacts.discard(user)
        return contacts - blocked_by(self._blocks, user, session)  # whom the user blocks hears of no change
