"""Profiles in every backend: what a valid name and about text are, who sees a profile, who the
contacts are that hear of a change, and the ``profile`` events a change makes.

A profile is seen by the same people as presence (rules.contacts): the user, the users they have
a 1-on-1 conversation with and their group mates; with ``everyone`` (the server's
``presence.visibility``), by anyone. A change is one ``profile`` event in the inbox of the user
(every device, ``ref`` = the command id) and of each contact, in the transaction of the change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem, Profile
from workers.stores.rules.contacts import may_see_presence

__all__ = [
    "ABOUT_MAX",
    "FIELDS",
    "NAME_MAX",
    "ProfileEdit",
    "clean_about",
    "clean_name",
    "dm_partner",
    "may_see_profile",
    "profile_events",
]

NAME_MAX: Final = 64
ABOUT_MAX: Final = 140
FIELDS: Final = frozenset({"name", "about", "avatar"})

ProfileEdit = Mapping[str, Any]
"""The fields to change (``name``, ``about``, ``avatar``), each to a value or None (cleared);
fields not named stay as they are."""


def _control(text: str, allowed: str = "") -> bool:
    return any((ord(c) < 32 or 127 <= ord(c) < 160) and c not in allowed for c in text)


def clean_name(value: str) -> str:
    """The display name as stored: trimmed, 1-64 characters, no control characters."""
    name = value.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise CommandError(ErrorCode.BAD_REQUEST, f"name: 1-{NAME_MAX} characters (after trimming spaces)")
    if _control(name):
        raise CommandError(ErrorCode.BAD_REQUEST, "name: control characters are not allowed")
    return name


def clean_about(value: str) -> str | None:
    """The about text as stored: trimmed, at most 140 characters, no control characters but line
    breaks; empty clears it (None)."""
    about = value.strip()
    if len(about) > ABOUT_MAX:
        raise CommandError(ErrorCode.BAD_REQUEST, f"about: at most {ABOUT_MAX} characters")
    if _control(about, "\n"):
        raise CommandError(
            ErrorCode.BAD_REQUEST, "about: control characters other than line breaks are not allowed"
        )
    return about or None


def may_see_profile(
    watcher: str,
    user: str,
    *,
    everyone: bool,
    chatted: Callable[[str], bool],
    share_a_group: Callable[[str, str], bool],
) -> bool:
    """Whether ``watcher`` may see ``user``'s profile: by the presence rule, or anyone's with ``everyone``."""
    return everyone or may_see_presence(watcher, user, chatted=chatted, share_a_group=share_a_group)


def dm_partner(conversation: str, user: str) -> str | None:
    """The other side of ``user``'s 1-on-1 conversation id (``dm:a:b``), None for anything else."""
    kind, _, rest = conversation.partition(":")
    first, _, second = rest.partition(":")
    if kind != "dm" or user not in (first, second):
        return None
    return second if first == user else first


def profile_events(
    profile: Profile, contacts: Iterable[str], *, ref: str | None, now: float
) -> list[InboxItem]:
    """The ``profile`` event for the user (with ``ref``) and for each contact (without)."""
    body = profile.wire()
    others = sorted({c for c in contacts if c != profile.user})
    own: InboxItem = (profile.user, "profile", None, {"ref": ref, "profile": body, "ts": now})
    return [own, *((c, "profile", None, {"ref": None, "profile": body, "ts": now}) for c in others)]
