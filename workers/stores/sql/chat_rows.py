"""The rows behind the chat list in the SQL store, written where conversations and groups change
(see chats): a membership row at a 1-on-1 conversation's first message and at group joins and
leaves, and read positions moved by read receipts and ``mark_read``, never anything per message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import Connection, bindparam, insert, select, update

from workers.stores.records import InboxItem
from workers.stores.rules.chats import read_items
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import chat_members, conversations

__all__ = ["advance_reads", "note_direct", "note_group_change"]

cm = chat_members
_READS = Statement(
    select(cm.c.user_id, cm.c.conversation_id, cm.c.read_seq).where(
        cm.c.user_id.in_(bindparam("b_users", expanding=True)),
        cm.c.conversation_id.in_(bindparam("b_conversations", expanding=True)),
    )
)
_MOVE_READ = Statement(
    update(cm)
    .where(
        cm.c.user_id == bindparam("b_user"),
        cm.c.conversation_id == bindparam("b_conversation"),
        cm.c.read_seq < bindparam("b_seq"),
    )
    .values(read_seq=bindparam("b_seq"))
)


def note_direct(conn: Connection, conversation: str, members: Iterable[str], now: float) -> None:
    """A 1-on-1 conversation's first message: both users' rows (each user's own chat only once)."""
    conn.execute(
        insert(cm),
        [
            {"user_id": user, "conversation_id": conversation, "read_seq": 0, "from_seq": 0, "joined_at": now}
            for user in dict.fromkeys(members)
        ],
    )


def note_group_change(conn: Connection, group: str, action: str, affected: Sequence[str], now: float) -> None:
    """Members joined (``created``, ``added``): they see the group's messages from now on; members
    went (``removed``, ``left``): they keep what they saw, up to now."""
    if action not in ("created", "added", "removed", "left") or not affected:
        return
    at = conn.execute(select(conversations.c.last_seq).where(conversations.c.id == group)).scalar() or 0
    if action in ("removed", "left"):
        conn.execute(
            update(cm)
            .where(cm.c.conversation_id == group, cm.c.user_id.in_(list(affected)))
            .values(until_seq=at)
        )
        return
    known = set(
        conn.execute(
            select(cm.c.user_id).where(cm.c.conversation_id == group, cm.c.user_id.in_(list(affected)))
        ).scalars()
    )
    if known:  # back in a group they had left: the messages of the time away stay unseen
        conn.execute(
            update(cm)
            .where(cm.c.conversation_id == group, cm.c.user_id.in_(sorted(known)))
            .values(from_seq=at, until_seq=None, joined_at=now)
        )
    new = [user for user in dict.fromkeys(affected) if user not in known]
    if new:
        conn.execute(
            insert(cm),
            [
                {"user_id": u, "conversation_id": group, "read_seq": at, "from_seq": at, "joined_at": now}
                for u in new
            ],
        )


def advance_reads(
    conn: Connection, wanted: Mapping[tuple[str, str], int], now: float, ref: str | None = None
) -> list[InboxItem]:
    """Move each ``(user, conversation)`` read position forward to its seq where it is behind, and
    the ``read`` events of those that moved (in the order of ``wanted``): one read and one
    ``executemany`` for all of them. A conversation without a row of the user's (one from before
    the chat list) is left alone."""
    if not wanted:
        return []
    current = {
        (row[0], row[1]): int(row[2])
        for row in _READS.all(
            conn,
            {
                "b_users": sorted({user for user, _ in wanted}),
                "b_conversations": sorted({conversation for _, conversation in wanted}),
            },
        )
    }
    moving = [(key, seq) for key, seq in wanted.items() if key in current and current[key] < seq]
    if not moving:
        return []
    _MOVE_READ.execute_many(
        conn,
        [{"b_user": user, "b_conversation": conv, "b_seq": seq} for (user, conv), seq in sorted(moving)],
    )
    items: list[InboxItem] = []
    for (user, conversation), seq in moving:
        items += read_items(user, [(conversation, seq)], now, ref)
    return items
