"""Reports in the SQL store (the rule: ``rules.blocks``): a ``reports`` row with copies of the
reported messages as the reporter's inbox carries them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from workers.errors import UnknownUser
from workers.stores.records import ReportInfo
from workers.stores.rules.blocks import check_block, check_reported
from workers.stores.rules.carriers import CARRIERS
from workers.stores.sql.base import SqlBase
from workers.stores.sql.schema import inbox, reports
from workers.stores.sql.schema import users as accounts

__all__ = ["SqlReports"]

_COLUMNS = (
    reports.c.id,
    reports.c.reporter_id,
    reports.c.user_id,
    reports.c.reason,
    reports.c.messages,
    reports.c.created_at,
)


def _report(row: Sequence[Any]) -> ReportInfo:
    report_id, reporter, user, reason, messages, ts = row
    return ReportInfo(int(report_id), reporter, user, reason, json.loads(messages), float(ts))


def _seen(conn: Connection, reporter: str, message_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The messages of ``message_ids`` the reporter can see, as their inbox carries them."""
    if not message_ids:
        return {}
    rows = conn.execute(
        select(inbox.c.message_id, inbox.c.payload).where(
            inbox.c.user_id == reporter,
            inbox.c.message_id.in_(list(message_ids)),
            inbox.c.kind.in_(CARRIERS),
        )
    ).all()
    return {row[0]: json.loads(row[1])["message"] for row in rows}


class SqlReports(SqlBase):
    def report_user(
        self, *, reporter: str, user: str, message_ids: Sequence[str], reason: str, ref: str, now: float
    ) -> bool:
        check_block(reporter, user)
        try:
            with self._tx() as conn:
                if conn.execute(select(accounts.c.id).where(accounts.c.id == user)).first() is None:
                    raise UnknownUser(user)
                copies = check_reported(message_ids, _seen(conn, reporter, message_ids))
                conn.execute(
                    insert(reports).values(
                        reporter_id=reporter,
                        user_id=user,
                        reason=reason,
                        messages=json.dumps(copies, ensure_ascii=False),
                        command_id=ref,
                        created_at=now,
                    )
                )
        except IntegrityError:
            return False  # the same report sent again: stored once
        return True

    def reports_page(self, *, after: int | None, limit: int) -> list[ReportInfo]:
        query = select(*_COLUMNS).order_by(reports.c.id).limit(limit)
        if after is not None:
            query = query.where(reports.c.id > after)
        with self._tx() as conn:
            return [_report(row) for row in conn.execute(query).all()]
