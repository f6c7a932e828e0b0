"""Media in the SQL store: a message's media object, and which stored objects belong to which message.

``message_media`` holds the wire ``media`` object of a message; ``media_objects`` maps every
object key (the file and its thumbnail) to its message, so a download is allowed to exactly the
people who have the message: its sender and its recipients (for a group, the members it went to).
A forwarded message uses the objects of the message it was forwarded from: ``media_shares`` names
it for each, so its people may download them too, and the objects stay until no message that is
not deleted uses them (``_release_media``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, or_, select, union_all

from client_sdk.contract import is_group_id
from workers.errors import UnknownUser
from workers.stores.rules.group_settings import check_may_send
from workers.stores.rules.messages import media_keys, not_member, unknown_group
from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import (
    ROLE_ADMIN,
    group_members,
    group_settings,
    groups,
    media_objects,
    media_shares,
    message_media,
    messages,
    receipts,
    users,
)

__all__ = ["SqlMedia"]

# read for every resent command (see base)
_MEDIA_OF = Statement(
    select(message_media.c.info).where(message_media.c.message_id == bindparam("b_message"))
)


class SqlMedia(SqlBase):
    def check_recipient(self, sender: str, recipient: str) -> None:
        """Raise what ``accept_message`` would for ``recipient``: UnknownUser, unknown_group, not_member."""
        with self._tx() as conn:
            if not is_group_id(recipient):
                if conn.execute(select(users.c.id).where(users.c.id == recipient)).first() is None:
                    raise UnknownUser(recipient)
                return
            if conn.execute(select(groups.c.id).where(groups.c.id == recipient)).first() is None:
                raise unknown_group(recipient)
            member = conn.execute(
                select(group_members.c.role).where(
                    group_members.c.group_id == recipient, group_members.c.user_id == sender
                )
            ).first()
            if member is None:
                raise not_member(recipient)
            if int(member[0]) != ROLE_ADMIN:  # a group where only admins send
                only_admins = select(group_settings.c.only_admins_send).where(
                    group_settings.c.group_id == recipient
                )
                check_may_send(recipient, sender, frozenset() if conn.execute(only_admins).scalar() else None)

    def can_read_media(self, user: str, key: str) -> bool:
        with self._tx() as conn:
            return self._readable_message(conn, user, key) is not None

    def readable_media(self, user: str, key: str) -> dict[str, Any] | None:
        with self._tx() as conn:
            message_id = self._readable_message(conn, user, key)
            return None if message_id is None else self._media_of(conn, message_id)

    def _readable_message(self, conn: Connection, user: str, key: str) -> str | None:
        """A message holding the object ``key`` (its upload's, or a forward's) that ``user`` sent
        or received; None: there is none."""
        users_of = union_all(
            select(media_objects.c.message_id).where(media_objects.c.key == key),
            select(media_shares.c.message_id).where(media_shares.c.key == key),
        ).subquery()
        got_it = select(receipts.c.user_id).where(
            receipts.c.message_id == messages.c.id, receipts.c.user_id == user
        )
        row = conn.execute(
            select(messages.c.id)
            .where(messages.c.id.in_(select(users_of.c.message_id)))
            .where(or_(messages.c.sender_id == user, got_it.exists()))
            .limit(1)
        ).first()
        return None if row is None else str(row[0])

    def _insert_media(
        self, conn: Connection, message_id: str, media: Mapping[str, Any], *, shared: bool = False
    ) -> None:
        """A message's media; ``shared``: a forward's, whose objects another message owns."""
        conn.execute(
            insert(message_media).values(
                message_id=message_id, info=json.dumps(dict(media), separators=(",", ":"))
            )
        )
        rows = [{"key": key, "message_id": message_id} for key in media_keys(media)]
        conn.execute(insert(media_shares if shared else media_objects), rows)

    def _release_media(self, conn: Connection, message_id: str) -> list[str]:
        """Drop the message's media (deleted for everyone); the keys of the objects no other
        message uses any more, to remove from storage once committed."""
        keys = set(conn.scalars(select(media_objects.c.key).where(media_objects.c.message_id == message_id)))
        keys.update(conn.scalars(select(media_shares.c.key).where(media_shares.c.message_id == message_id)))
        conn.execute(delete(media_objects).where(media_objects.c.message_id == message_id))
        conn.execute(delete(media_shares).where(media_shares.c.message_id == message_id))
        conn.execute(delete(message_media).where(message_media.c.message_id == message_id))
        if not keys:
            return []
        used = set(conn.scalars(select(media_objects.c.key).where(media_objects.c.key.in_(keys))))
        used.update(conn.scalars(select(media_shares.c.key).where(media_shares.c.key.in_(keys))))
        return sorted(keys - used)

    def _media_of(self, conn: Connection, message_id: str) -> dict[str, Any] | None:
        info = _MEDIA_OF.scalar(conn, {"b_message": message_id})
        if info is None:
            return None
        media: dict[str, Any] = json.loads(info)
        return media
