"""Per-user privacy settings in every backend: who may see my presence (online, last seen), my
photo and about text, who may add me to groups, and whether read receipts flow in my 1-on-1 chats.

Each audience is ``everyone``, ``contacts`` (rules.contacts: a 1-on-1 partner or a group mate) or
``nobody``; a user always sees their own. A user who never changed a setting has no stored row:
every audience is ``everyone`` and read receipts are on, and the server-wide
``presence.visibility`` (the operator's ceiling) narrows the presence and profile audiences, never
widens them.

Read receipts off (WhatsApp's rule): a ``read`` receipt of a 1-on-1 message whose sender or reader
turned them off moves the message to ``delivered`` only, so the sender never hears ``read`` (the
server decides; clients are not trusted to hold back). Group messages always get them.

Group adds: a member whose ``groups`` setting does not allow the adder is not added but invited
(an invitation that expires after ``INVITE_TTL``), and accepts or declines it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

from client_sdk.contract import ErrorCode, Status
from workers.errors import CommandError
from workers.stores.records import InboxItem, Profile
from workers.stores.rules.contacts import may_see_presence

__all__ = [
    "AUDIENCES",
    "AUDIENCE_FIELDS",
    "DEFAULT",
    "INVITE_TTL",
    "Audience",
    "Invitation",
    "PrivacySettings",
    "effective_read_status",
    "hides_last_seen",
    "invitation_event",
    "invite_gone",
    "may_see",
    "narrowed",
    "privacy_body",
    "shown_to",
    "split_by_consent",
    "visible_profile",
]

Audience = Literal["everyone", "contacts", "nobody"]
AUDIENCES: Final[tuple[Audience, ...]] = ("everyone", "contacts", "nobody")
"""Widest first: the index is the stored number, and a larger one is narrower."""
AUDIENCE_FIELDS: Final = ("last_seen", "online", "photo", "about", "groups")
INVITE_TTL: Final = 72 * 3600.0
"""How long a group invitation can be accepted (seconds)."""


@dataclass(frozen=True, slots=True)
class PrivacySettings:
    last_seen: Audience = "everyone"
    online: Audience = "everyone"
    photo: Audience = "everyone"
    about: Audience = "everyone"
    groups: Audience = "everyone"
    read_receipts: bool = True

    def changed(self, changes: Mapping[str, Any]) -> PrivacySettings:
        """These settings with ``changes`` (only the known fields, already validated by the schema)."""
        known = {
            k: v for k, v in changes.items() if k in (*AUDIENCE_FIELDS, "read_receipts") and v is not None
        }
        return replace(self, **known)

    def wire(self) -> dict[str, Any]:
        return {
            "last_seen": self.last_seen,
            "online": self.online,
            "read_receipts": self.read_receipts,
            "photo": self.photo,
            "about": self.about,
            "groups": self.groups,
        }

    def codes(self) -> dict[str, int]:
        """The audiences as stored (their index in ``AUDIENCES``)."""
        return {field: AUDIENCES.index(getattr(self, field)) for field in AUDIENCE_FIELDS}

    @classmethod
    def from_codes(cls, codes: Mapping[str, Any], read_receipts: bool) -> PrivacySettings:
        audiences = {field: AUDIENCES[int(codes[field])] for field in AUDIENCE_FIELDS}
        return cls(**audiences, read_receipts=bool(read_receipts))


DEFAULT: Final = PrivacySettings()


def narrowed(audience: Audience, *, ceiling_everyone: bool) -> Audience:
    """The audience that applies: the user's, narrowed to ``contacts`` by a server ceiling of
    ``contacts`` (``presence.visibility``)."""
    if ceiling_everyone or audience == "nobody":
        return audience
    return "contacts"


def may_see(
    watcher: str,
    user: str,
    audience: Audience,
    *,
    chatted: Callable[[str], bool],
    share_a_group: Callable[[str, str], bool],
) -> bool:
    """Whether ``watcher`` is in ``user``'s ``audience`` (the user always is)."""
    if watcher == user or audience == "everyone":
        return True
    if audience == "nobody":
        return False
    return may_see_presence(watcher, user, chatted=chatted, share_a_group=share_a_group)


