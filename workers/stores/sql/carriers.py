"""The inbox entries that carry a message, in the SQL store (the rule: ``rules.carriers``).

A change to a delivered message (a delete, an edit, a reaction) rewrites its carriers in the
transaction of the change. They are found by the participants' inboxes and the message id: only
``sent`` entries are in an index on the message (see ``schema.inbox``), so the recipients'
``message`` entries are found by a range scan of each of their inboxes. Such changes are rare next
to messages; an index on every inbox entry would cost every message sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from client_sdk.contract import is_group_id
from workers.events import dumps
from workers.stores.rules.carriers import CARRIERS, Patch, hearers, patched
from workers.stores.sql.groups import SqlGroups
from workers.stores.sql.schema import inbox, receipts

__all__ = ["SqlCarriers"]


class SqlCarriers(SqlGroups):
    """Who holds a message, who hears of its changes (groups: the current members), and the
    rewriting of the entries that carry it."""

    def _audience(
        self, conn: Connection, message_id: str, sender: str, recipient: str
    ) -> tuple[list[str], list[str]]:
        """``(holders, hearers)`` of a message: the sender and everyone who got a copy; and of
        those, who hears of a change (see ``rules.carriers.hearers``)."""
        recipients = list(conn.scalars(select(receipts.c.user_id).where(receipts.c.message_id == message_id)))
        members = (self._members(conn, recipient) or []) if is_group_id(recipient) else None
        return [sender, *recipients], hearers(sender, recipients, group_members=members)

    def _rewrite_carriers(
        self, conn: Connection, message_id: str, users: Sequence[str], patch: Patch
    ) -> None:
        """Rewrite every inbox entry of ``users`` that carries the message by ``patch``."""
        carriers = conn.execute(
            select(inbox.c.user_id, inbox.c.cursor, inbox.c.payload).where(
                inbox.c.user_id.in_(list(users)),
                inbox.c.message_id == message_id,
                inbox.c.kind.in_(CARRIERS),
            )
        ).all()
        for user, cursor, payload in carriers:
            new = patched(json.loads(payload), patch)
            if new is not None:
                conn.execute(
                    update(inbox)
                    .where(inbox.c.user_id == user, inbox.c.cursor == cursor)
                    .values(payload=dumps(new))
                )
