"""Persistent MQTT sessions in the SQL store (table ``mqtt_sessions``): a row per device that
connected with a persistent session, its cursors written in batches by the node."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Float, and_, bindparam, case, delete, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from workers.stores.records import ResumedSession, SessionMark
from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import mqtt_sessions, users

__all__ = ["SqlMqttSessions"]

_S = mqtt_sessions.c


def _key(user: str, device: str) -> ColumnElement[bool]:
    return and_(_S.user_id == user, _S.device == device)


def _forward(column: ColumnElement[int], name: str) -> ColumnElement[int]:
    """``column``, or the parameter ``name`` where that is higher (GREATEST on both dialects)."""
    value = bindparam(name, type_=BigInteger)
    return case((column < value, value), else_=column)


_SAVE = Statement(
    update(mqtt_sessions)
    .where(_S.user_id == bindparam("b_user"), _S.device == bindparam("b_device"))
    .values(
        acked=_forward(_S.acked, "b_acked"),
        sent=_forward(_S.sent, "b_sent"),
        expires_at=bindparam("b_expires", type_=Float),
    )
)

_END = Statement(
    delete(mqtt_sessions).where(_S.user_id == bindparam("b_user"), _S.device == bindparam("b_device"))
)


class SqlMqttSessions(SqlBase):
    def open_mqtt_session(self, user: str, device: str, *, now: float, expiry: float) -> ResumedSession:
        with self._tx() as conn:
            row = conn.execute(
                select(_S.acked, _S.sent, _S.expires_at).where(_key(user, device)).with_for_update()
            ).first()
            if row is not None and float(row[2]) >= now:
                conn.execute(update(mqtt_sessions).where(_key(user, device)).values(expires_at=now + expiry))
                return ResumedSession(int(row[0]), int(row[1]), present=True)
            head = conn.execute(select(users.c.inbox_seq).where(users.c.id == user)).scalar()
            head = int(head or 0)
            values = {"acked": head, "sent": head, "expires_at": now + expiry}
            if row is None:
                conn.execute(insert(mqtt_sessions).values(user_id=user, device=device, **values))
            else:  # expired, not swept yet: it starts anew
                conn.execute(update(mqtt_sessions).where(_key(user, device)).values(**values))
            return ResumedSession(head, head, present=False)

    def end_mqtt_sessions(self, devices: Sequence[tuple[str, str]]) -> None:
        if not devices:
            return
        with self._tx() as conn:
            _END.execute_many(conn, [{"b_user": user, "b_device": device} for user, device in devices])

    def save_mqtt_sessions(self, marks: Sequence[SessionMark]) -> None:
        if not marks:
            return
        params = [
            {
                "b_user": m.user,
                "b_device": m.device,
                "b_acked": m.acked,
                "b_sent": m.sent,
                "b_expires": m.expires_at,
            }
            for m in marks
        ]
        with self._tx() as conn:
            _SAVE.execute_many(conn, params)

    def expire_mqtt_sessions(self, *, now: float) -> int:
        with self._tx() as conn:
            return int(conn.execute(delete(mqtt_sessions).where(_S.expires_at < now)).rowcount)
