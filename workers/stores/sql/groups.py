"""Groups in the SQL store: groups and members (many-to-many with roles), and a membership cache.

Every change bumps the group's ``version`` in the same transaction (see group_cache); the rules of
each change are in rules.groups.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from workers.stores.group_cache import MembersCache, Roster
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
from workers.stores.sql.base import SqlBase
from workers.stores.sql.blocks import blocked_pairs
from workers.stores.sql.chat_rows import note_group_change
from workers.stores.sql.driver import Statement
from workers.stores.sql.privacy_data import consent_split, write_invitations
from workers.stores.sql.profiles import member_profiles
from workers.stores.sql.schema import ROLE_ADMIN, ROLE_MEMBER, group_members, group_settings, groups, users

__all__ = ["SqlGroups"]

# read for every group message (see base)
_VERSION = Statement(select(groups.c.version).where(groups.c.id == bindparam("b_group")))
_MEMBERS = Statement(
    select(group_members.c.user_id, group_members.c.role)
    .where(group_members.c.group_id == bindparam("b_group"))
    .order_by(group_members.c.join_order)
)
_ONLY_ADMINS_SEND = Statement(
    select(group_settings.c.only_admins_send).where(group_settings.c.group_id == bindparam("b_group"))
)


_SETTINGS = (
    group_settings.c.description,
    group_settings.c.icon,
    group_settings.c.only_admins_send,
    group_settings.c.approval,
)
_NO_SETTINGS: dict[str, Any] = {
    "description": None,
    "icon": None,
    "only_admins_send": False,
    "approval": False,
}


def _settings_of(row: Sequence[Any]) -> dict[str, Any]:
    """A row of ``_SETTINGS`` as stored settings (None or False: off)."""
    description, icon, only_admins, approval = row
    return {
        "description": description,
        "icon": None if icon is None else json.loads(icon),
        "only_admins_send": bool(only_admins),
        "approval": bool(approval),
    }


def stored_settings(conn: Connection, group: str) -> dict[str, Any]:
    """The group's settings as stored (None or False: off)."""
    row = conn.execute(select(*_SETTINGS).where(group_settings.c.group_id == group)).first()
    return dict(_NO_SETTINGS) if row is None else _settings_of(row)


