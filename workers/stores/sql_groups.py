"""Groups in the SQL store: groups and members (many-to-many with roles), and a membership cache.

Every change bumps the group's ``version`` in the same transaction. The cache keeps members by
group with the version they were read at; a reader checks the version (a primary-key lookup) and
reloads on a mismatch, so a change made by any process invalidates every process's cache.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.base import GroupChange, GroupInfo
from workers.stores.group_rules import (
    check_add,
    check_admin,
    check_create,
    check_member,
    check_promote,
    check_remove,
    check_users_exist,
    group_event_bodies,
)
from workers.stores.sql_base import SqlBase
from workers.stores.sql_driver import Statement
from workers.stores.sql_schema import ROLE_ADMIN, ROLE_MEMBER, group_members, groups, users

__all__ = ["SqlGroups"]

_CACHE_SIZE = 10_000

# read for every group message (see sql_base)
_VERSION = Statement(select(groups.c.version).where(groups.c.id == bindparam("b_group")))
_MEMBERS = Statement(
    select(group_members.c.user_id)
    .where(group_members.c.group_id == bindparam("b_group"))
    .order_by(group_members.c.join_order)
)


class SqlGroups(SqlBase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._members_cache: OrderedDict[str, tuple[int, list[str]]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # ------------------------------------------------------------------ reads
    def groups_of(self, user: str) -> list[GroupInfo]:
        with self._tx() as conn:
            ids = conn.execute(
                select(group_members.c.group_id)
                .where(group_members.c.user_id == user)
                .order_by(group_members.c.group_id)
            ).scalars()
            return [info for gid in list(ids) if (info := self._snapshot(conn, gid)) is not None]

    def _snapshot(self, conn: Connection, group: str) -> GroupInfo | None:
        name = conn.execute(select(groups.c.name).where(groups.c.id == group)).scalar()
        if name is None:
            return None
        rows = conn.execute(
            select(group_members.c.user_id, group_members.c.role)
            .where(group_members.c.group_id == group)
            .order_by(group_members.c.join_order)
        ).all()
        return GroupInfo(
            id=group,
            name=name,
            members=[r[0] for r in rows],
            admins=[r[0] for r in rows if r[1] == ROLE_ADMIN],
        )

    def _members(self, conn: Connection, group: str) -> list[str] | None:
        """Members in join order (cached, checked against the group's version), or None."""
        version = _VERSION.scalar(conn, {"b_group": group})
        if version is None:
            return None
        with self._cache_lock:
            cached = self._members_cache.get(group)
            if cached is not None and cached[0] == version:
                self._members_cache.move_to_end(group)
                return cached[1]
        members = _MEMBERS.scalars(conn, {"b_group": group})
        with self._cache_lock:
            self._members_cache[group] = (int(version), members)
            while len(self._members_cache) > _CACHE_SIZE:
                self._members_cache.popitem(last=False)
        return members

    def _forget(self, group: str) -> None:
        with self._cache_lock:
            self._members_cache.pop(group, None)

    def _rolled_back(self) -> None:
        # the cache may hold members read inside the batch, at a version that was never committed
        with self._cache_lock:
            self._members_cache.clear()
        super()._rolled_back()

    def _roles(self, conn: Connection, group: str) -> dict[str, bool]:
        """Member -> whether an admin."""
        if conn.execute(select(groups.c.id).where(groups.c.id == group)).first() is None:
            raise CommandError(ErrorCode.UNKNOWN_GROUP, f"no group {group!r}")
        rows = conn.execute(
            select(group_members.c.user_id, group_members.c.role).where(group_members.c.group_id == group)
        ).all()
        return {r[0]: int(r[1]) == ROLE_ADMIN for r in rows}

    # ------------------------------------------------------------------ checks
    def _need_users(self, conn: Connection, names: Sequence[str]) -> None:
        found = set(conn.execute(select(users.c.id).where(users.c.id.in_(list(names)))).scalars())
        check_users_exist(names, found)

    # ------------------------------------------------------------------ changes
    def create_group(
        self, *, creator: str, name: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange:
        check_create(creator, members, max_members)
        group = "g:" + uuid.uuid4().hex[:20]
        with self._tx() as conn:
            self._need_users(conn, members)
            conn.execute(
                insert(groups).values(id=group, name=name, created_by=creator, created_at=now, version=1)
            )
            everyone = [creator, *members]
            conn.execute(
                insert(group_members),
                [
                    {
                        "group_id": group,
                        "user_id": user,
                        "role": ROLE_ADMIN if user == creator else ROLE_MEMBER,
                        "joined_at": now,
                        "join_order": order,
                    }
                    for order, user in enumerate(everyone, start=1)
                ],
            )
            return self._announce(conn, group, "created", creator, everyone, [], now, ref)

    def add_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange:
        with self._tx() as conn:
            roles = self._roles(conn, group)
            check_admin(roles, group, actor)
            check_add(roles, members, max_members)
            self._need_users(conn, members)
            last = conn.execute(
                select(func.coalesce(func.max(group_members.c.join_order), 0)).where(
                    group_members.c.group_id == group
                )
            ).scalar_one()
            conn.execute(
                insert(group_members),
                [
                    {
                        "group_id": group,
                        "user_id": m,
                        "role": ROLE_MEMBER,
                        "joined_at": now,
                        "join_order": last + i,
                    }
                    for i, m in enumerate(members, start=1)
                ],
            )
            return self._announce(conn, group, "added", actor, list(members), [], now, ref)

    def remove_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str
    ) -> GroupChange:
        with self._tx() as conn:
            roles = self._roles(conn, group)
            check_admin(roles, group, actor)
            check_remove(roles, actor, members)
            conn.execute(
                delete(group_members).where(
                    group_members.c.group_id == group, group_members.c.user_id.in_(list(members))
                )
            )
            return self._announce(conn, group, "removed", actor, list(members), list(members), now, ref)

    def promote(self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str) -> GroupChange:
        with self._tx() as conn:
            roles = self._roles(conn, group)
            check_admin(roles, group, actor)
            check_promote(roles, members)
            conn.execute(
                update(group_members)
                .where(group_members.c.group_id == group, group_members.c.user_id.in_(list(members)))
                .values(role=ROLE_ADMIN)
            )
            return self._announce(conn, group, "promoted", actor, list(members), [], now, ref)

    def rename_group(self, *, group: str, actor: str, name: str, now: float, ref: str) -> GroupChange:
        with self._tx() as conn:
            check_admin(self._roles(conn, group), group, actor)
            conn.execute(update(groups).where(groups.c.id == group).values(name=name))
            return self._announce(conn, group, "renamed", actor, [], [], now, ref)

    def leave_group(self, *, group: str, user: str, now: float, ref: str) -> GroupChange:
        with self._tx() as conn:
            roles = self._roles(conn, group)
            check_member(roles, group, user)
            conn.execute(
                delete(group_members).where(
                    group_members.c.group_id == group, group_members.c.user_id == user
                )
            )
            remaining_admins = [u for u, admin in roles.items() if admin and u != user]
            if not remaining_admins and len(roles) > 1:
                # the longest-standing member takes over
                successor = conn.execute(
                    select(group_members.c.user_id)
                    .where(group_members.c.group_id == group)
                    .order_by(group_members.c.join_order)
                    .limit(1)
                ).scalar_one()
                conn.execute(
                    update(group_members)
                    .where(group_members.c.group_id == group, group_members.c.user_id == successor)
                    .values(role=ROLE_ADMIN)
                )
            return self._announce(conn, group, "left", user, [user], [user], now, ref)

    def _announce(
        self,
        conn: Connection,
        group: str,
        action: str,
        by: str,
        affected: list[str],
        gone: list[str],
        now: float,
        ref: str,
    ) -> GroupChange:
        """Bump the version and put the ``group`` event in every member's (and the gone ones') inbox."""
        conn.execute(update(groups).where(groups.c.id == group).values(version=groups.c.version + 1))
        self._forget(group)
        snapshot = self._snapshot(conn, group)
        assert snapshot is not None
        bodies = group_event_bodies(
            snapshot, action=action, by=by, affected=affected, gone=gone, ref=ref, now=now
        )
        entries = self._append_many(conn, [(user, "group", None, body) for user, body in bodies], now)
        return GroupChange(group=snapshot, entries=entries)
