"""Blocking in the SQL store (the rule: ``rules.blocks``).

The lookups other concerns make are functions on a connection (``blocked_pairs``,
``blocked_by``), so that messages, receipts, groups, contacts and profiles use them in their own
transactions: one statement for a batch of 1-on-1 messages or receipts, by the ``blocks`` primary
key.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, delete, insert, select

from workers.errors import UnknownUser
from workers.stores.records import BlockChange
from workers.stores.rules.blocks import blocked_pairs as pairs_found
from workers.stores.rules.blocks import blocking_event, check_block
from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import block_commands, blocks
from workers.stores.sql.schema import users as accounts

__all__ = ["SqlBlocks", "blocked_by", "blocked_pairs"]

# built once: it runs for every batch of 1-on-1 messages and receipts (see driver)
_BLOCKS_AMONG = Statement(
    select(blocks.c.blocker_id, blocks.c.blocked_id).where(
        blocks.c.blocker_id.in_(bindparam("b_blockers", expanding=True)),
        blocks.c.blocked_id.in_(bindparam("b_blocked", expanding=True)),
    )
)


def blocked_pairs(conn: Connection, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which ``(blocker, blocked)`` of ``pairs`` are blocks: one statement for all of them."""
    wanted = set(pairs)
    if not wanted:
        return set()
    blockers = sorted({a for a, _ in wanted})
    targets = sorted({b for _, b in wanted})
    rows = _BLOCKS_AMONG.all(conn, {"b_blockers": blockers, "b_blocked": targets})
    return pairs_found(wanted, [(row[0], row[1]) for row in rows])


def blocked_by(conn: Connection, blocker: str) -> set[str]:
    """Everyone ``blocker`` blocks."""
    return set(conn.scalars(select(blocks.c.blocked_id).where(blocks.c.blocker_id == blocker)))


class SqlBlocks(SqlBase):
    def set_block(self, *, user: str, target: str, blocked: bool, ref: str, now: float) -> BlockChange:
        check_block(user, target)
        with self._tx() as conn:
            if conn.execute(select(accounts.c.id).where(accounts.c.id == target)).first() is None:
                raise UnknownUser(target)
            seen = select(block_commands.c.command_id).where(
                block_commands.c.user_id == user, block_commands.c.command_id == ref
            )
            present = bool(blocked_pairs(conn, [(user, target)]))
            if present == blocked or conn.execute(seen).first() is not None:
                return BlockChange(changed=False)
            conn.execute(insert(block_commands).values(user_id=user, command_id=ref))
            if blocked:
                conn.execute(insert(blocks).values(blocker_id=user, blocked_id=target, created_at=now))
            else:
                conn.execute(delete(blocks).where(blocks.c.blocker_id == user, blocks.c.blocked_id == target))
            event = blocking_event(user, target, blocked=blocked, ref=ref, now=now)
            return BlockChange(changed=True, entries=self._append_many(conn, [event], now))

    def blocked_users(self, user: str) -> list[str]:
        with self._tx() as conn:
            return list(
                conn.scalars(
                    select(blocks.c.blocked_id)
                    .where(blocks.c.blocker_id == user)
                    .order_by(blocks.c.created_at, blocks.c.blocked_id)
                )
            )

    def is_blocked(self, blocker: str, blocked: str) -> bool:
        with self._tx() as conn:
            return bool(blocked_pairs(conn, [(blocker, blocked)]))
