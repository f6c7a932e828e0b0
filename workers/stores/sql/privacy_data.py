"""The SQL tables of privacy settings and group invitations, and the reads and writes other parts
of the store make in their own transaction (see rules.privacy).

Two tables of their own (an existing database gets them at start, ``create_schema``): a
``privacy_settings`` row only for a user who changed a setting, so the checks of everyone else
find nothing by primary key; and ``group_invitations``, one row per pending invitation.
The module-level helpers take the caller's connection: the group changes and receipts that need
a setting read it in their own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    bindparam,
    delete,
    insert,
    select,
)

from workers.stores.rules.privacy import (
    AUDIENCE_FIELDS,
    Audience,
    Invitation,
    PrivacySettings,
    invitation_event,
    split_by_consent,
)
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import USER_ID, conversations, group_members, groups, metadata

__all__ = [
    "SETTINGS_COLUMNS",
    "consent_split",
    "contact_checks",
    "drop_invitation",
    "group_invitations",
    "pending_invitation",
    "privacy_settings",
    "read_receipts_off",
    "settings_from_row",
    "settings_of",
    "write_invitations",
]

privacy_settings = Table(
    "privacy_settings",
    metadata,
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    *(Column(field, SmallInteger, nullable=False, default=0) for field in AUDIENCE_FIELDS),
    Column("read_receipts", Boolean, nullable=False, default=True),
    Column("command_id", String(64), nullable=True),
    Column("updated_at", Float, nullable=False),
)
"""A user's privacy settings (each audience as its index in ``rules.privacy.AUDIENCES``) and the
command that last changed them (a resend changes nothing). No row: the defaults."""

group_invitations = Table(
    "group_invitations",
    metadata,
    Column("group_id", String(64), ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("invited_by", USER_ID, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    PrimaryKeyConstraint("group_id", "user_id", name="pk_group_invitations"),
)
"""Pending invitations to a group of users whose ``groups`` setting did not allow the adder."""

invitation_answers = Table(
    "group_invitation_answers",
    metadata,
    Column("user_id", USER_ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("command_id", String(64), nullable=False),
    Column("group_id", String(64), ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    Column("answer", String(16), nullable=False),
    PrimaryKeyConstraint("user_id", "command_id", name="pk_group_invitation_answers"),
)
"""Each accept or decline of an invitation, by its command: a resent one is answered as before."""

SETTINGS_COLUMNS = (
    *(privacy_settings.c[field] for field in AUDIENCE_FIELDS),
    privacy_settings.c.read_receipts,
)
_RECEIPTS_OFF = Statement(
    select(privacy_settings.c.user_id).where(
        privacy_settings.c.user_id.in_(bindparam("b_users", expanding=True)),
        privacy_settings.c.read_receipts.is_(False),
    )
)

# every batch of users going online (the presence plugin), the ACL and profile reads
_SETTINGS_OF = Statement(
    select(privacy_settings.c.user_id, *SETTINGS_COLUMNS).where(
        privacy_settings.c.user_id.in_(bindparam("b_users", expanding=True))
    )
)


def settings_from_row(row: Sequence[Any]) -> PrivacySettings:
    codes = dict(zip(AUDIENCE_FIELDS, row[: len(AUDIENCE_FIELDS)], strict=True))
    return PrivacySettings.from_codes(codes, bool(row[len(AUDIENCE_FIELDS)]))


def settings_of(conn: Connection, users: Collection[str] | None) -> dict[str, PrivacySettings]:
    """The settings of each of ``users`` (None: of everyone) who changed any (the others have the
    defaults)."""
    if users is None:
        rows: Sequence[Sequence[Any]] = conn.execute(
            select(privacy_settings.c.user_id, *SETTINGS_COLUMNS)
        ).all()
    elif not users:
        return {}
    else:
        rows = _SETTINGS_OF.all(conn, {"b_users": list(users)})
    return {row[0]: settings_from_row(row[1:]) for row in rows}


def read_receipts_off(conn: Connection, users: Collection[str]) -> set[str]:
    """Which of ``users`` turned read receipts off: one primary-key look-up for the whole batch."""
    if not users:
        return set()
    return set(_RECEIPTS_OFF.scalars(conn, {"b_users": list(users)}))


def contact_checks(conn: Connection) -> tuple[Callable[[str], bool], Callable[[str, str], bool]]:
    """``(chatted, share_a_group)`` of rules.contacts, on ``conn``."""

    def chatted(conversation: str) -> bool:
        found = conn.execute(select(conversations.c.id).where(conversations.c.id == conversation))
        return found.first() is not None

    def share_a_group(a: str, b: str) -> bool:
        theirs = group_members.alias("theirs")
        shared = (
            select(group_members.c.group_id)
            .join(theirs, (theirs.c.group_id == group_members.c.group_id) & (theirs.c.user_id == b))
            .where(group_members.c.user_id == a)
            .limit(1)
        )
        return conn.execute(shared).first() is not None

    return chatted, share_a_group


def consent_split(conn: Connection, adder: str, members: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(added, invited)`` of ``members`` by their ``groups`` setting (rules.privacy)."""
    audiences: dict[str, Audience] = {u: s.groups for u, s in settings_of(conn, members).items()}
    if all(a == "everyone" for a in audiences.values()):
        return list(members), []
    chatted, share_a_group = contact_checks(conn)
    return split_by_consent(adder, members, audiences, chatted=chatted, share_a_group=share_a_group)


def write_invitations(
    conn: Connection, *, group: str, name: str, by: str, users: Sequence[str], now: float, ttl: float
) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """Store an invitation for each of ``users`` (a new one replaces an older one) and return the
    ``group_invitation`` events to append for them."""
    if not users:
        return []
    conn.execute(
        delete(group_invitations).where(
            group_invitations.c.group_id == group, group_invitations.c.user_id.in_(list(users))
        )
    )
    conn.execute(
        insert(group_invitations),
        [
            {"group_id": group, "user_id": u, "invited_by": by, "expires_at": now + ttl, "created_at": now}
            for u in users
        ],
    )
    return [
        invitation_event(Invitation(group, name, u, by, now + ttl), state="invited", ref=None, now=now)
        for u in users
    ]


def pending_invitation(conn: Connection, group: str, user: str, now: float) -> Invitation | None:
    row = conn.execute(
        select(groups.c.name, group_invitations.c.invited_by, group_invitations.c.expires_at)
        .join(groups, groups.c.id == group_invitations.c.group_id)
        .where(group_invitations.c.group_id == group, group_invitations.c.user_id == user)
    ).first()
    if row is None or float(row[2]) <= now:
        return None
    return Invitation(group, row[0], user, row[1], float(row[2]))


def drop_invitation(conn: Connection, group: str, user: str) -> None:
    conn.execute(
        delete(group_invitations).where(
            group_invitations.c.group_id == group, group_invitations.c.user_id == user
        )
    )


def record_answer(conn: Connection, *, user: str, ref: str, group: str, answer: str) -> None:
    conn.execute(
        insert(invitation_answers).values(user_id=user, command_id=ref, group_id=group, answer=answer)
    )


def answer_of(conn: Connection, *, user: str, ref: str, group: str) -> str | None:
    """``accepted`` or ``declined``: what the user's command ``ref`` answered to ``group`` before."""
    found = conn.execute(
        select(invitation_answers.c.answer).where(
            invitation_answers.c.user_id == user,
            invitation_answers.c.command_id == ref,
            invitation_answers.c.group_id == group,
        )
    ).scalar()
    return None if found is None else str(found)
