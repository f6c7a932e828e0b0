"""Groups in the MongoDB store: one document per group with its members (in join order) and roles.

Every change is one transaction that rewrites the group document, bumps its ``version`` (see
group_cache) and puts the ``group`` event in every member's inbox; two changes of one group
conflict on its document and the later one is run again on the new state. The rules of each
change are in rules.groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession

from workers.stores.group_cache import MembersCache, Roster
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.mongo.blocks import blocked_pairs
from workers.stores.mongo.chat_rows import note_group_change
from workers.stores.mongo.privacy_data import consent_split, write_invitations
from workers.stores.mongo.profiles import member_profiles
from workers.stores.mongo.schema import ROLE_ADMIN, ROLE_MEMBER
from workers.stores.records import GroupChange, GroupInfo, InboxItem
from workers.stores.rules.group_settings import settings_wire
from workers.stores.rules.groups import (
    check_add,
    check_admin,
    check_create,
    check_member,
    check_promote,
    check_remove,
    check_users_exist,
    group_events,
    heir,
    new_group_id,
)
from workers.stores.rules.messages import unknown_group
from workers.stores.rules.privacy import INVITE_TTL

__all__ = ["MongoGroups"]


def stored_settings(doc: Doc) -> dict[str, Any]:
    """The group's settings as stored (None or False: off)."""
    settings = doc.get("settings") or {}
    return {
        "description": settings.get("description"),
        "icon": settings.get("icon"),
        "only_admins_send": bool(settings.get("only_admins_send")),
        "approval": bool(settings.get("approval")),
    }


def _info(doc: Doc) -> GroupInfo:
    members = doc["members"]
    return GroupInfo(
        id=doc["_id"],
        name=doc["name"],
        members=[m["user"] for m in members],
        admins=[m["user"] for m in members if m["role"] == ROLE_ADMIN],
        settings=settings_wire(**stored_settings(doc)),
    )


_SHOWN = {"name": True, "members": True, "settings": True}
"""The fields of a group document its snapshot is made of."""


def _member(user: str, role: str, now: float) -> Doc:
    return {"user": user, "role": role, "joined_at": float(now)}


