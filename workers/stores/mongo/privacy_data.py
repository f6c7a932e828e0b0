"""The MongoDB documents of privacy settings and group invitations, and the reads and writes other
parts of the store make in their own transaction (see rules.privacy).

``privacy``            {_id: user, last_seen, online, photo, about, groups (each an audience),
                       read_receipts, command_id, updated_at}: only for a user who changed a
                       setting, so everyone else's checks find nothing by ``_id``
``group_invitations``  {_id: "<group> <user>", group, user, by, expires_at, created_at}: pending
                       invitations of users whose ``groups`` setting did not allow the adder
``group_invitation_answers``  {_id: "<user> <command id>", group, answer}: each accept or decline,
                       by its command (a resent one is answered as before)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

from pymongo.client_session import ClientSession
from pymongo.database import Database

from workers.stores.mongo.base import Doc
from workers.stores.records import InboxItem
from workers.stores.rules.privacy import (
    AUDIENCE_FIELDS,
    Audience,
    Invitation,
    PrivacySettings,
    invitation_event,
    split_by_consent,
)

__all__ = [
    "answer_of",
    "consent_split",
    "contact_checks",
    "drop_invitation",
    "invitation_id",
    "pending_invitation",
    "read_receipts_off",
    "record_answer",
    "settings_from_doc",
    "settings_of",
    "write_invitations",
]

Session = ClientSession | None


def settings_from_doc(doc: Doc) -> PrivacySettings:
    audiences = {field: doc.get(field, "everyone") for field in AUDIENCE_FIELDS}
    return PrivacySettings(**audiences, read_receipts=bool(doc.get("read_receipts", True)))


def settings_of(
    db: Database[Doc], users: Collection[str] | None, session: Session
) -> dict[str, PrivacySettings]:
    """The settings of each of ``users`` (None: of everyone) who changed any (the others have the
    defaults)."""
    if users is not None and not users:
        return {}
    query = {} if users is None else {"_id": {"$in": list(users)}}
    docs = db["privacy"].find(query, session=session)
    return {doc["_id"]: settings_from_doc(doc) for doc in docs}


def read_receipts_off(db: Database[Doc], users: Collection[str], session: Session) -> set[str]:
    """Which of ``users`` turned read receipts off: one look-up by ``_id`` for the whole batch."""
    if not users:
        return set()
    found = db["privacy"].find(
        {"_id": {"$in": list(users)}, "read_receipts": False}, {"_id": True}, session=session
    )
    return {doc["_id"] for doc in found}


def contact_checks(
    db: Database[Doc], session: Session
) -> tuple[Callable[[str], bool], Callable[[str, str], bool]]:
    """``(chatted, share_a_group)`` of rules.contacts."""

    def chatted(conversation: str) -> bool:
        return db["conversations"].find_one({"_id": conversation}, {"_id": True}, session=session) is not None

    def share_a_group(a: str, b: str) -> bool:
        both = {"$and": [{"members.user": a}, {"members.user": b}]}
        return db["groups"].find_one(both, {"_id": True}, session=session) is not None

    return chatted, share_a_group


def consent_split(
    db: Database[Doc], adder: str, members: Sequence[str], session: Session
) -> tuple[list[str], list[str]]:
    """``(added, invited)`` of ``members`` by their ``groups`` setting (rules.privacy)."""
    audiences: dict[str, Audience] = {u: s.groups for u, s in settings_of(db, members, session).items()}
    if all(a == "everyone" for a in audiences.values()):
        return list(members), []
    chatted, share_a_group = contact_checks(db, session)
    return split_by_consent(adder, members, audiences, chatted=chatted, share_a_group=share_a_group)


def invitation_id(group: str, user: str) -> str:
    return f"{group} {user}"  # neither a group id nor a user id holds a space


def write_invitations(
    db: Database[Doc],
    session: Session,
    *,
    group: str,
    name: str,
    by: str,
    users: Sequence[str],
    now: float,
    ttl: float,
) -> list[InboxItem]:
    """Store an invitation for each of ``users`` (a new one replaces an older one); the
    ``group_invitation`` events to append for them."""
    for user in users:
        doc: dict[str, Any] = {
            "group": group,
            "user": user,
            "by": by,
            "expires_at": float(now + ttl),
            "created_at": float(now),
        }
        db["group_invitations"].replace_one(
            {"_id": invitation_id(group, user)}, doc, upsert=True, session=session
        )
    return [
        invitation_event(Invitation(group, name, u, by, now + ttl), state="invited", ref=None, now=now)
        for u in users
    ]


def pending_invitation(
    db: Database[Doc], group: str, user: str, now: float, session: Session
) -> Invitation | None:
    doc = db["group_invitations"].find_one({"_id": invitation_id(group, user)}, session=session)
    if doc is None or float(doc["expires_at"]) <= now:
        return None
    head = db["groups"].find_one({"_id": group}, {"name": True}, session=session)
    if head is None:
        return None
    return Invitation(group, head["name"], user, doc["by"], float(doc["expires_at"]))


def drop_invitation(db: Database[Doc], group: str, user: str, session: Session) -> None:
    db["group_invitations"].delete_one({"_id": invitation_id(group, user)}, session=session)


def record_answer(
    db: Database[Doc], session: Session, *, user: str, ref: str, group: str, answer: str
) -> None:
    doc = {"_id": f"{user} {ref}", "group": group, "answer": answer}
    db["group_invitation_answers"].insert_one(doc, session=session)


def answer_of(db: Database[Doc], session: Session, *, user: str, ref: str, group: str) -> str | None:
    """``accepted`` or ``declined``: what the user's command ``ref`` answered to ``group`` before."""
    doc = db["group_invitation_answers"].find_one({"_id": f"{user} {ref}", "group": group}, session=session)
    return None if doc is None else str(doc["answer"])
