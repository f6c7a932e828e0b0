"""Media in the MongoDB store: a message's ``media`` object and who may download its stored objects.

The message document keeps the wire ``media`` object and ``media_keys``, the keys of its stored
objects (the file and its thumbnail), under a unique sparse index: a download is allowed to exactly
the people who have the message, its sender and its recipients (for a group, the members it went to).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from client_sdk.contract import is_group_id
from workers.errors import UnknownUser
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.rules.messages import media_keys, not_member, unknown_group

__all__ = ["MongoMedia", "media_fields"]


def media_fields(media: Mapping[str, Any] | None) -> Doc:
    """The fields of a message document that hold its media (none for a text message)."""
    if media is None:
        return {}
    return {"media": dict(media), "media_keys": media_keys(media)}


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
            if self._groups.find_one({"_id": recipient, "members.user": sender}, {"_id": True}) is None:
                raise not_member(recipient)

    def can_read_media(self, user: str, key: str) -> bool:
        return self._readable_message(user, key) is not None

    def readable_media(self, user: str, key: str) -> dict[str, Any] | None:
        message = self._readable_message(user, key)
        media = None if message is None else message.get("media")
        return None if media is None else dict(media)

    def _readable_message(self, user: str, key: str) -> Doc | None:
        """The message holding the object ``key`` (its sender and media), if ``user`` sent or received it."""
        with self._guard():
            message = self._messages.find_one({"media_keys": key}, {"sender": True, "media": True})
            if message is None:
                return None
            if message["sender"] == user:
                return message
            receipt = self._receipts.find_one({"message_id": message["_id"], "user": user}, {"_id": True})
            return None if receipt is None else message
