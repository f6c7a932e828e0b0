"""Group settings, invite links and join requests in the MongoDB store: fields of the group
document (``settings``, ``invite``, ``requests``, see schema); the rules are in rules.group_settings.

A change of the settings or the members goes through ``_change`` (groups), which bumps the group's
version: the members' cache, which also holds who may send, is then read again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.client_session import ClientSession

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.mongo.base import Doc
from workers.stores.mongo.groups import MongoGroups, _info, _member, stored_settings
from workers.stores.mongo.schema import ROLE_MEMBER
from workers.stores.records import GroupUpdate, JoinRequest
from workers.stores.rules.group_settings import (
    changed_settings,
    invite_matches,
    no_such_invite,
    request_events,
)
from workers.stores.rules.groups import check_add, check_admin
from workers.stores.rules.messages import unknown_group

__all__ = ["MongoGroupSettings"]


def _pending(doc: Doc, user: str) -> bool:
    return any(r["user"] == user for r in doc.get("requests") or [])


class MongoGroupSettings(MongoGroups):
    # ------------------------------------------------------------------ settings
    def set_group_settings(
        self, *, group: str, actor: str, changes: Mapping[str, Any], now: float, ref: str
    ) -> GroupUpdate:
        def work(session: ClientSession) -> GroupUpdate:
            doc = self._load(session, group)
            check_admin(self._roles(doc), group, actor)
            current = stored_settings(doc)
            diff = changed_settings(current, changes)
            if not diff:
                return GroupUpdate([], changed=False)
            info = self._change(session, group, {"settings": {**current, **diff}})
            old_icon = current["icon"]
            replaced = [old_icon["key"]] if "icon" in diff and old_icon is not None else []
            change = self._announce(session, info, "settings", actor, [], [], now, ref)
            return GroupUpdate(change.entries, changed=True, replaced=replaced)

        return self._tx(work)

    def check_group_admin(self, user: str, group: str) -> None:
        with self._guard():
            doc = self._groups.find_one({"_id": group}, {"members": True})
        if doc is None:
            raise unknown_group(group)
        check_admin(self._roles(doc), group, user)

    def can_read_group_icon(self, user: str, key: str) -> bool:
        with self._guard():
            found = self._groups.find_one({"settings.icon.key": key, "members.user": user}, {"_id": True})
        return found is not None

    # ------------------------------------------------------------------ invite links
    def set_invite(
        self, *, group: str, actor: str, code_hash: str | None, expires_at: float | None, now: float
    ) -> None:
        def work(session: ClientSession) -> None:
            check_admin(self._roles(self._load(session, group)), group, actor)
            if code_hash is None:
                update: Doc = {"$unset": {"invite": ""}}
            else:
                invite = {"hash": code_hash, "expires_at": expires_at, "by": actor, "at": float(now)}
                update = {"$set": {"invite": invite}}
            self._groups.update_one({"_id": group}, update, session=session)

        self._tx(work)

    def join_by_invite(
        self, *, user: str, code_hash: str, now: float, ref: str, max_members: int
    ) -> GroupUpdate:
        def work(session: ClientSession) -> GroupUpdate:
            # one query whatever makes the code useless (unknown, revoked: no document; expired)
            live = {"$or": [{"invite.expires_at": None}, {"invite.expires_at": {"$gt": now}}]}
            doc = self._groups.find_one(
                {"invite.hash": code_hash, **live},
                {"name": True, "members": True, "settings": True, "invite": True, "requests": True},
                session=session,
            )
            if doc is None or not invite_matches(doc["invite"]["hash"], code_hash):
                raise no_such_invite()
            group = doc["_id"]
            roles = self._roles(doc)
            if user in roles:
                return GroupUpdate([], changed=False, state="member")
            check_add(roles, [user], max_members)
            if not stored_settings(doc)["approval"]:
                info = self._change(
                    session, group, {"members": [*doc["members"], _member(user, ROLE_MEMBER, now)]}
                )
                change = self._announce(session, info, "joined", user, [user], [], now, ref)
                return GroupUpdate(change.entries, changed=True, state="joined")
            if _pending(doc, user):
                return GroupUpdate([], changed=False, state="pending")
            self._groups.update_one(
                {"_id": group}, {"$push": {"requests": {"user": user, "at": float(now)}}}, session=session
            )
            events = request_events(_info(doc), user=user, state="pending", by=None, ref=ref, now=now)
            return GroupUpdate(self._append_many(session, events, now), changed=True, state="pending")

        return self._tx(work)

    # ------------------------------------------------------------------ join requests
    def join_requests(self, *, group: str, actor: str) -> list[JoinRequest]:
        with self._guard():
            doc = self._groups.find_one({"_id": group}, {"members": True, "requests": True})
        if doc is None:
            raise unknown_group(group)
        check_admin(self._roles(doc), group, actor)
        found = [JoinRequest(r["user"], float(r["at"])) for r in doc.get("requests") or []]
        return sorted(found, key=lambda r: (r.ts, r.user))

    def decide_request(
        self, *, group: str, actor: str, user: str, approve: bool, now: float, ref: str, max_members: int
    ) -> GroupUpdate:
        def work(session: ClientSession) -> GroupUpdate:
            doc = self._groups.find_one(
                {"_id": group},
                {"name": True, "members": True, "settings": True, "requests": True},
                session=session,
            )
            if doc is None:
                raise unknown_group(group)
            roles = self._roles(doc)
            check_admin(roles, group, actor)
            asked = _pending(doc, user)
            if asked:
                self._groups.update_one(
                    {"_id": group}, {"$pull": {"requests": {"user": user}}}, session=session
                )
            if user in roles:  # approved already (a resend), or added meanwhile
                return GroupUpdate([], changed=False, state="member")
            if not asked:
                if approve:
                    raise CommandError(ErrorCode.NOT_FOUND, f"{user} has not asked to join {group}")
                return GroupUpdate([], changed=False, state="rejected")
            if approve:
                check_add(roles, [user], max_members)
                info = self._change(
                    session, group, {"members": [*doc["members"], _member(user, ROLE_MEMBER, now)]}
                )
                change = self._announce(session, info, "approved", actor, [user], [], now, ref)
                return GroupUpdate(change.entries, changed=True, state="joined")
            events = request_events(_info(doc), user=user, state="rejected", by=actor, ref=ref, now=now)
            return GroupUpdate(self._append_many(session, events, now), changed=True, state="rejected")

        return self._tx(work)
