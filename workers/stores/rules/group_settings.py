"""Group settings, invite links and join requests: the rules every store backend applies.

Settings (``description``, ``icon``, ``only_admins_send``, ``approval``) are changed by admins
only; each change is a ``group`` event (action ``settings``) to every member, and the snapshot
carries the settings that are set (a setting left out is off or empty).

An invite link is a random code (``new_invite_code``) of which the store keeps only the SHA-256
(``invite_hash``): a copy of the database does not let anyone join, and the lookup is by the hash of
what the joiner sent, so how far a guess matches a real code never shows in the time of the lookup
(an attacker cannot steer the hash's prefix). A wrong, revoked and expired code all get the one
``no_such_invite`` answer, from the same query.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Collection, Mapping
from typing import Any, Final

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import GroupInfo, InboxItem
from workers.stores.rules.profiles import _control

__all__ = [
    "DESCRIPTION_MAX",
    "SETTING_FIELDS",
    "changed_settings",
    "check_may_send",
    "clean_description",
    "invite_hash",
    "invite_matches",
    "new_invite_code",
    "no_such_invite",
    "request_events",
    "settings_wire",
]

DESCRIPTION_MAX: Final = 512
SETTING_FIELDS: Final = frozenset({"description", "icon", "only_admins_send", "approval"})


def clean_description(value: str) -> str | None:
    """The description as stored: trimmed, at most 512 characters, no control characters but line
    breaks; empty clears it (None)."""
    text = value.strip()
    if len(text) > DESCRIPTION_MAX:
        raise CommandError(ErrorCode.BAD_REQUEST, f"description: at most {DESCRIPTION_MAX} characters")
    if _control(text, "\n"):
        raise CommandError(ErrorCode.BAD_REQUEST, "description: control characters are not allowed")
    return text or None


def settings_wire(
    *, description: str | None, icon: Mapping[str, Any] | None, only_admins_send: bool, approval: bool
) -> dict[str, Any]:
    """The settings of a group snapshot: only those that are set."""
    body: dict[str, Any] = {}
    if description:
        body["description"] = description
    if icon is not None:
        body["icon"] = dict(icon)
    if only_admins_send:
        body["only_admins_send"] = True
    if approval:
        body["approval"] = True
    return body


def changed_settings(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The part of ``changes`` that differs from ``current`` (both in stored form: None or False
    for a setting that is off)."""
    unknown = set(changes) - SETTING_FIELDS
    if unknown:  # pragma: no cover - the pipeline builds the changes
        raise ValueError(f"not group settings: {sorted(unknown)}")
    return {k: v for k, v in changes.items() if current.get(k) != v}


def check_may_send(group: str, sender: str, senders: Collection[str] | None) -> None:
    """``senders``: who may send to the group when only admins may (its admins), else None."""
    if senders is not None and sender not in senders:
        raise CommandError(ErrorCode.NOT_ADMIN, f"only admins can send to {group}")


def new_invite_code() -> str:
    """128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def invite_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def invite_matches(stored: str, wanted: str) -> bool:
    """The store's row found by the hash is the one asked for (a constant-time comparison)."""
    return hmac.compare_digest(stored.encode(), wanted.encode())


def no_such_invite() -> CommandError:
    # one answer for a wrong, revoked or expired code: which one it was is nobody's business
    return CommandError(ErrorCode.NOT_FOUND, "no such invite")


def request_events(
    group: GroupInfo, *, user: str, state: str, by: str | None, ref: str, now: float
) -> list[InboxItem]:
    """A ``group_request`` event (``pending``, ``rejected``) for the requester and every admin;
    ``ref`` on the event of whoever acted (``by``: the admin who decided, None: the requester)."""
    actor = by or user
    body = {"group": group.id, "name": group.name, "user": user, "state": state, "by": by, "ts": now}
    return [
        (target, "group_request", None, {**body, "ref": ref if target == actor else None})
        for target in dict.fromkeys([user, *group.admins])
    ]
