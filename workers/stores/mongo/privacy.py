"""Privacy settings and group invitations in the MongoDB store (see rules.privacy; the documents
and the helpers other parts use in their own transaction are in ``privacy_data``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo.client_session import ClientSession

from workers.errors import UnknownUser
from workers.stores.mongo.blocks import blocked_pairs
from workers.stores.mongo.groups import MongoGroups, _info, _member
from workers.stores.mongo.privacy_data import (
    answer_of,
    contact_checks,
    drop_invitation,
    pending_invitation,
    record_answer,
    settings_from_doc,
    settings_of,
)
from workers.stores.mongo.schema import ROLE_MEMBER
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

__all__ = ["MongoPrivacy"]


class MongoPrivacy(MongoGroups):
    # ------------------------------------------------------------------ settings
    def privacy_of(self, user: str) -> PrivacySettings:
        with self._guard():
            return settings_of(self._db, [user], None).get(user, DEFAULT)

    def set_privacy(
        self, *, user: str, changes: Mapping[str, Any], command_id: str, now: float
    ) -> tuple[PrivacySettings, list[InboxEntry]]:
        """Apply ``changes``; the ``privacy`` event goes to the user's inbox. A resent command (the
        last one stored) changes nothing and appends nothing (empty entries)."""

        def work(session: ClientSession) -> tuple[PrivacySettings, list[InboxEntry]]:
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            doc = self._db["privacy"].find_one({"_id": user}, session=session)
            old = DEFAULT if doc is None else settings_from_doc(doc)
            if doc is not None and doc.get("command_id") == command_id:
                return old, []
            new = old.changed(changes)
            values = {**new.wire(), "command_id": command_id, "updated_at": float(now)}
            self._db["privacy"].update_one({"_id": user}, {"$set": values}, upsert=True, session=session)
            event = (user, "privacy", None, privacy_body(new, ref=command_id))
            return new, self._append_many(session, [event], now)

        return self._tx(work)

    def may_watch_presence(self, watcher: str, user: str, *, everyone: bool) -> bool:
        """The ACL's check: ``watcher`` is in ``user``'s ``online`` audience, narrowed by the
        server's ceiling (``everyone``: ``presence.visibility``); whom ``user`` blocks is refused as
        a stranger is (rules.blocks)."""
        if watcher == user:
            return True
        with self._guard():
            if blocked_pairs(self._blocks, [(user, watcher)]):
                return False
            mine = settings_of(self._db, [user], None).get(user, DEFAULT)
            audience = narrowed(mine.online, ceiling_everyone=everyone)
            chatted, share_a_group = contact_checks(self._db, None)
            return may_see(watcher, user, audience, chatted=chatted, share_a_group=share_a_group)

    def hiding_last_seen(self, users: Sequence[str] | None, *, everyone: bool) -> set[str]:
        """Which of ``users`` publish presence without ``last_seen`` (see sql.privacy)."""
        with self._guard():
            found = settings_of(self._db, users, None)
        return {u for u, s in found.items() if hides_last_seen(s, ceiling_everyone=everyone)}

    # ------------------------------------------------------------------ invitations
    def invitation(self, *, group: str, user: str, now: float) -> Invitation | None:
        with self._guard():
            return pending_invitation(self._db, group, user, now, None)

    def decline_invitation(self, *, group: str, user: str, now: float, ref: str) -> list[InboxEntry]:
        def work(session: ClientSession) -> list[InboxEntry]:
            found = pending_invitation(self._db, group, user, now, session)
            if found is None:
                if answer_of(self._db, session, user=user, ref=ref, group=group) == "declined":
                    return []  # a resend: nothing more
                raise invite_gone(group)
            drop_invitation(self._db, group, user, session)
            record_answer(self._db, session, user=user, ref=ref, group=group, answer="declined")
            return self._append_many(
                session, [invitation_event(found, state="declined", ref=ref, now=now)], now
            )

        return self._tx(work)

    def accept_invitation(
        self, *, group: str, user: str, now: float, ref: str, max_members: int
    ) -> GroupChange:
        def work(session: ClientSession) -> GroupChange:
            if pending_invitation(self._db, group, user, now, session) is None:
                head = self._groups.find_one({"_id": group}, {"name": True, "members": True}, session=session)
                if (
                    head is not None
                    and answer_of(self._db, session, user=user, ref=ref, group=group) == "accepted"
                ):
                    return GroupChange(group=_info(head), entries=[])  # a resend: nothing more
                raise invite_gone(group)
            doc = self._load(session, group)
            check_add(self._roles(doc), [user], max_members)
            drop_invitation(self._db, group, user, session)
            record_answer(self._db, session, user=user, ref=ref, group=group, answer="accepted")
            joined = [*doc["members"], _member(user, ROLE_MEMBER, now)]
            info = self._change(session, group, {"members": joined})
            return self._announce(session, info, "joined", user, [user], [], now, ref)

        return self._tx(work)
