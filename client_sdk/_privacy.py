"""Privacy settings and group invitations: the public types and the commands (I/O-free).

A user chooses who sees their last seen, online status, photo and about text, and who may add them
to groups (``everyone``, ``contacts`` or ``nobody``), and whether read receipts flow in their 1-on-1
chats. Someone the ``groups`` setting does not allow who adds the user makes a
:class:`GroupInvitation` instead, which the user accepts or declines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from client_sdk.contract import GROUP_ID_RE, VERSION

__all__ = [
    "AUDIENCES",
    "GroupInvitation",
    "PrivacyChanged",
    "PrivacySettings",
    "group_invite_command",
    "parse_settings",
    "privacy_get_command",
    "privacy_set_command",
]

AUDIENCES: Final = ("everyone", "contacts", "nobody")
_AUDIENCE_FIELDS: Final = ("last_seen", "online", "photo", "about", "groups")


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    """Who sees this user's ``last_seen``, ``online`` status, ``photo`` and ``about`` text, and who
    may add them to groups (``groups``): each ``"everyone"``, ``"contacts"`` (the users they have a
    1-on-1 chat with, and their group mates) or ``"nobody"``. ``read_receipts`` False: no ``read``
    receipts either way in 1-on-1 chats (groups always have them). The server's own setting may
    narrow ``last_seen``, ``online``, ``photo`` and ``about`` further."""

    last_seen: str = "everyone"
    online: str = "everyone"
    read_receipts: bool = True
    photo: str = "everyone"
    about: str = "everyone"
    groups: str = "everyone"


@dataclass(frozen=True, slots=True)
class PrivacyChanged:
    """This user's privacy settings changed (from any of their devices; ``ref`` is the command id)."""

    settings: PrivacySettings
    ref: str | None
    cursor: int


@dataclass(frozen=True, slots=True)
class GroupInvitation:
    """An invitation to the group ``group`` (named ``name``) from ``by``, made because this user's
    ``groups`` setting did not let ``by`` add them (``state`` ``"invited"``), until ``expires``
    (Unix seconds); or this user's answer to one (``"declined"``, ``ref`` = the command id) so that
    every device drops it. Accept with :meth:`client_sdk.Client.accept_group_invite`."""

    group: str
    name: str
    by: str
    expires: float
    state: str
    ref: str | None
    ts: float
    cursor: int


def parse_settings(raw: Any) -> PrivacySettings:
    if not isinstance(raw, dict):
        raise ValueError(f"field 'settings' must be an object, got {raw!r}")
    values: dict[str, Any] = {}
    for name in _AUDIENCE_FIELDS:
        value = raw.get(name)
        if value not in AUDIENCES:
            raise ValueError(f"settings field {name!r} must be one of {AUDIENCES}, got {value!r}")
        values[name] = value
    if not isinstance(raw.get("read_receipts"), bool):
        raise ValueError("settings field 'read_receipts' must be a boolean")
    return PrivacySettings(**values, read_receipts=raw["read_receipts"])


def privacy_set_command(*, id: str, **changes: Any) -> dict[str, Any]:
    """A ``privacy_set`` command: the settings given (not None) change, the others stay."""
    payload: dict[str, Any] = {"v": VERSION, "type": "privacy_set", "id": id}
    for name, value in changes.items():
        if value is None:
            continue
        if name == "read_receipts":
            if not isinstance(value, bool):
                raise ValueError("read_receipts must be True or False")
        elif name not in _AUDIENCE_FIELDS:
            raise ValueError(f"no privacy setting {name!r}")
        elif value not in AUDIENCES:
            raise ValueError(f"{name} must be one of {AUDIENCES}, got {value!r}")
        payload[name] = value
    if len(payload) == 3:
        raise ValueError("give at least one setting to change")
    return payload


def privacy_get_command(*, id: str) -> dict[str, Any]:
    return {"v": VERSION, "type": "privacy_get", "id": id}


def group_invite_command(*, id: str, group: str, accept: bool) -> dict[str, Any]:
    """``group_invite_accept`` or ``group_invite_decline``."""
    if not isinstance(group, str) or GROUP_ID_RE.fullmatch(group) is None:
        raise ValueError(f"{group!r} is not a group id")
    kind = "group_invite_accept" if accept else "group_invite_decline"
    return {"v": VERSION, "type": kind, "id": id, "group": group}
