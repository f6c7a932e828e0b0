"""Group settings, invite links and join requests in the SQL store (tables ``group_settings``,
``group_invites``, ``group_requests``); the rules are in rules.group_settings.

Every change of the settings or the members goes through ``_announce`` (groups), which bumps the
group's version: the members' cache, which also holds who may send, is then read again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, or_, select, update

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import GroupUpdate, JoinRequest
from workers.stores.rules.group_settings import (
    changed_settings,
    invite_matches,
    no_such_invite,
    request_events,
)
from workers.stores.rules.groups import check_add, check_admin
from workers.stores.sql.groups import SqlGroups, stored_settings
from workers.stores.sql.schema import group_invites, group_members, group_requests, group_settings

__all__ = ["SqlGroupSettings"]


def _settings_row(settings: Mapping[str, Any]) -> dict[str, Any]:
    icon = settings["icon"]
    return {
        "description": settings["description"],
        "icon": None if icon is None else json.dumps(icon),
        "icon_key": None if icon is None else icon["key"],
        "only_admins_send": bool(settings["only_admins_send"]),
        "approval": bool(settings["approval"]),
    }


class SqlGroupSettings(SqlGroups):
    # ------------------------------------------------------------------ settings
    def set_group_settings(
        self, *, group: str, actor: str, changes: Mapping[str, Any], now: float, ref: str
    ) -> GroupUpdate:
        with self._tx() as conn:
            check_admin(self._roles(conn, group), group, actor)
            current = stored_settings(conn, group)
            diff = changed_settings(current, changes)
            if not diff:
                return GroupUpdate([], changed=False)
            row = _settings_row({**current, **diff})
            stored = conn.execute(
                update(group_settings).where(group_settings.c.group_id == group).values(row)
            )
            if stored.rowcount == 0:
                conn.execute(insert(group_settings).values(group_id=group, **row))
            old_icon = current["icon"]
            replaced = [old_icon["key"]] if "icon" in diff and old_icon is not None else []
            change = self._announce(conn, group, "settings", actor, [], [], now, ref)
            return GroupUpdate(change.entries, changed=True, replaced=replaced)

    def check_group_admin(self, user: str, group: str) -> None:
        with self._tx() as conn:
            check_admin(self._roles(conn, group), group, user)

    def can_read_group_icon(self, user: str, key: str) -> bool:
        with self._tx() as conn:
            found = (
                select(group_members.c.user_id)
                .join(group_settings, group_settings.c.group_id == group_members.c.group_id)
                .where(group_settings.c.icon_key == key, group_members.c.user_id == user)
            )
            return conn.execute(found).first() is not None

    # ------------------------------------------------------------------ invite links
    def set_invite(
        self, *, group: str, actor: str, code_hash: str | None, expires_at: float | None, now: float
    ) -> None:
        with self._tx() as conn:
            check_admin(self._roles(conn, group), group, actor)
            conn.execute(delete(group_invites).where(group_invites.c.group_id == group))
            if code_hash is not None:
                conn.execute(
                    insert(group_invites).values(
                        group_id=group,
                        code_hash=code_hash,
                        expires_at=expires_at,
                        created_by=actor,
                        created_at=now,
                    )
                )

    def join_by_invite(
        self, *, user: str, code_hash: str, now: float, ref: str, max_members: int
    ) -> GroupUpdate:
        with self._tx() as conn:
            # one query whatever makes the code useless (unknown, revoked: no row; expired)
            row = conn.execute(
                select(group_invites.c.group_id, group_invites.c.code_hash).where(
                    group_invites.c.code_hash == code_hash,
                    or_(group_invites.c.expires_at.is_(None), group_invites.c.expires_at > now),
                )
            ).first()
            if row is None or not invite_matches(row[1], code_hash):
                raise no_such_invite()
            group = row[0]
            roles = self._roles(conn, group)
            if user in roles:
                return GroupUpdate([], changed=False, state="member")
            check_add(roles, [user], max_members)
            if not stored_settings(conn, group)["approval"]:
                self._insert_members(conn, group, [user], now)
                change = self._announce(conn, group, "joined", user, [user], [], now, ref)
                return GroupUpdate(change.entries, changed=True, state="joined")
            asked = select(group_requests.c.user_id).where(
                group_requests.c.group_id == group, group_requests.c.user_id == user
            )
            if conn.execute(asked).first() is not None:
                return GroupUpdate([], changed=False, state="pending")
            conn.execute(insert(group_requests).values(group_id=group, user_id=user, requested_at=now))
            snapshot = self._snapshot(conn, group)
            assert snapshot is not None
            events = request_events(snapshot, user=user, state="pending", by=None, ref=ref, now=now)
            return GroupUpdate(self._append_many(conn, events, now), changed=True, state="pending")

    # ------------------------------------------------------------------ join requests
    def join_requests(self, *, group: str, actor: str) -> list[JoinRequest]:
        with self._tx() as conn:
            check_admin(self._roles(conn, group), group, actor)
            rows = conn.execute(
                select(group_requests.c.user_id, group_requests.c.requested_at)
                .where(group_requests.c.group_id == group)
                .order_by(group_requests.c.requested_at, group_requests.c.user_id)
            ).all()
        return [JoinRequest(user, float(ts)) for user, ts in rows]

    def decide_request(
        self, *, group: str, actor: str, user: str, approve: bool, now: float, ref: str, max_members: int
    ) -> GroupUpdate:
        with self._tx() as conn:
            roles = self._roles(conn, group)
            check_admin(roles, group, actor)
            asked = conn.execute(
                delete(group_requests).where(
                    group_requests.c.group_id == group, group_requests.c.user_id == user
                )
            ).rowcount
            if user in roles:  # approved already (a resend), or added meanwhile
                return GroupUpdate([], changed=False, state="member")
            if not asked:
                if approve:
                    raise CommandError(ErrorCode.NOT_FOUND, f"{user} has not asked to join {group}")
                return GroupUpdate([], changed=False, state="rejected")
            if approve:
                check_add(roles, [user], max_members)
                self._insert_members(conn, group, [user], now)
                change = self._announce(conn, group, "approved", actor, [user], [], now, ref)
                return GroupUpdate(change.entries, changed=True, state="joined")
            snapshot = self._snapshot(conn, group)
            assert snapshot is not None
            events = request_events(snapshot, user=user, state="rejected", by=actor, ref=ref, now=now)
            return GroupUpdate(self._append_many(conn, events, now), changed=True, state="rejected")
