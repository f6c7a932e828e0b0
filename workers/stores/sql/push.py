"""Push tokens, phone numbers and the per-user notification state in the SQL store.

``notify_state`` collapses bursts (see rules.push): a row per user with the due flags and the
pending message ids as a JSON list.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from client_sdk.contract import Status
from workers.errors import UnknownUser
from workers.stores.records import PushToken, SmsRecord, StoredMessage
from workers.stores.rules.push import PENDING_MAX
from workers.stores.sql.base import SqlBase
from workers.stores.sql.schema import (
    messages,
    notify_state,
    push_tokens,
    receipts,
    sms_outbox,
    user_phones,
    users,
)

__all__ = ["SqlPush"]


class SqlPush(SqlBase):
    # ------------------------------------------------------------------ tokens and phones
    def register_push_token(self, *, user: str, token: str, platform: str, preview: bool, now: float) -> None:
        with self._tx() as conn:
            conn.execute(delete(push_tokens).where(push_tokens.c.token == token))  # a phone may change hands
            conn.execute(
                insert(push_tokens).values(
                    token=token, user_id=user, platform=platform, preview=preview, created_at=now
                )
            )

    def unregister_push_token(self, *, user: str, token: str) -> bool:
        with self._tx() as conn:
            result = conn.execute(
                delete(push_tokens).where(push_tokens.c.token == token, push_tokens.c.user_id == user)
            )
            return bool(result.rowcount)

    def remove_push_token(self, token: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(push_tokens).where(push_tokens.c.token == token))

    def push_tokens(self, user: str) -> list[PushToken]:
        with self._tx() as conn:
            rows = conn.execute(
                select(push_tokens.c.token, push_tokens.c.platform, push_tokens.c.preview)
                .where(push_tokens.c.user_id == user)
                .order_by(push_tokens.c.created_at)
            ).all()
        return [PushToken(token=r[0], platform=r[1], preview=bool(r[2])) for r in rows]

    def set_phone(self, user: str, phone: str | None) -> None:
        with self._tx() as conn:
            if conn.execute(select(users.c.id).where(users.c.id == user)).first() is None:
                raise UnknownUser(user)
            conn.execute(delete(user_phones).where(user_phones.c.user_id == user))
            if phone is not None:
                conn.execute(insert(user_phones).values(user_id=user, phone=phone))

    def phone_of(self, user: str) -> str | None:
        with self._tx() as conn:
            phone = conn.execute(select(user_phones.c.phone).where(user_phones.c.user_id == user)).scalar()
            return str(phone) if phone is not None else None

    # ------------------------------------------------------------------ collapsing
    def note_waiting(self, *, user: str, message_id: str) -> tuple[bool, bool]:
        """Add a message to the user's pending list; (push job needed, SMS check needed)."""
        with self._tx() as conn:
            row = self._state(conn, user)
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(notify_state).values(
                                user_id=user,
                                push_due=True,
                                sms_due=True,
                                pending=json.dumps([message_id]),
                                sms_until=0.0,
                            )
                        )
                    return True, True
                except IntegrityError:
                    row = self._state(conn, user)
                    assert row is not None
            push_due, sms_due, pending = row
            pending = [*pending, message_id][-PENDING_MAX:]
            conn.execute(
                update(notify_state)
                .where(notify_state.c.user_id == user)
                .values(push_due=True, sms_due=True, pending=json.dumps(pending))
            )
            return not push_due, not sms_due

    def take_pending(self, user: str) -> list[str]:
        """The messages of the burst a push is due for; the next message starts a new burst."""
        with self._tx() as conn:
            row = self._state(conn, user)
            if row is None:
                return []
            conn.execute(
                update(notify_state)
                .where(notify_state.c.user_id == user)
                .values(push_due=False, pending="[]")
            )
            return list(row[2])

    def sms_checked(self, user: str) -> float:
        """Clear the SMS check; returns the time up to which messages were already texted."""
        with self._tx() as conn:
            until = conn.execute(
                select(notify_state.c.sms_until).where(notify_state.c.user_id == user)
            ).scalar()
            conn.execute(update(notify_state).where(notify_state.c.user_id == user).values(sms_due=False))
            return float(until or 0.0)

    def sms_sent(self, user: str, *, until: float) -> None:
        with self._tx() as conn:
            conn.execute(update(notify_state).where(notify_state.c.user_id == user).values(sms_until=until))

    @staticmethod
    def _state(conn: Connection, user: str) -> tuple[bool, bool, list[str]] | None:
        row = conn.execute(
            select(notify_state.c.push_due, notify_state.c.sms_due, notify_state.c.pending).where(
                notify_state.c.user_id == user
            )
        ).first()
        return None if row is None else (bool(row[0]), bool(row[1]), json.loads(row[2]))

    def undelivered(self, *, user: str, message_ids: Sequence[str]) -> list[StoredMessage]:
        """Those of the messages that no device of ``user`` has yet, oldest first."""
        if not message_ids:
            return []
        with self._tx() as conn:
            rows = conn.execute(
                select(messages)
                .join(receipts, receipts.c.message_id == messages.c.id)
                .where(
                    receipts.c.user_id == user,
                    receipts.c.status == int(Status.SENT),
                    messages.c.id.in_(list(message_ids)),
                )
                .order_by(messages.c.created_at, messages.c.seq)  # a batch stores its messages at one time
            ).all()
        return [
            StoredMessage(
                id=r.id,
                conversation=r.conversation_id,
                seq=int(r.seq),
                sender=r.sender_id,
                recipient=r.recipient_id,
                text=r.body,
                ts=float(r.created_at),
            )
            for r in rows
        ]

    def undelivered_since(self, *, user: str, since: float) -> list[StoredMessage]:
        with self._tx() as conn:
            ids = list(
                conn.execute(
                    select(messages.c.id)
                    .join(receipts, receipts.c.message_id == messages.c.id)
                    .where(
                        receipts.c.user_id == user,
                        receipts.c.status == int(Status.SENT),
                        messages.c.created_at > since,
                    )
                ).scalars()
            )
        return self.undelivered(user=user, message_ids=ids)

    # ------------------------------------------------------------------ the SMS outbox
    def record_sms(self, *, user: str, phone: str, body: str, now: float) -> None:
        with self._tx() as conn:
            conn.execute(insert(sms_outbox).values(user_id=user, phone=phone, body=body, created_at=now))

    def sms_outbox(self, user: str | None = None) -> list[SmsRecord]:
        query = select(sms_outbox.c.user_id, sms_outbox.c.phone, sms_outbox.c.body, sms_outbox.c.created_at)
        if user is not None:
            query = query.where(sms_outbox.c.user_id == user)
        with self._tx() as conn:
            rows = conn.execute(query.order_by(sms_outbox.c.id)).all()
        return [SmsRecord(user=r[0], phone=r[1], body=r[2], ts=float(r[3])) for r in rows]