class MongoGroups(MongoBase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._members_cache = MembersCache()

    # ------------------------------------------------------------------ reads
    def groups_of(self, user: str) -> list[GroupInfo]:
        with self._guard():
            docs = self._groups.find({"members.user": user}, _SHOWN)
            infos = [_info(doc) for doc in docs.sort("_id", ASCENDING)]
            return [replace(i, profiles=member_profiles(self._profiles, i.members, None)) for i in infos]

    def groups_page(self, *, after: str | None, limit: int) -> list[GroupInfo]:
        query = {} if after is None else {"_id": {"$gt": after}}
        with self._guard():
            docs = self._groups.find(query, _SHOWN)
            return [_info(doc) for doc in docs.sort("_id", ASCENDING).limit(limit)]

    def group_info(self, group: str) -> GroupInfo | None:
        with self._guard():
            doc = self._groups.find_one({"_id": group}, _SHOWN)
        return _info(doc) if doc is not None else None

    def _members(self, session: ClientSession | None, group: str) -> list[str] | None:
        """Members in join order (cached, checked against the group's version), or None."""
        roster = self._roster(session, group)
        return None if roster is None else roster.members

    def _roster(self, session: ClientSession | None, group: str) -> Roster | None:
        """Members in join order and who may send (cached, checked against the group's version),
        or None: the group's settings are read only when the cache misses (after a change)."""
        head = self._groups.find_one({"_id": group}, {"version": True}, session=session)
        if head is None:
            return None
        cached = self._members_cache.get(group, head["version"])
        if cached is not None:
            return cached
        doc = self._groups.find_one(
            {"_id": group},
            {"version": True, "members": True, "settings.only_admins_send": True},
            session=session,
        )
        if doc is None:  # pragma: no cover - a group is never deleted
            return None
        members = doc["members"]
        only_admins = (doc.get("settings") or {}).get("only_admins_send")
        senders = frozenset(m["user"] for m in members if m["role"] == ROLE_ADMIN) if only_admins else None
        roster = Roster([m["user"] for m in members], senders)
        self._members_cache.put(group, int(doc["version"]), roster)
        return roster

    def _load(self, session: ClientSession, group: str) -> Doc:
        doc = self._groups.find_one({"_id": group}, _SHOWN, session=session)
        if doc is None:
            raise unknown_group(group)
        return doc

    # ------------------------------------------------------------------ checks
    @staticmethod
    def _roles(doc: Doc) -> dict[str, bool]:
        """Member -> whether an admin, in join order."""
        return {m["user"]: m["role"] == ROLE_ADMIN for m in doc["members"]}

    def _need_users(self, session: ClientSession, names: Sequence[str]) -> None:
        found = {
            d["_id"] for d in self._users.find({"_id": {"$in": list(names)}}, {"_id": True}, session=session)
        }
        check_users_exist(names, found)

    # ------------------------------------------------------------------ changes
    def create_group(
        self, *, creator: str, name: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange:
        check_create(creator, members, max_members)
        group = new_group_id()

        def work(session: ClientSession) -> GroupChange:
            self._need_users(session, members)
            refused = self._blockers(session, creator, members)  # blocks: see rules.blocks
            allowed = [m for m in members if m not in refused]
            added, invited = consent_split(self._db, creator, allowed, session)  # privacy
            everyone = [creator, *added]
            doc = {
                "_id": group,
                "name": name,
                "created_by": creator,
                "created_at": float(now),
                "version": 1,
                "members": [_member(u, ROLE_ADMIN if u == creator else ROLE_MEMBER, now) for u in everyone],
            }
            self._groups.insert_one(doc, session=session)
            invitations = write_invitations(
                self._db, session, group=group, name=name, by=creator, users=invited, now=now, ttl=INVITE_TTL
            )
            return self._announce(
                session,
                _info(doc),
                "created",
                creator,
                everyone,
                [],
                now,
                ref,
                invited=[*invited, *refused],
                extra=invitations,
            )

        return self._tx(work)

    def add_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange:
        def work(session: ClientSession) -> GroupChange:
            doc = self._load(session, group)
            roles = self._roles(doc)
            check_admin(roles, group, actor)
            check_add(roles, members, max_members)
            self._need_users(session, members)
            refused = self._blockers(session, actor, members)  # blocks: see rules.blocks
            allowed = [m for m in members if m not in refused]
            added, invited = consent_split(self._db, actor, allowed, session)  # privacy
            invitations = write_invitations(
                self._db,
                session,
                group=group,
                name=doc["name"],
                by=actor,
                users=invited,
                now=now,
                ttl=INVITE_TTL,
            )
            if not added:
                info = _info(doc)
            else:
                joined = [*doc["members"], *(_member(m, ROLE_MEMBER, now) for m in added)]
                info = self._change(session, group, {"members": joined})
            return self._announce(
                session,
                info,
                "added",
                actor,
                added,
                [],
                now,
                ref,
                invited=[*invited, *refused],
                extra=invitations,
            )

        return self._tx(work)

    def remove_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str
    ) -> GroupChange:
        def work(session: ClientSession) -> GroupChange:
            doc = self._load(session, group)
            roles = self._roles(doc)
            check_admin(roles, group, actor)
            check_remove(roles, actor, members)
            gone = set(members)
            kept = [m for m in doc["members"] if m["user"] not in gone]
            info = self._change(session, group, {"members": kept})
            return self._announce(session, info, "removed", actor, list(members), list(members), now, ref)

        return self._tx(work)

    def promote(self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str) -> GroupChange:
        def work(session: ClientSession) -> GroupChange:
            doc = self._load(session, group)
            roles = self._roles(doc)
            check_admin(roles, group, actor)
            check_promote(roles, members)
            chosen = set(members)
            updated = [{**m, "role": ROLE_ADMIN} if m["user"] in chosen else m for m in doc["members"]]
            info = self._change(session, group, {"members": updated})
            return self._announce(session, info, "promoted", actor, list(members), [], now, ref)

        return self._tx(work)

    def rename_group(self, *, group: str, actor: str, name: str, now: float, ref: str) -> GroupChange:
        def work(session: ClientSession) -> GroupChange:
            check_admin(self._roles(self._load(session, group)), group, actor)
            info = self._change(session, group, {"name": name})
            return self._announce(session, info, "renamed", actor, [], [], now, ref)

        return self._tx(work)

    def leave_group(self, *, group: str, user: str, now: float, ref: str) -> GroupChange:
        def work(session: ClientSession) -> GroupChange:
            doc = self._load(session, group)
            roles = self._roles(doc)
            check_member(roles, group, user)
            successor = heir(roles, user)  # the longest-standing member, if no admin is left
            kept = [
                {**m, "role": ROLE_ADMIN} if m["user"] == successor else m
                for m in doc["members"]
                if m["user"] != user
            ]
            info = self._change(session, group, {"members": kept})
            return self._announce(session, info, "left", user, [user], [user], now, ref)

        return self._tx(work)

    def _change(self, session: ClientSession, group: str, values: Doc) -> GroupInfo:
        """Set ``values`` on the group and bump its version; the group as it is now."""
        doc = self._groups.find_one_and_update(
            {"_id": group},
            {"$set": values, "$inc": {"version": 1}},
            projection=_SHOWN,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        assert doc is not None  # read in this transaction: a group is never deleted
        self._members_cache.forget(group)
        return _info(doc)

    def _blockers(self, session: ClientSession, actor: str, members: Sequence[str]) -> list[str]:
        """The members who block ``actor``: not added by them (``rules.blocks``), in the order named."""
        blocked = blocked_pairs(self._blocks, [(m, actor) for m in members], session)
        return [m for m in members if (m, actor) in blocked]

    def _announce(
        self,
        session: ClientSession,
        snapshot: GroupInfo,
        action: str,
        by: str,
        affected: list[str],
        gone: list[str],
        now: float,
        ref: str,
        *,
        invited: Sequence[str] = (),
        extra: Sequence[InboxItem] = (),
    ) -> GroupChange:
        """Put the ``group`` event in every member's (and the gone ones') inbox; ``invited``,
        ``extra``: see rules.groups.group_events and privacy_data.write_invitations."""
        snapshot = replace(snapshot, profiles=member_profiles(self._profiles, snapshot.members, session))
        note_group_change(  # the chat list's documents
            self._chat_members, self._conversations, session, snapshot.id, action, affected, now
        )
        events = group_events(
            snapshot, action=action, by=by, affected=affected, gone=gone, ref=ref, now=now, invited=invited
        )
        return GroupChange(group=snapshot, entries=self._append_many(session, [*events, *extra], now))
