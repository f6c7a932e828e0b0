"""Disappearing messages in the SQL store (the rule: ``rules.timers``).

``conversation_timers`` holds a row per conversation whose timer is on, ``message_expiry`` one per
message sent under a timer that has not expired yet. The lookup of a batch's timers
(:func:`timers_of`) is one statement on the primary key for the whole batch; a conversation
without a timer finds no row and writes no expiry row. The sweep (``expire_due``) takes the due
rows oldest first (locked, skipping rows another sweeper holds, on PostgreSQL) and scrubs each
message as ``deletion`` does, in one transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select

from client_sdk.contract import is_group_id
from workers.errors import UnknownUser
from workers.stores.records import Expiry, TimerChange
from workers.stores.rules.messages import dm_conversation
from workers.stores.rules.timers import (
    EXPIRED_BY,
    check_timer_setter,
    expired_events,
    expired_stub,
    timer_conversation,
    timer_events,
)
from workers.stores.sql.deletion import SqlDeletion
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import (
    conversation_timers,
    message_expiry,
    users,
)

__all__ = ["SqlTimers", "record_expiry", "timers_of"]

_TIMERS_OF = Statement(
    select(conversation_timers.c.conversation_id, conversation_timers.c.seconds).where(
        conversation_timers.c.conversation_id.in_(bindparam("b_ids", expanding=True))
    )
)
_INSERT_EXPIRY = Statement(insert(message_expiry), column_keys=("message_id", "expires_at"))


def timers_of(conn: Connection, conversations: Collection[str]) -> dict[str, int]:
    """The timers (seconds) of those of ``conversations`` that have one on: one statement."""
    rows = _TIMERS_OF.all(conn, {"b_ids": list(conversations)})
    return {str(conversation): int(seconds) for conversation, seconds in rows}


def record_expiry(conn: Connection, rows: list[tuple[str, float]]) -> None:
    """Record ``(message id, expires_at)`` of messages sent under a timer (nothing when empty)."""
    if rows:
        _INSERT_EXPIRY.execute_many(conn, [{"message_id": m, "expires_at": at} for m, at in rows])


class SqlTimers(SqlDeletion):
    """Timers need a group's roles and members (groups), and expiry scrubs messages as a deletion
    does (deletion)."""

    def set_timer(self, *, user: str, to: str, seconds: int, now: float, ref: str) -> TimerChange:
        with self._tx() as conn:
            conversation, participants = self._timer_participants(conn, user, to)
            where = conversation_timers.c.conversation_id == conversation
            current = conn.scalar(select(conversation_timers.c.seconds).where(where).with_for_update())
            if int(current or 0) == seconds:
                return TimerChange(changed=False, seconds=seconds, conversation=conversation)
            conn.execute(delete(conversation_timers).where(where))
            if seconds:
                conn.execute(
                    insert(conversation_timers).values(
                        conversation_id=conversation, seconds=seconds, set_by=user, set_at=now
                    )
                )
            items = timer_events(
                participants, conversation=conversation, seconds=seconds, by=user, now=now, ref=ref
            )
            entries = self._append_many(conn, items, now)
        return TimerChange(changed=True, seconds=seconds, conversation=conversation, entries=entries)

    def _timer_participants(self, conn: Connection, user: str, to: str) -> tuple[str, list[str]]:
        """The conversation of ``user`` with ``to`` and who hears of its timer, if ``user`` may
        set it (a group's admins; either side of a 1-on-1 chat)."""
        if is_group_id(to):
            roles = self._roles(conn, to)
            check_timer_setter(to, user, roles)
            return to, list(roles)
        # no such user: appending their event raises UnknownUser, undoing it all
        return dm_conversation(user, to), list(dict.fromkeys((user, to)))

    def timer_of(self, *, user: str, to: str) -> tuple[str, int]:
        with self._tx() as conn:
            members = self._members(conn, to) if is_group_id(to) else None
            if not is_group_id(to) and conn.scalar(select(users.c.id).where(users.c.id == to)) is None:
                raise UnknownUser(to)
            conversation = timer_conversation(user, to, members)
            return conversation, timers_of(conn, [conversation]).get(conversation, 0)

    def expire_due(self, *, now: float, limit: int) -> Expiry:
        with self._tx() as conn:
            due = list(
                conn.scalars(
                    select(message_expiry.c.message_id)
                    .where(message_expiry.c.expires_at <= now)
                    .order_by(message_expiry.c.expires_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if not due:
                return Expiry()
            per_user: dict[str, list[dict[str, Any]]] = {}
            expired: list[str] = []
            keys: list[str] = []
            for message_id in due:
                taken = conn.execute(delete(message_expiry).where(message_expiry.c.message_id == message_id))
                if taken.rowcount != 1:
                    continue  # another sweeper expired it
                done = self._expire(conn, message_id, now, keys)
                if done is None:
                    continue
                stub, hearers = done
                expired.append(message_id)
                for user in hearers:
                    per_user.setdefault(user, []).append(dict(stub))
            # an account deleted since has no inbox to tell: it must not stop the sweep
            present = set(conn.scalars(select(users.c.id).where(users.c.id.in_(list(per_user)))))
            told = {user: stubs for user, stubs in per_user.items() if user in present}
            entries = self._append_many(conn, expired_events(told, now=now), now)
        return Expiry(expired=expired, entries=entries, media_keys=sorted(set(keys)))

    def _expire(
        self, conn: Connection, message_id: str, now: float, keys: list[str]
    ) -> tuple[dict[str, Any], list[str]] | None:
        """Scrub one message (its media keys added to ``keys``): ``(stub, hearers)``,
        or None when it was deleted for everyone already."""
        row = self._place_row(conn, message_id)
        if row is None or row[5] is not None:
            return None
        conversation, seq, sender, recipient, ts, _deleted_at, _deleted_by = row
        stub = expired_stub(
            message_id=message_id,
            conversation=conversation,
            seq=int(seq),
            sender=sender,
            recipient=recipient,
            ts=float(ts),
        )
        media_keys, hearers = self._scrub(conn, stub, by=EXPIRED_BY, now=now)
        keys.extend(media_keys)
        return stub, hearers