def effective_read_status(status: Status, *, group: bool, reader: str, sender: str, off: set[str]) -> Status:
    """The status a receipt moves a message to: ``read`` of a 1-on-1 message is ``delivered`` when
    its reader or sender turned read receipts off (``off``)."""
    if status == Status.READ and not group and (reader in off or sender in off):
        return Status.DELIVERED
    return status


def privacy_body(settings: PrivacySettings, *, ref: str | None) -> dict[str, Any]:
    return {"ref": ref, "settings": settings.wire()}


@dataclass(frozen=True, slots=True)
class Invitation:
    group: str
    name: str
    user: str
    by: str
    expires: float

    def wire(self) -> dict[str, Any]:
        return {"group": {"id": self.group, "name": self.name}, "by": self.by, "expires": self.expires}


def invitation_event(invitation: Invitation, *, state: str, ref: str | None, now: float) -> InboxItem:
    """The ``group_invitation`` event for the invited user: ``invited`` (a new invitation) or
    ``declined`` (their answer, so that every device drops the card)."""
    return (
        invitation.user,
        "group_invitation",
        None,
        {"ref": ref, "state": state, **invitation.wire(), "ts": now},
    )


def invite_gone(group: str) -> CommandError:
    """One error for an invitation that is missing, expired, declined or of a group that is gone."""
    return CommandError(ErrorCode.NOT_FOUND, f"no pending invitation to {group}")


def split_by_consent(
    adder: str,
    members: Iterable[str],
    groups_audience: Mapping[str, Audience],
    *,
    chatted: Callable[[str], bool],
    share_a_group: Callable[[str, str], bool],
) -> tuple[list[str], list[str]]:
    """``(added, invited)``: the members whose ``groups`` setting lets ``adder`` add them, and the
    others (``groups_audience``: the setting of each member who has one)."""
    added: list[str] = []
    invited: list[str] = []
    for member in members:
        audience = groups_audience.get(member, "everyone")
        ok = may_see(adder, member, audience, chatted=chatted, share_a_group=share_a_group)
        (added if ok else invited).append(member)
    return added, invited


def visible_profile(
    profile: Profile, settings: PrivacySettings, watcher: str, *, is_contact: Callable[[], bool]
) -> Profile:
    """``profile`` as ``watcher`` may see it: the photo and the about text left out unless their
    audience holds the watcher (``is_contact`` is asked only for a ``contacts`` audience)."""
    if watcher == profile.user or (settings.photo == "everyone" and settings.about == "everyone"):
        return profile

    def shown(audience: Audience) -> bool:
        return audience == "everyone" or (audience == "contacts" and is_contact())

    return replace(
        profile,
        avatar=profile.avatar if shown(settings.photo) else None,
        about=profile.about if shown(settings.about) else None,
    )


def hides_last_seen(settings: PrivacySettings, *, ceiling_everyone: bool) -> bool:
    """Whether the user's presence goes without ``last_seen``: their ``last_seen`` audience is
    narrower than their ``online`` one (one retained message serves every watcher)."""
    last_seen = AUDIENCES.index(narrowed(settings.last_seen, ceiling_everyone=ceiling_everyone))
    online = AUDIENCES.index(narrowed(settings.online, ceiling_everyone=ceiling_everyone))
    return last_seen > online


def shown_to(
    watcher: str,
    profile: Profile,
    settings: Mapping[str, PrivacySettings],
    *,
    chatted: Callable[[str], bool],
    share_a_group: Callable[[str, str], bool],
) -> Profile:
    """``profile`` as ``watcher`` sees it, by its owner's settings (``settings``: of the users who
    changed any)."""
    found = settings.get(profile.user)
    if found is None:
        return profile

    def is_contact() -> bool:
        return may_see_presence(watcher, profile.user, chatted=chatted, share_a_group=share_a_group)

    return visible_profile(profile, found, watcher, is_contact=is_contact)
