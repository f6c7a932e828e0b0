"""The rules of group changes, the same for every store backend.

Each check takes the group as it is (``roles``: member -> whether an admin, in join order) and
raises ``CommandError`` with the wire code when the change is refused.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import GroupInfo, InboxItem
from workers.stores.rules.messages import not_member

__all__ = [
    "check_add",
    "check_admin",
    "check_create",
    "check_member",
    "check_promote",
    "check_remove",
    "check_users_exist",
    "group_events",
    "heir",
    "listed",
    "new_group_id",
]


def new_group_id() -> str:
    return "g:" + uuid.uuid4().hex[:20]


def listed(names: Sequence[str]) -> str:
    return ", ".join(names[:5]) + ("…" if len(names) > 5 else "")


def check_create(creator: str, members: Sequence[str], max_members: int) -> None:
    if creator in members:
        raise CommandError(ErrorCode.BAD_REQUEST, "members lists the others: you are in the group already")
    if len(members) + 1 > max_members:
        raise CommandError(ErrorCode.GROUP_FULL, f"a group holds at most {max_members} members")


def check_member(roles: Mapping[str, bool], group: str, user: str) -> None:
    if user not in roles:
        raise not_member(group)


def check_admin(roles: Mapping[str, bool], group: str, actor: str) -> None:
    check_member(roles, group, actor)
    if not roles[actor]:
        raise CommandError(ErrorCode.NOT_ADMIN, f"only admins of {group} can do that")


def check_add(roles: Mapping[str, bool], members: Sequence[str], max_members: int) -> None:
    already = [m for m in members if m in roles]
    if already:
        raise CommandError(ErrorCode.BAD_REQUEST, f"already members: {listed(already)}")
    if len(roles) + len(members) > max_members:
        raise CommandError(ErrorCode.GROUP_FULL, f"a group holds at most {max_members} members")


def _check_all_members(roles: Mapping[str, bool], members: Sequence[str]) -> None:
    strangers = [m for m in members if m not in roles]
    if strangers:
        raise CommandError(ErrorCode.BAD_REQUEST, f"not members: {listed(strangers)}")


def check_remove(roles: Mapping[str, bool], actor: str, members: Sequence[str]) -> None:
    if actor in members:
        raise CommandError(ErrorCode.BAD_REQUEST, "to leave a group, use group_leave")
    _check_all_members(roles, members)


def check_promote(roles: Mapping[str, bool], members: Sequence[str]) -> None:
    _check_all_members(roles, members)
    admins = [m for m in members if roles[m]]
    if admins:
        raise CommandError(ErrorCode.BAD_REQUEST, f"already admins: {listed(admins)}")


def check_users_exist(names: Sequence[str], found: Collection[str]) -> None:
    missing = [n for n in names if n not in found]
    if missing:
        raise CommandError(ErrorCode.UNKNOWN_USER, f"no such user(s): {listed(missing)}")


def heir(roles: Mapping[str, bool], leaving: str) -> str | None:
    """Who becomes an admin as ``leaving`` leaves: the longest-standing member, when no admin
    would be left; None when an admin stays or nobody does."""
    remaining = [m for m in roles if m != leaving]
    if not remaining or any(roles[m] for m in remaining):
        return None
    return remaining[0]


def group_events(
    snapshot: GroupInfo,
    *,
    action: str,
    by: str,
    affected: list[str],
    gone: list[str],
    ref: str,
    now: float,
    invited: Sequence[str] = (),
) -> list[InboxItem]:
    """The ``group`` event for every member after the change and everyone who left it. With
    ``invited`` (members an add could not add, see rules.privacy), the adder's event lists them;
    when nobody was added, only the adder hears of it."""
    events: list[InboxItem] = [
        (
            user,
            "group",
            None,
            {
                "ref": ref if user == by else None,
                "action": action,
                "by": by,
                "affected": affected,
                "group": snapshot.wire(),
                "ts": now,
            },
        )
        for user in [*snapshot.members, *gone]
    ]
    if not invited:
        return events
    if not affected:  # nobody was added: only the adder hears of it
        events = [event for event in events if event[0] == by]
    return [(u, k, m, {**b, "invited": list(invited)}) if u == by else (u, k, m, b) for u, k, m, b in events]
