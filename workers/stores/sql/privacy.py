"""Privacy settings and group invitations in the SQL store (see rules.privacy; the tables and
the helpers other parts use in their own transaction are in ``privacy_data``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update

from workers.errors import UnknownUser
from workers.stores.records import GroupChange, InboxEntry
from workers.stores.rules.groups import check_add
from workers.stores.rules.privacy import (
    DEFAULT,
    Invitation,
    PrivacySettings,
    hides_last_seen,
    invitation_event,
    invite_gone,
    may_see,
    narrowed,
    privacy_body,
)
from workers.stores.sql.blocks import blocked_pairs
from workers.stores.sql.groups import SqlGroups
from workers.stores.sql.privacy_data import (
    SETTINGS_COLUMNS,
    answer_of,
    contact_checks,
    drop_invitation,
    pending_invitation,
    privacy_settings,
    record_answer,
    settings_from_row,
    settings_of,
)
from workers.stores.sql.schema import ROLE_MEMBER, group_members
from workers.stores.sql.schema import users as accounts

__all__ = ["SqlPrivacy"]


class SqlPrivacy(SqlGroups):
    # ------------------------------------------------------------------ settings
    def privacy_of(self, user: str) -> PrivacySettings:
        with self._tx() as conn:
            return settings_of(conn, [user]).get(user, DEFAULT)

    def set_privacy(
        self, *, user: str, changes: Mapping[str, Any], command_id: str, now: float
    ) -> tuple[PrivacySettings, list[InboxEntry]]:
        """Apply ``changes``; the ``privacy`` event goes to the user's inbox. A resent command (the
        last one stored) changes nothing and appends nothing (empty entries)."""
        with self._tx() as conn:
            if conn.execute(select(accounts.c.id).where(accounts.c.id == user)).first() is None:
                raise UnknownUser(user)
            row = conn.execute(
                select(*SETTINGS_COLUMNS, privacy_settings.c.command_id).where(
                    privacy_settings.c.user_id == user
                )
            ).first()
            old = DEFAULT if row is None else settings_from_row(row)
            if row is not None and row[-1] == command_id:
                return old, []
            new = old.changed(changes)
            values = {
                **new.codes(),
                "read_receipts": new.read_receipts,
                "command_id": command_id,
                "updated_at": now,
            }
            if row is None:
                conn.execute(insert(privacy_settings).values(user_id=user, **values))
            else:
                conn.execute(
                    update(privacy_settings).where(privacy_settings.c.user_id == user).values(**values)
                )
            entries = self._append_many(
                conn, [(user, "privacy", None, privacy_body(new, ref=command_id))], now
            )
            return new, entries

    def may_watch_presence(self, watcher: str, user: str, *, everyone: bool) -> bool:
        """The ACL's check: ``watcher`` is in ``user``'s ``online`` audience, narrowed by the
        server's ceiling (``everyone``: ``presence.visibility``); whom ``user`` blocks is refused as
        a stranger is (rules.blocks)."""
        if watcher == user:
            return True
        with self._tx() as conn:
            if blocked_pairs(conn, [(user, watcher)]):
                return False
            mine = settings_of(conn, [user]).get(user, DEFAULT)
            audience = narrowed(mine.online, ceiling_everyone=everyone)
            chatted, share_a_group = contact_checks(conn)
            return may_see(watcher, user, audience, chatted=chatted, share_a_group=share_a_group)

    def hiding_last_seen(self, users: Sequence[str] | None, *, everyone: bool) -> set[str]:
        """Which of ``users`` publish presence without ``last_seen`` (their ``last_seen`` audience
        is narrower than their ``online`` one: the one retained message cannot tell watchers
        apart)."""
        with self._tx() as conn:
            found = settings_of(conn, users)  # None: every user who changed a setting
        return {u for u, s in found.items() if hides_last_seen(s, ceiling_everyone=everyone)}

    # ------------------------------------------------------------------ invitations
    def invitation(self, *, group: str, user: str, now: float) -> Invitation | None:
        """The user's pending invitation to ``group`` (None: none, or expired)."""
        with self._tx() as conn:
            return pending_invitation(conn, group, user, now)

    def decline_invitation(self, *, group: str, user: str, now: float, ref: str) -> list[InboxEntry]:
        """Drop the invitation; the ``group_invitation`` (``declined``) event goes to the user's inbox.
        None pending (or expired): ``invite_gone``."""
        with self._tx() as conn:
            found = pending_invitation(conn, group, user, now)
            if found is None:
                if answer_of(conn, user=user, ref=ref, group=group) == "declined":
                    return []  # a resend: nothing more
                raise invite_gone(group)
            drop_invitation(conn, group, user)
            record_answer(conn, user=user, ref=ref, group=group, answer="declined")
            return self._append_many(conn, [invitation_event(found, state="declined", ref=ref, now=now)], now)

    def accept_invitation(
        self, *, group: str, user: str, now: float, ref: str, max_members: int
    ) -> GroupChange:
        """Join ``group`` by the user's pending invitation: the usual ``group`` events (action
        ``joined``). None pending (or expired, or the group is gone): ``invite_gone``."""
        with self._tx() as conn:
            found = pending_invitation(conn, group, user, now)
            if found is None:
                joined = self._snapshot(conn, group)
                if joined is not None and answer_of(conn, user=user, ref=ref, group=group) == "accepted":
                    return GroupChange(group=joined, entries=[])  # a resend: nothing more
                raise invite_gone(group)
            roles = self._roles(conn, group)
            drop_invitation(conn, group, user)
            record_answer(conn, user=user, ref=ref, group=group, answer="accepted")
            check_add(roles, [user], max_members)
            last = conn.execute(
                select(func.coalesce(func.max(group_members.c.join_order), 0)).where(
                    group_members.c.group_id == group
                )
            ).scalar_one()
            conn.execute(
                insert(group_members).values(
                    group_id=group, user_id=user, role=ROLE_MEMBER, joined_at=now, join_order=last + 1
                )
            )
            return self._announce(conn, group, "joined", user, [user], [], now, ref)
