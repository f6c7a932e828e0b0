"""History of one conversation in the SQL store (the rule: ``rules.history``).

One page is a few statements whatever its size: the page's (seq, id) by the unique
``(conversation_id, seq)`` index, in the direction of the query and ``limit + 1`` long (of a
group, only the messages the viewer sent or has a receipt row for: a probe of ``pk_receipts`` per
message); the views of those messages (``views``); the receipt counts of the viewer's own. Each is
built once and run on the DBAPI cursor (``driver``): SQLAlchemy's own execution cost more than
SQLite's for these short statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Connection, bindparam, case, exists, func, or_, select
from sqlalchemy.sql.elements import BindParameter

from client_sdk.contract import Status
from workers.stores.rules.history import (
    HistoryPage,
    HistoryQuery,
    check_conversation,
    not_in_conversation,
    page_of,
    receipt_state,
)
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import group_members, messages, receipts
from workers.stores.sql.views import SqlViews

__all__ = ["SqlHistory"]

_VIEWER: Final[BindParameter[Any]] = bindparam("b_viewer")
_CONVERSATION: Final[BindParameter[Any]] = bindparam("b_conversation")
_VISIBLE: Final = or_(
    messages.c.sender_id == _VIEWER,
    exists().where(receipts.c.message_id == messages.c.id, receipts.c.user_id == _VIEWER),
)


def _page_statement(visible_only: bool, backwards: bool, before: bool, after: bool) -> Statement:
    seq = messages.c.seq
    statement = select(seq, messages.c.id).where(messages.c.conversation_id == _CONVERSATION)
    if visible_only:  # of a 1-on-1 conversation the viewer is in, every message is theirs to see
        statement = statement.where(_VISIBLE)
    if before:
        statement = statement.where(seq < bindparam("b_before"))
    if after:
        statement = statement.where(seq > bindparam("b_after"))
    return Statement(statement.order_by(seq.desc() if backwards else seq).limit(bindparam("b_limit")))


_PAGES: Final = {
    (visible, backwards, before, after): _page_statement(visible, backwards, before, after)
    for visible in (False, True)
    for backwards in (False, True)
    for before in (False, True)
    for after in (False, True)
}
"""The page statement of each kind of query: of a group or not, which way, which bounds."""
_MEMBER = Statement(
    select(group_members.c.user_id).where(
        group_members.c.group_id == _CONVERSATION, group_members.c.user_id == _VIEWER
    )
)
_ANY_VISIBLE = Statement(
    select(messages.c.id).where(messages.c.conversation_id == _CONVERSATION, _VISIBLE).limit(1)
)
_RECEIPT_COUNTS = Statement(
    select(
        receipts.c.message_id,
        func.count(),
        func.sum(case((receipts.c.status >= int(Status.DELIVERED), 1), else_=0)),
        func.sum(case((receipts.c.status >= int(Status.READ), 1), else_=0)),
    )
    .where(receipts.c.message_id.in_(bindparam("b_ids", expanding=True)))
    .group_by(receipts.c.message_id)
)


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
        key = (visible_only, query.backwards, query.before is not None, query.after is not None)
        params = {
            "b_conversation": query.conversation,
            "b_viewer": query.viewer,
            "b_before": query.before,
            "b_after": query.after,
            "b_limit": query.limit + 1,
        }
        return [(int(s), str(i)) for s, i in _PAGES[key].all(conn, params)]

    def _may_read_group(self, conn: Connection, query: HistoryQuery) -> bool:
        """A member now, or one who has any message of it (a member who left)."""
        params = {"b_conversation": query.conversation, "b_viewer": query.viewer}
        if _MEMBER.first(conn, params) is not None:
            return True
        if query.before is None and query.after is None:
            return False  # that page was the whole conversation, and nothing of it is theirs
        return _ANY_VISIBLE.first(conn, params) is not None

    def _receipt_states(self, conn: Connection, own: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not own:
            return {}
        rows = _RECEIPT_COUNTS.all(conn, {"b_ids": list(own)})
        counts = {str(r[0]): (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows}
        return {m: receipt_state(*counts.get(m, (0, 0, 0))) for m in own}
