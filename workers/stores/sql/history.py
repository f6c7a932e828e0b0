"""History of one conversation in the SQL store (the rule: ``rules.history``).

One page is a few statements whatever its size: the page's (seq, id) by the unique
``(conversation_id, seq)`` index, in the direction of the query and ``limit + 1`` long (of a
group, only the messages the viewer sent or has a receipt row for: a probe of ``pk_receipts`` per
message); the views of those messages (``views``); the receipt counts of the viewer's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, case, exists, func, or_, select

from client_sdk.contract import Status
from workers.stores.rules.history import (
    HistoryPage,
    HistoryQuery,
    check_conversation,
    not_in_conversation,
    page_of,
    receipt_state,
)
from workers.stores.sql.schema import group_members, messages, receipts
from workers.stores.sql.views import SqlViews

__all__ = ["SqlHistory"]


class SqlHistory(SqlViews):
    def history(self, query: HistoryQuery) -> HistoryPage:
        other = check_conversation(query.conversation, query.viewer)
        group = other is None
        with self._tx() as conn:
            rows = self._page_rows(conn, query, visible_only=group)
            if group and not rows and not self._may_read_group(conn, query):
                raise not_in_conversation(query.conversation)
            views = self._message_views(conn, [i for _, i in rows], query.viewer)
            page, more = page_of(query, rows, views)
            own = [m["id"] for m in page if m["from"] == query.viewer]
            return HistoryPage(messages=page, more=more, receipts=self._receipt_states(conn, own))

    def _page_rows(
        self, conn: Connection, query: HistoryQuery, *, visible_only: bool
    ) -> list[tuple[int, str]]:
        seq = messages.c.seq
        statement = select(seq, messages.c.id).where(messages.c.conversation_id == query.conversation)
        if visible_only:  # of a 1-on-1 conversation the viewer is in, every message is theirs to see
            statement = statement.where(_visible_to(query.viewer))
        if query.before is not None:
            statement = statement.where(seq < query.before)
        if query.after is not None:
            statement = statement.where(seq > query.after)
        statement = statement.order_by(seq.desc() if query.backwards else seq).limit(query.limit + 1)
        return [(int(s), str(i)) for s, i in conn.execute(statement)]

    def _may_read_group(self, conn: Connection, query: HistoryQuery) -> bool:
        """A member now, or one who has any message of it (a member who left)."""
        member = conn.execute(
            select(group_members.c.user_id).where(
                group_members.c.group_id == query.conversation, group_members.c.user_id == query.viewer
            )
        ).first()
        if member is not None:
            return True
        if query.before is None and query.after is None:
            return False  # that page was the whole conversation, and nothing of it is theirs
        anything = (
            select(messages.c.id)
            .where(messages.c.conversation_id == query.conversation, _visible_to(query.viewer))
            .limit(1)
        )
        return conn.execute(anything).first() is not None

    def _receipt_states(self, conn: Connection, own: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not own:
            return {}
        status = receipts.c.status
        rows = conn.execute(
            select(
                receipts.c.message_id,
                func.count(),
                func.sum(case((status >= int(Status.DELIVERED), 1), else_=0)),
                func.sum(case((status >= int(Status.READ), 1), else_=0)),
            )
            .where(receipts.c.message_id.in_(list(own)))
            .group_by(receipts.c.message_id)
        )
        counts = {str(r[0]): (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows}
        return {m: receipt_state(*counts.get(m, (0, 0, 0))) for m in own}


def _visible_to(viewer: str) -> Any:
    got_copy = exists().where(receipts.c.message_id == messages.c.id, receipts.c.user_id == viewer)
    return or_(messages.c.sender_id == viewer, got_copy)