class SqlGroups(SqlBase):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._members_cache = MembersCache()

    # ------------------------------------------------------------------ reads
    def groups_of(self, user: str) -> list[GroupInfo]:
        with self._tx() as conn:
            ids = conn.execute(
                select(group_members.c.group_id)
                .where(group_members.c.user_id == user)
                .order_by(group_members.c.group_id)
            ).scalars()
            return [info for gid in list(ids) if (info := self._snapshot(conn, gid)) is not None]

    def groups_page(self, *, after: str | None, limit: int) -> list[GroupInfo]:
        page = select(groups.c.id, groups.c.name).order_by(groups.c.id).limit(limit)
        if after is not None:
            page = page.where(groups.c.id > after)
        with self._tx() as conn:
            names = {row[0]: row[1] for row in conn.execute(page)}
            rows = conn.execute(
                select(group_members.c.group_id, group_members.c.user_id, group_members.c.role)
                .where(group_members.c.group_id.in_(list(names)))
                .order_by(group_members.c.group_id, group_members.c.join_order)
            ).all()
            settings = {
                row[0]: settings_wire(**_settings_of(row[1:]))
                for row in conn.execute(
                    select(group_settings.c.group_id, *_SETTINGS).where(
                        group_settings.c.group_id.in_(list(names))
                    )
                )
            }
        infos = {
            gid: GroupInfo(id=gid, name=name, members=[], admins=[], settings=settings.get(gid, {}))
            for gid, name in names.items()
        }
        for gid, user, role in rows:
            infos[gid].members.append(user)
            if role == ROLE_ADMIN:
                infos[gid].admins.append(user)
        return list(infos.values())  # in id order, as the page was read

    def group_info(self, group: str) -> GroupInfo | None:
        with self._tx() as conn:
            return self._snapshot(conn, group)

    def _snapshot(self, conn: Connection, group: str) -> GroupInfo | None:
        name = conn.execute(select(groups.c.name).where(groups.c.id == group)).scalar()
        if name is None:
            return None
        rows = conn.execute(
            select(group_members.c.user_id, group_members.c.role)
            .where(group_members.c.group_id == group)
            .order_by(group_members.c.join_order)
        ).all()
        members = [r[0] for r in rows]
        return GroupInfo(
            id=group,
            name=name,
            members=members,
            admins=[r[0] for r in rows if r[1] == ROLE_ADMIN],
            profiles=member_profiles(conn, members),
            settings=settings_wire(**stored_settings(conn, group)),
        )

    def _members(self, conn: Connection, group: str) -> list[str] | None:
        """Members in join order (cached, checked against the group's version), or None."""
        roster = self._roster(conn, group)
        return None if roster is None else roster.members

    def _roster(self, conn: Connection, group: str) -> Roster | None:
        """Members in join order and who may send (cached, checked against the group's version),
        or None: the group's settings are read only when the cache misses (after a change)."""
        version = _VERSION.scalar(conn, {"b_group": group})
        if version is None:
            return None
        cached = self._members_cache.get(group, version)
        if cached is not None:
            return cached
        rows = _MEMBERS.all(conn, {"b_group": group})
        only_admins = _ONLY_ADMINS_SEND.scalar(conn, {"b_group": group})
        senders = frozenset(r[0] for r in rows if r[1] == ROLE_ADMIN) if only_admins else None
        roster = Roster([r[0] for r in rows], senders)
        self._members_cache.put(group, int(version), roster)
        return roster

    def _rolled_back(self) -> None:
        # the cache may hold members read inside the batch, at a version that was never committed
        self._members_cache.clear()
        super()._rolled_back()

    def _roles(self, conn: Connection, group: str) -> dict[str, bool]:
        """Member -> whether an admin, in join order."""
        if conn.execute(select(groups.c.id).where(groups.c.id == group)).first() is None:
            raise unknown_group(group)
        rows = conn.execute(
            select(group_members.c.user_id, group_members.c.role)
            .where(group_members.c.group_id == group)
            .order_by(group_members.c.join_order)
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
        group = new_group_id()
        with self._tx() as conn:
            self._need_users(conn, members)
            refused = _blockers(conn, creator, members)  # blocks: see rules.blocks
            members = [m for m in members if m not in refused]
            added, invited = consent_split(conn, creator, members)  # privacy: see rules.privacy
            conn.execute(
                insert(groups).values(id=group, name=name, created_by=creator, created_at=now, version=1)
            )
            everyone = [creator, *added]
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
            invitations = write_invitations(
                conn, group=group, name=name, by=creator, users=invited, now=now, ttl=INVITE_TTL
            )
            return self._announce(
                conn,
                group,
                "created",
                creator,
                everyone,
                [],
                now,
                ref,
                invited=[*invited, *refused],
                extra=invitations,
            )

    def add_members(
        self, *, group: str, actor: str, members: Sequence[str], now: float, ref: str, max_members: int
    ) -> GroupChange:
        with self._tx() as conn:
            roles = self._roles(conn, group)
            check_admin(roles, group, actor)
            check_add(roles, members, max_members)
            self._need_users(conn, members)
            refused = _blockers(conn, actor, members)  # blocks: see rules.blocks
            members = [m for m in members if m not in refused]
            added, invited = consent_split(conn, actor, members)  # privacy: see rules.privacy
            invitations = write_invitations(
                conn,
                group=group,
                name=self._name(conn, group),
                by=actor,
                users=invited,
                now=now,
                ttl=INVITE_TTL,
            )
            if added:
                self._insert_members(conn, group, added, now)
            return self._announce(
                conn,
                group,
                "added",
                actor,
                added,
                [],
                now,
                ref,
                invited=[*invited, *refused],
                extra=invitations,
            )

    @staticmethod
    def _insert_members(conn: Connection, group: str, members: Sequence[str], now: float) -> None:
        """Add ``members`` (not members yet) after the last one to join."""
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
            successor = heir(roles, user)  # the longest-standing member, if no admin is left
            if successor is not None:
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
        *,
        invited: Sequence[str] = (),
        extra: Sequence[InboxItem] = (),
    ) -> GroupChange:
        """Bump the version and put the ``group`` event in every member's (and the gone ones') inbox;
        ``invited``, ``extra``: see rules.groups.group_events and sql.privacy.write_invitations."""
        if affected or not invited:
            conn.execute(update(groups).where(groups.c.id == group).values(version=groups.c.version + 1))
            self._members_cache.forget(group)
        note_group_change(conn, group, action, affected, now)  # the chat list's rows
        snapshot = self._snapshot(conn, group)
        assert snapshot is not None
        events = group_events(
            snapshot, action=action, by=by, affected=affected, gone=gone, ref=ref, now=now, invited=invited
        )
        return GroupChange(group=snapshot, entries=self._append_many(conn, [*events, *extra], now))

    @staticmethod
    def _name(conn: Connection, group: str) -> str:
        return str(conn.execute(select(groups.c.name).where(groups.c.id == group)).scalar_one())


def _blockers(conn: Connection, actor: str, members: Sequence[str]) -> list[str]:
    """The members who block ``actor``: not added by them (``rules.blocks``), in the order named."""
    blocked = blocked_pairs(conn, [(m, actor) for m in members])
    return [m for m in members if (m, actor) in blocked]
