"""Profiles in the SQL store: one ``profiles`` row per user who set one (see rules.profiles).

A change finds the user's contacts (the other side of each 1-on-1 conversation, and group mates
through ``ix_group_members_user``) and writes the ``profile`` event to each inbox in its
transaction. Profile changes are rare, so the conversation ids are matched by pattern rather
than kept in a table of their own on the message path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from workers.errors import UnknownUser
from workers.stores.records import Profile, ProfileChange
from workers.stores.rules.privacy import DEFAULT, PrivacySettings, may_see, shown_to, visible_profile
from workers.stores.rules.profiles import dm_partner, may_see_profile, profile_events
from workers.stores.sql.base import SqlBase
from workers.stores.sql.blocks import blocked_by, blocked_pairs
from workers.stores.sql.privacy_data import contact_checks, settings_of
from workers.stores.sql.schema import conversations, group_members, profiles
from workers.stores.sql.schema import users as accounts

__all__ = ["SqlProfiles", "member_profiles"]

_COLUMNS = (profiles.c.user_id, profiles.c.name, profiles.c.about, profiles.c.avatar, profiles.c.updated_at)


def _profile(row: Sequence[Any]) -> Profile:
    user, name, about, avatar, ts = row
    return Profile(user, name, about, None if avatar is None else json.loads(avatar), float(ts))


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def member_profiles(conn: Connection, members: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The profile card of each of ``members`` who set one (for group snapshots)."""
    if not members:
        return {}
    rows = conn.execute(select(*_COLUMNS).where(profiles.c.user_id.in_(list(members)))).all()
    hidden = settings_of(conn, [row[0] for row in rows])  # privacy: group mates are contacts
    return {row[0]: _for_contacts(_profile(row), hidden).card() for row in rows}


def _for_contacts(profile: Profile, settings: Mapping[str, PrivacySettings]) -> Profile:
    """The profile as its owner's contacts see it (rules.privacy)."""
    found = settings.get(profile.user)
    if found is None:
        return profile
    return visible_profile(profile, found, "", is_contact=lambda: True)


class SqlProfiles(SqlBase):
    def update_profile(
        self, *, user: str, changes: Mapping[str, Any], now: float, ref: str | None
    ) -> ProfileChange:
        with self._tx() as conn:
            if conn.execute(select(accounts.c.id).where(accounts.c.id == user)).first() is None:
                raise UnknownUser(user)
            row = conn.execute(select(*_COLUMNS).where(profiles.c.user_id == user)).first()
            old = Profile(user) if row is None else _profile(row)
            values: dict[str, Any] = {"updated_at": now}
            for field in ("name", "about"):
                if field in changes:
                    values[field] = changes[field]
            if "avatar" in changes:
                avatar = changes["avatar"]
                values["avatar"] = None if avatar is None else json.dumps(avatar)
                values["avatar_key"] = None if avatar is None else avatar["key"]
            if row is None:
                conn.execute(insert(profiles).values(user_id=user, **values))
            else:
                conn.execute(update(profiles).where(profiles.c.user_id == user).values(**values))
            new = _profile(conn.execute(select(*_COLUMNS).where(profiles.c.user_id == user)).one())
            events = profile_events(new, self._contacts(conn, user), ref=ref, now=now)
            shown = _for_contacts(new, settings_of(conn, [user])).wire()  # privacy: for the others
            events = [e if e[0] == user else (e[0], e[1], e[2], {**e[3], "profile": shown}) for e in events]
            entries = self._append_many(conn, events, now)
        replaced = []
        if "avatar" in changes and old.avatar is not None and old.avatar != new.avatar:
            replaced.append(old.avatar["key"])
        return ProfileChange(profile=new, entries=entries, replaced=replaced)

    def profiles_for(self, *, watcher: str, users: Sequence[str], everyone: bool) -> list[Profile]:
        wanted = list(dict.fromkeys(users))
        with self._tx() as conn:
            known = set(conn.execute(select(accounts.c.id).where(accounts.c.id.in_(wanted))).scalars())
            rows = conn.execute(select(*_COLUMNS).where(profiles.c.user_id.in_(wanted))).all()
            found = {row[0]: _profile(row) for row in rows}
            hidden = settings_of(conn, list(found))
            chatted, mates = contact_checks(conn)
            return [
                shown_to(
                    watcher,
                    found.get(user, Profile(user)),
                    hidden,
                    chatted=chatted,
                    share_a_group=mates,
                )
                for user in wanted
                if user in known and self._may_see(conn, watcher, user, everyone=everyone)
            ]

    def can_read_avatar(self, user: str, key: str, *, everyone: bool) -> bool:
        with self._tx() as conn:
            owner = conn.execute(select(profiles.c.user_id).where(profiles.c.avatar_key == key)).scalar()
            if owner is None or not self._may_see(conn, user, owner, everyone=everyone):
                return False
            photo = settings_of(conn, [owner]).get(owner, DEFAULT).photo  # privacy
            chatted, mates = contact_checks(conn)
            return may_see(user, owner, photo, chatted=chatted, share_a_group=mates)

    def _may_see(self, conn: Connection, watcher: str, user: str, *, everyone: bool) -> bool:
        chatted, share_a_group = contact_checks(conn)
        if watcher != user and blocked_pairs(conn, [(user, watcher)]):
            return False  # whom a user blocks sees their profile as a stranger's (rules.blocks)
        return may_see_profile(watcher, user, everyone=everyone, chatted=chatted, share_a_group=share_a_group)

    def _contacts(self, conn: Connection, user: str) -> set[str]:
        """The other side of each of ``user``'s 1-on-1 conversations, and their group mates."""
        mine = _like(user)
        ids = conn.execute(
            select(conversations.c.id).where(
                or_(
                    conversations.c.id.like(f"dm:{mine}:%", escape="\\"),
                    conversations.c.id.like(f"dm:%:{mine}", escape="\\"),
                )
            )
        ).scalars()
        contacts = {p for cid in ids if (p := dm_partner(cid, user)) is not None}
        theirs = group_members.alias("theirs")
        mates = conn.execute(
            select(theirs.c.user_id)
            .distinct()
            .join(group_members, group_members.c.group_id == theirs.c.group_id)
            .where(group_members.c.user_id == user, theirs.c.user_id != user)
        ).scalars()
        contacts.update(mates)
        contacts.discard(user)
        return contacts - blocked_by(conn, user)  # whom the user blocks hears of no change
