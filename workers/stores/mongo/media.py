"""Media in the MongoDB store: a message's ``media`` object and who may download its stored objects.

The message document keeps the wire ``media`` object and ``media_keys``, the keys of its stored
objects (the file and its thumbnail), under a unique sparse index: a download is allowed to exactly
the people who have the message, its sender and its recipients (for a group, the members it went to).
A forwarded message uses the objects of the message it copies: it lists them in ``shared_keys``
(not unique: several forwards share them), so its people may download them too, and they stay in
storage while any message that is not deleted lists them (``_release_media``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.client_session import ClientSession

from client_sdk.contract import is_group_id
from workers.errors import UnknownUser
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.mongo.schema import ROLE_ADMIN
from workers.stores.rules.group_settings import check_may_send
from workers.stores.rules.messages import media_keys, not_member, unknown_group

__all__ = ["MongoMedia", "media_fields"]


def media_fields(media: Mapping[str, Any] | None, *, shared: bool = False) -> Doc:
    """The fields of a message document that hold its media (none for a text message); ``shared``:
    a forward's, whose objects another message owns."""
    if media is None:
        return {}
    return {"media": dict(media), "shared_keys" if shared else "media_keys": media_keys(media)}


class MongoMedia(MongoBase):
    def check_recipient(self, sender: str, recipient: str) -> None:
        """Raise what ``accept_message`` would for ``recipient``: UnknownUser, unknown_group, not_member."""
        with self._guard():
            if not is_group_id(recipient):
                if self._users.find_one({"_id": recipient}, {"_id": True}) is None:
                    raise UnknownUser(recipient)
                return
            group = self._groups.find_one({"_id": recipient}, {"_id": True})
            if group is None:
                raise unknown_group(recipient)
            found = self._groups.find_one(
                {"_id": recipient, "members.user": sender},
                {"members": True, "settings.only_admins_send": True},
            )
            if found is None:
                raise not_member(recipient)
            if (found.get("settings") or {}).get("only_admins_send"):  # only admins send
                admins = frozenset(m["user"] for m in found["members"] if m["role"] == ROLE_ADMIN)
                check_may_send(recipient, sender, admins)

    def can_read_media(self, user: str, key: str) -> bool:
        return self._readable_message(user, key) is not None

    def readable_media(self, user: str, key: str) -> dict[str, Any] | None:
        message = self._readable_message(user, key)
        media = None if message is None else message.get("media")
        return None if media is None else dict(media)

    def _readable_message(self, user: str, key: str) -> Doc | None:
        """A message holding the object ``key`` (its upload's, or a forward's: its sender and
        media) that ``user`` sent or received; None: there is none."""
        with self._guard():
            found = list(
                self._messages.find(
                    {"$or": [{"media_keys": key}, {"shared_keys": key}]}, {"sender": True, "media": True}
                )
            )
            for message in found:
                if message["sender"] == user:
                    return message
            if not found:
                return None
            by_id = {message["_id"]: message for message in found}
            receipt = self._receipts.find_one(
                {"message_id": {"$in": list(by_id)}, "user": user}, {"message_id": True}
            )
            return None if receipt is None else by_id[receipt["message_id"]]

    def _release_media(self, session: ClientSession, doc: Doc) -> list[str]:
        """The keys of the media objects of ``doc`` (a message being deleted) that no other message
        uses, to remove from storage once committed (the caller unsets its media fields)."""
        keys = [*(doc.get("media_keys") or []), *(doc.get("shared_keys") or [])]
        left = []
        for key in keys:
            other = self._messages.find_one(
                {"_id": {"$ne": doc["_id"]}, "$or": [{"media_keys": key}, {"shared_keys": key}]},
                {"_id": True},
                session=session,
            )
            if other is None:
                left.append(key)
        return left
