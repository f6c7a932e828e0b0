"""The chat list and read state in the SQL store (rules: ``rules.chats``).

One statement pages the user's ``chat_members`` rows, each joined to its conversation's
``last_seq`` (primary key) and the last message the user may see (the unique ``(conversation_id,
seq)``), ordered by that message's time; then, for the page only, one statement each for the
unread counts (a range of that same index per chat), the groups' names, the peers' presence and
the last messages as the user sees them. Nothing of this is written per message: a membership row
is written at a 1-on-1 conversation's first message and at group joins and leaves, and read
positions move with read receipts and ``mark_read`` (see chat_rows).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
)

from client_sdk.contract import is_group_id
from workers.stores.records import ChatSummary, ReadChange
from workers.stores.rules.chats import (
    ChatCursor,
    not_in_conversation,
    peer_of,
    presence_wire,
    visible_last,
)
from workers.stores.rules.messages import message_targets
from workers.stores.sql.chat_rows import advance_reads
from workers.stores.sql.driver import Statement
from workers.stores.sql.groups import SqlGroups
from workers.stores.sql.schema import (
    chat_members,
    conversations,
    devices,
    groups,
    messages,
    users,
)
from workers.stores.sql.views import SqlViews

__all__ = ["SqlChats"]

cm = chat_members
_SEEN_UNTIL = case(
    (and_(cm.c.until_seq.is_not(None), cm.c.until_seq < conversations.c.last_seq), cm.c.until_seq),
    else_=conversations.c.last_seq,
)
_ACTIVITY = func.coalesce(messages.c.created_at, cm.c.joined_at).label("activity")


def _page(after: bool) -> Statement:
    """The user's chats newest first, ``limit`` of them (after a cursor, or from the top)."""
    query = (
        select(
            cm.c.conversation_id,
            cm.c.read_seq,
            cm.c.from_seq,
            cm.c.until_seq,
            func.coalesce(conversations.c.last_seq, 0),
            messages.c.id,
            _ACTIVITY,
        )
        .select_from(cm)
        .outerjoin(conversations, conversations.c.id == cm.c.conversation_id)
        .outerjoin(
            messages,
            and_(
                messages.c.conversation_id == cm.c.conversation_id,
                messages.c.seq == _SEEN_UNTIL,
                messages.c.seq > cm.c.from_seq,
            ),
        )
        .where(cm.c.user_id == bindparam("b_user"))
        .order_by(_ACTIVITY.desc(), cm.c.conversation_id.desc())
        .limit(bindparam("b_limit"))
    )
    if after:
        activity = func.coalesce(messages.c.created_at, cm.c.joined_at)
        query = query.where(
            or_(
                activity < bindparam("b_ts"),
                and_(activity == bindparam("b_ts"), cm.c.conversation_id < bindparam("b_conversation")),
            )
        )
    return Statement(query)


_PAGE = {after: _page(after) for after in (False, True)}
_FLOOR = case((cm.c.read_seq > cm.c.from_seq, cm.c.read_seq), else_=cm.c.from_seq)
_UNREAD = Statement(
    select(cm.c.conversation_id, func.count())
    .select_from(cm)
    .join(
        messages,
        and_(
            messages.c.conversation_id == cm.c.conversation_id,
            messages.c.seq > _FLOOR,
            or_(cm.c.until_seq.is_(None), messages.c.seq <= cm.c.until_seq),
        ),
    )
    .where(
        cm.c.user_id == bindparam("b_user"),
        cm.c.conversation_id.in_(bindparam("b_conversations", expanding=True)),
        messages.c.sender_id != bindparam("b_user"),
    )
    .group_by(cm.c.conversation_id)
)
_GROUP_NAMES = Statement(
    select(groups.c.id, groups.c.name).where(groups.c.id.in_(bindparam("b_groups", expanding=True)))
)
_PRESENCE = Statement(
    select(
        users.c.id,
        users.c.last_seen,
        exists().where(devices.c.user_id == users.c.id, devices.c.node.is_not(None)),
    ).where(users.c.id.in_(bindparam("b_users", expanding=True)))
)
_MEMBER_ROW = Statement(
    select(cm.c.read_seq, cm.c.from_seq, cm.c.until_seq, func.coalesce(conversations.c.last_seq, 0))
    .select_from(cm)
    .outerjoin(conversations, conversations.c.id == cm.c.conversation_id)
    .where(cm.c.user_id == bindparam("b_user"), cm.c.conversation_id == bindparam("b_conversation"))
)


class SqlChats(SqlGroups, SqlViews):
    def chat_list(
        self, *, user: str, before: ChatCursor | None, limit: int
    ) -> tuple[list[ChatSummary], bool]:
        params: dict[str, Any] = {"b_user": user, "b_limit": limit + 1}
        if before is not None:
            params.update(b_ts=before[0], b_conversation=before[1])
        with self._tx() as conn:
            rows = _PAGE[before is not None].all(conn, params)
            more = len(rows) > limit
            rows = rows[:limit]
            if not rows:
                return [], False
            chats = [row[0] for row in rows]
            unread = {r[0]: int(r[1]) for r in _UNREAD.all(conn, {"b_user": user, "b_conversations": chats})}
            group_ids = [c for c in chats if is_group_id(c)]
            names = dict(_GROUP_NAMES.all(conn, {"b_groups": group_ids})) if group_ids else {}
            peers = [p for c in chats if (p := peer_of(c, user)) is not None]
            presence = (
                {r[0]: presence_wire(bool(r[2]), r[1]) for r in _PRESENCE.all(conn, {"b_users": peers})}
                if peers
                else {}
            )
            views = self._message_views(conn, [row[5] for row in rows if row[5] is not None], user)
        page = []
        for conversation, read_seq, from_seq, until_seq, last_seq, message_id, activity in rows:
            is_group = is_group_id(conversation)
            peer = None if is_group else peer_of(conversation, user)
            page.append(
                ChatSummary(
                    conversation=conversation,
                    ts=float(activity),
                    last_seq=visible_last(int(last_seq), int(from_seq), until_seq)
                    if message_id is not None
                    else 0,
                    read_seq=int(read_seq),
                    unread=unread.get(conversation, 0),
                    last_message=views.get(message_id) if message_id is not None else None,
                    group_name=names.get(conversation, "") if is_group else None,
                    member=until_seq is None,
                    presence=dict(presence[peer]) if peer in presence else None,
                )
            )
        return page, more

    def mark_read(self, *, user: str, conversation: str, seq: int, now: float, ref: str) -> ReadChange:
        with self._tx() as conn:
            row = _MEMBER_ROW.first(conn, {"b_user": user, "b_conversation": conversation})
            if row is None:
                raise not_in_conversation(conversation)
            read_seq, from_seq, last_seq = int(row[0]), int(row[1]), int(row[3])
            until_seq = None if row[2] is None else int(row[2])
            seen = visible_last(last_seq, from_seq, until_seq) or from_seq
            target = min(seq, max(seen, read_seq))  # never past what the user can have seen
            items = advance_reads(conn, {(user, conversation): target}, now, ref)
            if not items:
                return ReadChange(changed=False)
            return ReadChange(changed=True, entries=self._append_many(conn, items, now))

    def typing_audience(self, *, user: str, group: str) -> list[str]:
        with self._tx() as conn:
            return message_targets(group, user, self._members(conn, group))
