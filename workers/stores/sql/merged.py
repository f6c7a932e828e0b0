"""PostgreSQL: the steps of a batch of chat commands in fewer statements.

On PostgreSQL a batch of commands waits for its statements one after another, each a round trip
that the server also parses, binds and runs on its own (benchmarks/RESULTS.md). Here the
statements of a step that do not need each other's answers are one statement:

- a batch of texts reads before it writes: the conversations' seqs (locked and bumped), their
  disappearing-message timers and the recipients' blocks, as one ``SELECT`` over a
  data-modifying CTE (:func:`text_reads`);
- then writes the messages, their search index entries and their receipts, bumps the inbox
  cursors of the users with an event and writes the inbox entries, as one statement of CTEs
  (:func:`text_writes`): the entries are numbered from the bumped cursors in SQL, as
  ``number_entries`` numbers them in Python, each cursor written into its event's JSON;
- a batch of receipts of 1-on-1 messages moves their statuses, bumps the inbox cursors and writes
  the entries of the events it plans as one statement (:func:`move_and_append`), the statuses
  having been read first.

Each has two forms (:class:`ByKeys`): the rows a batch bumps are locked in key order first, as
``Counters.add`` does, unless there is one.

A data-modifying CTE runs once, to completion, whether the main query reads it or not, with the
same snapshot as the rest of the statement; the foreign keys of rows inserted by one CTE that
refer to another's are checked at the statement's end. SQLite runs each statement in the process,
with no round trip to save, and keeps the separate statements.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence, Sized
from typing import Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Connection,
    Float,
    String,
    Text,
    Update,
    bindparam,
    cast,
    column,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import TextClause

from client_sdk.contract import VERSION
from workers.events import dumps
from workers.stores.records import InboxEntry, InboxItem
from workers.stores.rules.blocks import blocked_pairs as pairs_found
from workers.stores.rules.inbox import events_per_user
from workers.stores.sql.base import NotInOneGo, lock_and_bump, numbered
from workers.stores.sql.driver import Params, Statement
from workers.stores.sql.schema import blocks, conversation_timers, conversations, inbox, users

__all__ = [
    "TEXT_READS",
    "ByKeys",
    "inserts_and_append",
    "move_and_append",
    "move_then_append",
    "text_reads",
    "text_writes",
]

_SEQS, _TIMER, _BLOCK = 0, 1, 2
"""The kinds of row ``TEXT_READS`` answers."""


class ByKeys:
    """A merged statement in two forms, by the number of rows it bumps (``lock_and_bump``): one
    row alone, or several locked in key order first (a sort and a lock of each row, which one row
    does not need)."""

    def __init__(self, build: Callable[[bool], ClauseElement]) -> None:
        """``build(lock)``: the statement, its rows locked in key order first or not."""
        self.one = Statement(build(False), binary=True)
        self.many = Statement(build(True), binary=True)

    def of(self, keys: Sized) -> Statement:
        return self.many if len(keys) > 1 else self.one


def _text_reads(lock: bool) -> ClauseElement:
    bumped = lock_and_bump(conversations, "last_seq", lock=lock).cte("bumped")
    timer = conversation_timers.c
    return union_all(
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
    )


TEXT_READS = ByKeys(_text_reads)


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
    for kind, key, other, value in TEXT_READS.of(keys).all(conn, params):
        if kind == _SEQS:
            last[key] = int(value)
        elif kind == _TIMER:
            timers[key] = int(value)
        else:
            found.append((key, other))
    return last, timers, pairs_found(set(pairs), found)


def _entries(bumped: CTE) -> CTE:
    """The inbox entries given as arrays (``_entry_params``), each user's numbered on from its
    cursor before the bump (``bumped``: the new cursors) in the order given, the cursor written
    into each event's JSON between its two halves: what ``number_entries`` and ``dumps`` make of
    them in Python. Entries of a user missing from ``bumped`` (no such user) are not written; the
    caller raises UnknownUser, undoing it all."""
    given = (
        func.unnest(
            cast(bindparam("e_users"), ARRAY(String)),
            cast(bindparam("e_kinds"), ARRAY(String)),
            cast(bindparam("e_messages"), ARRAY(String)),
            cast(bindparam("e_heads"), ARRAY(Text)),
            cast(bindparam("e_tails"), ARRAY(Text)),
        )
        .table_valued(
            column("user_id", String),
            column("kind", String),
            column("message_id", String),
            column("head", Text),
            column("tail", Text),
            with_ordinality="ord",
        )
        .render_derived(name="e")
    )
    numbered = (
        select(
            given.c.user_id,
            given.c.kind,
            given.c.message_id,
            given.c.head,
            given.c.tail,
            (
                bumped.c.inbox_seq
                - func.count().over(partition_by=given.c.user_id)
                + func.row_number().over(partition_by=given.c.user_id, order_by=given.c.ord)
            ).label("cursor"),
        )
        .join(bumped, bumped.c.id == given.c.user_id)
        .subquery("numbered")
    )
    rows = select(
        numbered.c.user_id,
        numbered.c.cursor,
        numbered.c.kind,
        numbered.c.message_id,
        numbered.c.head.concat(cast(numbered.c.cursor, Text)).concat(numbered.c.tail),
        cast(bindparam("e_now"), Float),
    )
    columns = ["user_id", "cursor", "kind", "message_id", "payload", "created_at"]
    return insert(inbox).from_select(columns, rows).cte("new_entries")


def _entry_params(items: Sequence[InboxItem], now: float) -> dict[str, Any]:
    """The arrays of ``_entries``: each event's JSON as ``dumps`` writes it with its cursor, in
    two halves, before and after the cursor's digits. NotInOneGo for an event whose body has a
    key of the envelope (its JSON would not split there)."""
    heads: list[str] = []
    tails: list[str] = []
    for _user, kind, _message_id, body in items:
        if _ENVELOPE.intersection(body):
            raise NotInOneGo("an event that names an envelope key")
        head = _HEADS.get(kind)
        if head is None:
            head = _HEADS[kind] = dumps({"v": VERSION, "type": kind, "cursor": 0})[:-2]
        text = dumps({"v": VERSION, "type": kind, "cursor": 0, **body})
        heads.append(head)
        tails.append(text[len(head) + 1 :])
    return {
        "e_users": [item[0] for item in items],
        "e_kinds": [item[1] for item in items],
        "e_messages": [item[2] for item in items],
        "e_heads": heads,
        "e_tails": tails,
        "e_now": float(now),
    }


_ENVELOPE = frozenset(("v", "type", "cursor"))
_HEADS: dict[str, str] = {}
"""Each kind's JSON up to its cursor's digits: ``{"v":1,"type":"message","cursor":``."""


def _written(
    conn: Connection, statement: ByKeys, params: Params, items: Sequence[InboxItem], now: float
) -> tuple[set[str], list[InboxEntry]]:
    """Run ``statement`` (inbox cursors' bump and entries merged with other writes) for ``items``:
    the keys its other part returned (rows with no cursor), and the entries as written."""
    counts = events_per_user(items)
    keys = sorted(counts)
    given = {**params, "b_keys": keys, "b_counts": [counts[key] for key in keys], **_entry_params(items, now)}
    returned: set[str] = set()
    last: dict[str, int] = {}
    for key, value in statement.of(keys).all(conn, given):
        if value is None:
            returned.add(key)
        else:
            last[key] = int(value)
    return returned, numbered(items, last)


def inserts_and_append(*inserts: ClauseElement) -> ByKeys:
    """The inserts (Core or textual, of distinct parameter names), then the inbox cursors' lock and
    bump, then the inbox entries, as one statement (see :func:`text_writes`)."""

    def build(lock: bool) -> ClauseElement:
        ctes = [(part.columns() if isinstance(part, TextClause) else part).cte() for part in inserts]  # type: ignore[attr-defined]
        bumped = lock_and_bump(users, "inbox_seq", lock=lock).cte("bumped")
        return select(bumped.c.id, bumped.c.inbox_seq).add_cte(*ctes, bumped, _entries(bumped))

    return ByKeys(build)


def text_writes(
    conn: Connection, statement: ByKeys, params: Params, items: Sequence[InboxItem], now: float
) -> list[InboxEntry]:
    """Run ``statement`` (of :func:`inserts_and_append`) with the inserts' ``params`` and the
    events ``items``: their entries. An ``IntegrityError`` of an insert (a resend, an unknown
    recipient) undoes it all, as with the separate statements."""
    return _written(conn, statement, params, items, now)[1]


def move_then_append(move: Update) -> ByKeys:
    """``move`` (an ``UPDATE ... RETURNING`` one column), then the inbox cursors' lock and bump, then
    the inbox entries, as one statement (see :func:`move_and_append`). The moves come first, then
    the cursors' locks: the order of the separate statements."""

    def build(lock: bool) -> ClauseElement:
        moved = move.cte("moved")
        bumped = lock_and_bump(users, "inbox_seq", lock=lock).cte("bumped")
        return union_all(
            select(moved.c[0], cast(null(), BigInteger)),
            select(bumped.c.id, bumped.c.inbox_seq),
        ).add_cte(_entries(bumped))

    return ByKeys(build)


def move_and_append(
    conn: Connection, statement: ByKeys, params: Params, items: Sequence[InboxItem], now: float
) -> tuple[set[str], list[InboxEntry]]:
    """Run ``statement`` (of :func:`move_then_append`) with the move's ``params`` and the events
    ``items``: the keys the move returned, and the entries."""
    return _written(conn, statement, params, items, now)
