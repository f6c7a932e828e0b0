"""PostgreSQL: the steps of a batch of chat commands in fewer statements.

On PostgreSQL a batch of commands waits for its statements one after another, each a round trip
that the server also parses, binds and runs on its own (benchmarks/RESULTS.md). Here the
statements of a step that do not need each other's answers are one statement:

- a batch of texts reads before it writes: the conversations' seqs (locked and bumped), their
  disappearing-message timers and the recipients' blocks, as one ``SELECT`` over a
  data-modifying CTE (:func:`text_reads`);
- then writes the messages, their search index entries and their receipts, and bumps the inbox
  cursors of the users with an event, as one ``UPDATE`` with the inserts as CTEs
  (:func:`text_writes`); the inbox entries, which need those cursors, follow;
- a batch of receipts of 1-on-1 messages moves their statuses and bumps the inbox cursors of the
  events it plans as one statement (:func:`move_and_bump`), the statuses having been read first.

A data-modifying CTE runs once, to completion, whether the main query reads it or not, with the
same snapshot as the rest of the statement; the foreign keys of rows inserted by one CTE that
refer to another's are checked at the statement's end. SQLite runs each statement in the process,
with no round trip to save, and keeps the separate statements.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    String,
    Update,
    bindparam,
    cast,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause

from workers.stores.rules.blocks import blocked_pairs as pairs_found
from workers.stores.sql.base import lock_and_bump
from workers.stores.sql.driver import Params, Statement
from workers.stores.sql.schema import blocks, conversation_timers, conversations, users

__all__ = ["TEXT_READS", "inserts_and_bump", "move_and_bump", "move_then_bump", "text_reads", "text_writes"]

_SEQS, _TIMER, _BLOCK = 0, 1, 2
"""The kinds of row ``_TEXT_READS`` answers."""


def _text_reads() -> Statement:
    bumped = lock_and_bump(conversations, "last_seq").cte("bumped")
    timer = conversation_timers.c
    return Statement(
        union_all(
            select(literal_column(str(_SEQS)), bumped.c.id, cast(null(), String), bumped.c.last_seq),
            select(
                literal_column(str(_TIMER)),
                timer.conversation_id,
                cast(null(), String),
                cast(timer.seconds, BigInteger),
            ).where(timer.conversation_id.in_(bindparam("t_ids", expanding=True))),
            select(
                literal_column(str(_BLOCK)),
                blocks.c.blocker_id,
                blocks.c.blocked_id,
                cast(null(), BigInteger),
            ).where(
                blocks.c.blocker_id.in_(bindparam("b_blockers", expanding=True)),
                blocks.c.blocked_id.in_(bindparam("b_blocked", expanding=True)),
            ),
        ),
        binary=True,
    )


TEXT_READS = _text_reads()


def text_reads(
    conn: Connection, counts: Mapping[str, int], pairs: Collection[tuple[str, str]]
) -> tuple[dict[str, int], dict[str, int], set[tuple[str, str]]]:
    """Bump each conversation's seq by its count (rows locked in key order, as ``Counters.add``),
    and read the timers of the conversations and which ``(blocker, blocked)`` of ``pairs`` are
    blocks: each existing conversation's new last seq, the timers that are on (seconds), the
    blocks."""
    keys = sorted(counts)
    params = {
        "b_keys": keys,
        "b_counts": [counts[key] for key in keys],
        "t_ids": keys,
        "b_blockers": sorted({a for a, _ in pairs}),
        "b_blocked": sorted({b for _, b in pairs}),
    }
    last: dict[str, int] = {}
    timers: dict[str, int] = {}
    found: list[tuple[str, str]] = []
    for kind, key, other, value in TEXT_READS.all(conn, params):
        if kind == _SEQS:
            last[key] = int(value)
        elif kind == _TIMER:
            timers[key] = int(value)
        else:
            found.append((key, other))
    return last, timers, pairs_found(set(pairs), found)


def _bump_params(counts: Mapping[str, int]) -> dict[str, list[Any]]:
    keys = sorted(counts)
    return {"b_keys": keys, "b_counts": [counts[key] for key in keys]}


def inserts_and_bump(*inserts: ClauseElement) -> Statement:
    """The inserts (Core or textual, of distinct parameter names), then the inbox cursors' lock and
    bump, as one statement (see :func:`text_writes`)."""
    ctes = [(part.columns() if isinstance(part, TextClause) else part).cte() for part in inserts]  # type: ignore[attr-defined]
    return Statement(lock_and_bump(users, "inbox_seq").add_cte(*ctes), binary=True)


def text_writes(
    conn: Connection, statement: Statement, params: Params, counts: Mapping[str, int]
) -> dict[str, int]:
    """Run ``statement`` (of :func:`inserts_and_bump`) with the inserts' ``params``, bumping the
    inbox cursors by ``counts``: each existing user's new cursor. An ``IntegrityError`` of an
    insert (a resend, an unknown recipient) undoes it all, as with the separate statements."""
    return {row[0]: int(row[1]) for row in statement.all(conn, {**params, **_bump_params(counts)})}


def move_then_bump(move: Update) -> Statement:
    """``move`` (an ``UPDATE ... RETURNING`` one column), then the inbox cursors' lock and bump,
    as one statement (see :func:`move_and_bump`). The moves come first, then the cursors' locks:
    the order of the separate statements."""
    moved = move.cte("moved")
    bumped = lock_and_bump(users, "inbox_seq").cte("bumped")
    return Statement(
        union_all(
            select(moved.c[0], cast(null(), BigInteger)),
            select(bumped.c.id, bumped.c.inbox_seq),
        ),
        binary=True,
    )


def move_and_bump(
    conn: Connection, statement: Statement, params: Params, counts: Mapping[str, int]
) -> tuple[set[str], dict[str, int]]:
    """Run ``statement`` (of :func:`move_then_bump`) with the move's ``params``, bumping the inbox
    cursors by ``counts``: the keys the move returned, and each existing user's new cursor."""
    moved: set[str] = set()
    last: dict[str, int] = {}
    for key, value in statement.all(conn, {**params, **_bump_params(counts)}):
        if value is None:
            moved.add(key)
        else:
            last[key] = int(value)
    return moved, last
