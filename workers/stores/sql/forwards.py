"""Forwarding a message in the SQL store (the rule: ``rules.replies``).

A forward is a new message in the target conversation with the text and media of a message the
forwarder can read; its media objects are shared (``media_shares``), not uploaded again, and
``message_forwards`` marks it forwarded.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from workers.stores.records import AcceptResult
from workers.stores.rules.replies import not_readable
from workers.stores.sql.messages import SqlMessages

__all__ = ["SqlForwards"]


class SqlForwards(SqlMessages):
    def forward_message(
        self, *, sender: str, command_id: str, message_id: str, recipient: str, now: float
    ) -> AcceptResult:
        with self._tx() as conn:
            # a resend is answered as the first time, even if the original went meanwhile
            existing = self._find_duplicate(conn, sender, command_id)
        if existing is not None:
            return existing
        try:
            with self._tx() as conn:
                row = self._readable(conn, sender, message_id)
                if row is None or row[5]:
                    raise not_readable(message_id)
                media = self._media_of(conn, message_id)
                conversation, targets = self._targets(conn, sender, recipient)
                return self._insert_message(
                    conn,
                    sender,
                    command_id,
                    recipient,
                    conversation,
                    targets,
                    row[4],
                    now,
                    media,
                    forwarded_from=message_id,
                )
        except IntegrityError:  # a concurrent resend won the race
            with self._tx() as conn:
                existing = self._find_duplicate(conn, sender, command_id)
            if existing is None:
                raise
            return existing
