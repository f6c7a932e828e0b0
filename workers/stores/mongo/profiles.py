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
from workers.stores.mongo.privacy_data import contact_checks, settings_of
from workers.stores.records import Profile, ProfileChange
from workers.stores.rules.privacy import DEFAULT, PrivacySettings, may_see, shown_to, visible_profile
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
    found = [
        _profile(doc) for doc in collection.find({"_id": {"$in": list(members)}}, _FIELDS, session=session)
    ]
    hidden = settings_of(collection.database, [p.user for p in found], session)  # privacy: mates are contacts
    return {p.user: _for_contacts(p, hidden).card() for p in found}


def _for_contacts(profile: Profile, settings: Mapping[str, PrivacySettings]) -> Profile:
    """The profile as its owner's contacts see it (rules.privacy)."""
    found = settings.get(profile.user)
    if found is None:
        return profile
    return visible_profile(profile, found, "", is_contact=lambda: True)


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
            shown = _for_contacts(new, settings_of(self._db, [user], session)).wire()  # privacy
            events = [e if e[0] == user else (e[0], e[1], e[2], {**e[3], "profile": shown}) for e in events]
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
            hidden = settings_of(self._db, list(found), None)
            chatted, mates = contact_checks(self._db, None)
            return [
                shown_to(
                    watcher,
                    found.get(user, Profile(user)),
                    hidden,
                    chatted=chatted,
                    share_a_group=mates,
                )
                for user in wanted
                if user in known and self._may_see(watcher, user, everyone=everyone)
            ]

    def can_read_avatar(self, user: str, key: str, *, everyone: bool) -> bool:
        with self._guard():
            doc = self._profiles.find_one({"avatar_key": key}, {"_id": True})
            if doc is None or not self._may_see(user, doc["_id"], everyone=everyone):
                return False
            owner = doc["_id"]
            photo = settings_of(self._db, [owner], None).get(owner, DEFAULT).photo  # privacy
            chatted, mates = contact_checks(self._db, None)
            return may_see(user, owner, photo, chatted=chatted, share_a_group=mates)

    def _may_see(self, watcher: str, user: str, *, everyone: bool) -> bool:
        chatted, share_a_group = contact_checks(self._db, None)
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
