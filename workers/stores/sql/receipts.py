"""Receipts in the SQL store: statuses move forward for many messages at once.

A ``receipt`` command names up to hundreds of messages (a client acknowledges a whole sync page).
They are applied set-based: one read of the recipient's receipt rows, one ``UPDATE ... WHERE
message_id IN (...)`` that only moves statuses forward, and the events for the senders appended
in one multi-row insert, in the order the command named the messages. A batch's members' receipts
of one group message reach its sender as one event per status (``rules.receipts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Update, bindparam, case, func, select, update
from sqlalchemy.sql.elements import BindParameter

from client_sdk.contract import Status, is_group_id
from workers.stores.records import InboxEntry, InboxItem, ReceiptRequest, ReceiptResult
from workers.stores.rules.blocks import unblocked_items
from workers.stores.rules.privacy import effective_read_status
from workers.stores.rules.receipts import merge_group_receipts, receipt_events
from workers.stores.sql.base import NotInOneGo, SqlBase
from workers.stores.sql.blocks import blocked_pairs
from workers.stores.sql.chat_rows import advance_reads
from workers.stores.sql.driver import Statement
from workers.stores.sql.merged import move_and_append, move_then_append
from workers.stores.sql.privacy_data import read_receipts_off
from workers.stores.sql.schema import blocks, messages, receipts

__all__ = ["SqlReceipts"]

_ROW = (
    receipts.c.message_id,
    receipts.c.status,
    messages.c.sender_id,
    messages.c.conversation_id,
    messages.c.seq,
    messages.c.recipient_id,
)
_ROWS = Statement(
    select(*_ROW)
    .join(messages, messages.c.id == receipts.c.message_id)
    .where(
        receipts.c.user_id == bindparam("b_user"),
        receipts.c.message_id.in_(bindparam("b_ids", expanding=True)),
    )
)
_LOCK_MESSAGES = Statement(
    select(messages.c.id)
    .where(messages.c.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(messages.c.id)
    .with_for_update()
)
# The statements that name messages but not the user start from ``messages`` (its primary key:
# the planner knows each id is one row, statistics or not) and probe ``pk_receipts`` per message.
# Written as ``receipts.message_id IN (...)``, a table never analyzed (a fresh database before
# autovacuum first runs) has no statistics of ``message_id``: the planner took each id for 0.5% of
# the table and scanned all of it (tests/stores/test_sql_hot_plans.py).
_LOWEST = Statement(
    select(messages.c.id, func.min(receipts.c.status))
    .join(receipts, receipts.c.message_id == messages.c.id)
    .where(messages.c.id.in_(bindparam("b_ids", expanding=True)))
    .group_by(messages.c.id)
)


# Whether each receipt's user blocks the message's sender, read with the rows: the events of a
# batch of receipts go to the messages' senders, and this was a lookup of its own per batch.
_BLOCKS_SENDER = (
    select(blocks.c.blocker_id)
    .where(blocks.c.blocker_id == receipts.c.user_id, blocks.c.blocked_id == messages.c.sender_id)
    .exists()
)
_ROWS_OF_MESSAGES = Statement(  # 1-on-1 messages: their one receipt is their recipient's
    # found by the receipts' primary key, which PostgreSQL uses even without statistics
    select(*_ROW, receipts.c.user_id, _BLOCKS_SENDER)
    .select_from(messages)
    .join(
        receipts,
        (receipts.c.message_id == messages.c.id) & (receipts.c.user_id == messages.c.recipient_id),
    )
    .where(messages.c.id.in_(bindparam("b_ids", expanding=True)))
)
_ROWS_OF_GROUP_MESSAGES = Statement(  # every member's receipt of the messages
    # (without statistics PostgreSQL hashes this join over a scan of ``receipts``: only the batches
    # with group messages ask it, and the store analyzes its tables as they grow)
    select(*_ROW, receipts.c.user_id, _BLOCKS_SENDER)
    .select_from(messages)
    .join(receipts, receipts.c.message_id == messages.c.id)
    .where(messages.c.id.in_(bindparam("b_ids", expanding=True)))
)


def _move(status: Status, *, of_user: bool = True, one: bool = False) -> Update:
    """``UPDATE`` the user's receipts of the messages to ``status`` where they are below it, returning
    the ids that moved (another device of the user may have just moved some). ``of_user`` False:
    the receipt of each message's recipient (1-on-1 messages, each with its recipient's only),
    found through ``messages`` (see ``_LOWEST``). ``one``: the user's receipt of one message
    (``b_id``), for ``executemany``, returning nothing."""
    values: dict[str, Any] = {"status": int(status)}
    if status == Status.DELIVERED:
        values["delivered_at"] = bindparam("b_now")
    elif status == Status.READ:
        values["delivered_at"] = case(
            (receipts.c.status < int(Status.DELIVERED), bindparam("b_now")), else_=receipts.c.delivered_at
        )
        values["read_at"] = bindparam("b_now")
    if one:
        return (
            update(receipts)
            .where(
                receipts.c.message_id == bindparam("b_id"),
                receipts.c.user_id == bindparam("b_user"),
                receipts.c.status < int(status),
            )
            .values(**values)
        )
    ids: BindParameter[Any] = bindparam("b_ids", expanding=True)
    whose = (
        (receipts.c.user_id == bindparam("b_user"), receipts.c.message_id.in_(ids))
        if of_user
        else (
            messages.c.id.in_(ids),
            receipts.c.message_id == messages.c.id,
            receipts.c.user_id == messages.c.recipient_id,
        )
    )
    return (
        update(receipts)
        .where(*whose, receipts.c.status < int(status))
        .values(**values)
        .returning(receipts.c.message_id)
    )


_MOVED = (Status.DELIVERED, Status.READ)
_MOVE = {status: Statement(_move(status)) for status in _MOVED}
_MOVE_MESSAGES = {status: Statement(_move(status, of_user=False)) for status in _MOVED}
_MOVE_ONE = {status: Statement(_move(status, one=True)) for status in _MOVED}
_MOVE_MESSAGES_AND_APPEND = {status: move_then_append(_move(status, of_user=False)) for status in _MOVED}
"""PostgreSQL: ``_MOVE_MESSAGES``, the inbox cursors' bump and the entries as one statement (see
merged)."""


class _Tally:
    """How many recipients of each group message are at each status, to tell its lowest status
    as a batch's receipts move them one by one, without reading them again."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._counts: dict[str, list[int]] = {}
        for row in rows:  # rows of _ROWS_OF_MESSAGES
            counts = self._counts.get(row[0])
            if counts is None:
                counts = self._counts[row[0]] = [0] * (max(Status) + 1)
            counts[row[1]] += 1

    def lowest(self, message_id: str) -> int:
        counts = self._counts[message_id]
        return next(status for status in _STATUSES if counts[status])

    def move(self, message_id: str, before: int, after: int) -> None:
        counts = self._counts[message_id]
        counts[before] -= 1
        counts[after] += 1


_STATUSES = tuple(int(status) for status in sorted(Status))


def _events(
    row: Any, user: str, status: Status, now: float, floor_before: int, floor_after: int
) -> list[InboxItem]:
    """The ``receipt`` events for the sender of the message of ``row`` (a row of ``_ROW``) that
    ``user`` moved to ``status``, its recipients' lowest status going from ``floor_before`` to
    ``floor_after``."""
    message_id, _, sender, conversation, seq = row[:5]
    return receipt_events(
        sender=sender,
        message_id=message_id,
        conversation=conversation,
        seq=int(seq),
        by=user,
        now=now,
        status=status,
        floor_before=floor_before,
        floor_after=floor_after,
    )


def _by_privacy(conn: Connection, user: str, status: Status, todo: list[Any]) -> dict[Status, list[Any]]:
    """``todo`` (rows of ``_ROW``) by the status ``user``'s receipt moves each to: a ``read`` of a
    1-on-1 message is ``delivered`` when its reader or sender turned read receipts off
    (rules.privacy; only ``read`` receipts of 1-on-1 messages read the settings, in one look-up)."""
    if not todo:
        return {}
    direct = [row for row in todo if not is_group_id(row[5])]
    if status != Status.READ or not direct:
        return {status: todo}
    off = read_receipts_off(conn, {user, *(row[2] for row in direct)})
    if not off:
        return {status: todo}
    out: dict[Status, list[Any]] = {}
    for row in todo:
        moved_to = effective_read_status(
            status, group=is_group_id(row[5]), reader=user, sender=row[2], off=off
        )
        if row[1] < moved_to:
            out.setdefault(moved_to, []).append(row)
    return out


def _receipts_off_of(
    conn: Connection, requests: Sequence[ReceiptRequest], named: list[list[str]], found: dict[str, Any]
) -> set[str]:
    """Who among the readers and senders of the batch's ``read`` receipts of 1-on-1 messages
    turned them off (group messages always get them): one look-up for the batch, none when it
    holds no such receipt. ``found``: a row of ``_ROW`` of each message."""
    users: set[str] = set()
    for request, ids in zip(requests, named, strict=True):
        if request.status == Status.READ:
            senders = {found[m][2] for m in ids if m in found and not is_group_id(found[m][5])}
            if senders:
                users.add(request.user)
                users.update(senders)
    return read_receipts_off(conn, users)


def _unblocked(
    conn: Connection,
    given: list[tuple[str, list[InboxItem]]],
    known: Mapping[tuple[str, str], bool] | None = None,
) -> list[list[InboxItem]]:
    """Each ``(giver, events)`` without the events for senders the giver blocks (``rules.blocks``):
    one lookup for all of them, none when there are no events or ``known`` (``(blocker,
    blocked)``: whether it is a block, read with the rows) has every pair."""
    pairs = {(user, item[0]) for user, items in given for item in items}
    known = known or {}
    # a reader's own ``read`` events: nobody blocks themselves (rules.blocks refuses it)
    unknown = {pair for pair in pairs if pair not in known and pair[0] != pair[1]}
    blocked = blocked_pairs(conn, unknown) if unknown else set()
    blocked.update(pair for pair in pairs if known.get(pair))
    if not blocked:
        return [items for _, items in given]
    return [unblocked_items(items, user, {b for a, b in blocked if a == user}) for user, items in given]


def _batch_rows(conn: Connection, every: list[str]) -> list[Any]:
    """The receipt rows (of ``_ROWS_OF_MESSAGES``) of the messages ``every``: a 1-on-1 message's
    recipient's, every member's of a group message."""
    rows = _ROWS_OF_MESSAGES.all(conn, {"b_ids": every})
    one_to_one = {row[0] for row in rows}
    others = [message_id for message_id in every if message_id not in one_to_one]
    if others:  # group messages (or unknown ids): their members' receipts
        rows += _ROWS_OF_GROUP_MESSAGES.all(conn, {"b_ids": others})
    group = sorted({row[0] for row in rows if is_group_id(row[5])})
    if group and conn.dialect.name != "sqlite":
        # members' receipts may be applied by several workers at once: with the messages' row
        # locks taken (in id order), read their statuses again, as they are now, so that
        # exactly one of the workers sees a status complete (SQLite has one writer at a time)
        _LOCK_MESSAGES.all(conn, {"b_ids": group})
        rows = [row for row in rows if not is_group_id(row[5])]
        rows += _ROWS_OF_GROUP_MESSAGES.all(conn, {"b_ids": group})
    return rows


def _moved_and_appended(
    conn: Connection, moving: dict[Status, list[tuple[str, str, bool]]], items: list[InboxItem], now: float
) -> list[InboxEntry]:
    """PostgreSQL: the moves of 1-on-1 messages to one status, the bump of the inbox cursors and
    the entries of ``items`` (their events, planned as if every move happens) as one statement.
    NotInOneGo (undoing it all) when a move did not happen: another device of the recipient was
    there first (the receipts are not locked)."""
    ((status, keys),) = moving.items()
    ids = [message_id for message_id, *_ in keys]
    params = {"b_ids": ids, "b_now": now}
    done, entries = move_and_append(conn, _MOVE_MESSAGES_AND_APPEND[status], params, items, now)
    if len(done) < len(ids):
        raise NotInOneGo("a status moved meanwhile")
    return entries


def _read_upto(user: str, rows: Sequence[Any]) -> dict[tuple[str, str], int]:
    """``(user, conversation)`` -> the highest seq among the messages of ``rows`` (rows of
    ``_ROW``) that ``user`` read."""
    upto: dict[tuple[str, str], int] = {}
    for row in rows:
        key, seq = (user, row[3]), int(row[4])
        if seq > upto.get(key, 0):
            upto[key] = seq
    return upto


class SqlReceipts(SqlBase):
    def apply_receipts(
        self, *, user: str, status: Status, message_ids: Sequence[str], now: float
    ) -> ReceiptResult:
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return ReceiptResult()
        with self._tx() as conn:
            found = {row[0]: row for row in _ROWS.all(conn, {"b_user": user, "b_ids": ids})}
            refused = [m for m in message_ids if m not in found]
            # statuses only move forward
            todo = [found[m] for m in ids if m in found and found[m][1] < status]
            items: list[InboxItem] = []
            for moved_to, rows in _by_privacy(conn, user, status, todo).items():
                items += self._advance(conn, user, moved_to, rows, now)
            if status == Status.READ and todo:  # the reader's own devices, whatever their privacy
                items += advance_reads(conn, _read_upto(user, todo), now)
            items = _unblocked(conn, [(user, items)])[0]
            entries = self._append_many(conn, items, now) if items else []
        return ReceiptResult(entries=entries, not_recipient=refused)

    def apply_receipts_of(
        self, requests: Sequence[ReceiptRequest], *, now: float
    ) -> list[ReceiptResult] | None:
        # One read, one UPDATE per status and one inbox append for all of them, instead of four
        # statements and a savepoint per command; anything unusual undoes it all (None). The
        # delivered receipts of a group message come from every member at once: one by one, each
        # read the statuses of every member twice, so a group of n cost n² row reads a message.
        named = [list(dict.fromkeys(request.message_ids)) for request in requests]
        every = list(dict.fromkeys(message_id for ids in named for message_id in ids))
        if not every:
            return None
        try:
            with self._tx() as conn:
                return self._apply_together(conn, requests, named, every, now)
        except NotInOneGo:
            return None

    def _apply_together(
        self,
        conn: Connection,
        requests: Sequence[ReceiptRequest],
        named: list[list[str]],
        every: list[str],
        now: float,
    ) -> list[ReceiptResult]:
        rows = _batch_rows(conn, every)
        found = {(row[0], row[6]): row for row in rows}
        message_row = {row[0]: row for row in rows}
        current = {key: int(row[1]) for key, row in found.items()}
        tally = _Tally(row for row in rows if is_group_id(row[5]))
        off = _receipts_off_of(conn, requests, named, message_row)
        moving: dict[Status, list[tuple[str, str, bool]]] = {}
        planned: list[list[tuple[Status, tuple[str, str], list[InboxItem]]]] = []
        for request, ids in zip(requests, named, strict=True):
            user = request.user
            mine: list[tuple[Status, tuple[str, str], list[InboxItem]]] = []
            for message_id in ids:
                key = (message_id, user)
                row = found.get(key)
                if row is None:
                    raise NotInOneGo("not a message to this user")
                in_group = is_group_id(row[5])
                status = effective_read_status(
                    request.status, group=in_group, reader=user, sender=row[2], off=off
                )
                before = current[key]
                if before >= status:  # statuses only move forward
                    continue
                current[key] = int(status)
                if in_group:
                    floor_before = tally.lowest(message_id)
                    tally.move(message_id, before, int(status))
                    floor_after = tally.lowest(message_id)
                else:  # a 1-on-1 message: its recipient's status is its lowest
                    floor_before, floor_after = before, int(status)
                moving.setdefault(status, []).append((message_id, user, in_group))
                mine.append((status, key, _events(row, user, status, now, floor_before, floor_after)))
            planned.append(mine)
        # PostgreSQL, one status of 1-on-1 messages: the moves as planned, sent with the inbox
        # cursors' bump and entries as one statement once the events are known (undone if one
        # did not move)
        together = (
            not self._sqlite and len(moving) == 1 and not any(g for keys in moving.values() for *_, g in keys)
        )
        if together:
            moved = {status: {(m, u) for m, u, _ in keys} for status, keys in moving.items()}
        else:
            moved = self._move_together(conn, moving, now)
        per_request = [
            [item for status, key, items in mine if key in moved[status] for item in items]
            for mine in planned
        ]
        if any(request.status == Status.READ for request in requests):  # the readers' own devices
            self._reads_together(conn, requests, named, message_row, per_request, now)
        blocks_known = {(row[6], row[2]): bool(row[7]) for row in rows}
        givers = (r.user for r in requests)
        per_request = _unblocked(conn, list(zip(givers, per_request, strict=True)), blocks_known)
        per_request = merge_group_receipts(per_request)
        items = [item for items in per_request for item in items]
        if together:
            entries = _moved_and_appended(conn, moving, items, now)
        else:
            entries = self._append_many(conn, items, now)
        results = []
        start = 0
        for items in per_request:
            results.append(ReceiptResult(entries=entries[start : start + len(items)]))
            start += len(items)
        return results

    @staticmethod
    def _move_together(
        conn: Connection, moving: dict[Status, list[tuple[str, str, bool]]], now: float
    ) -> dict[Status, set[tuple[str, str]]]:
        """Store the moves ``(message, user, in a group)``, lower statuses first (a message
        delivered and read in one batch), and say which did move. A 1-on-1 message's move may find
        another device of its recipient there first (it is not locked; RETURNING says); a group
        message's statuses were read under its lock, so its moves are exactly those planned."""
        moved: dict[Status, set[tuple[str, str]]] = {}
        for status in sorted(moving):
            keys = moving[status]
            direct = [message_id for message_id, _, in_group in keys if not in_group]
            done = {(m, u) for m, u, in_group in keys if in_group}
            if done:
                _MOVE_ONE[status].execute_many(
                    conn, [{"b_user": u, "b_id": m, "b_now": now} for m, u in sorted(done)]
                )
            if direct:
                by_id = {m: u for m, u, in_group in keys if not in_group}
                params = {"b_ids": direct, "b_now": now}
                done.update((m, by_id[m]) for m in _MOVE_MESSAGES[status].scalars(conn, params))
            moved[status] = done
        return moved

    @staticmethod
    def _reads_together(
        conn: Connection,
        requests: Sequence[ReceiptRequest],
        named: list[list[str]],
        found: dict[str, tuple[Any, ...]],
        per_request: list[list[InboxItem]],
        now: float,
    ) -> None:
        """The read positions the batch's read receipts move, in one go, each ``read`` event
        after the receipts of the command that moved it."""
        wanted: dict[tuple[str, str], int] = {}
        owner: dict[tuple[str, str], int] = {}
        for index, (request, ids) in enumerate(zip(requests, named, strict=True)):
            if request.status != Status.READ:
                continue
            # every message read, moved or not: with read receipts off the status stays delivered,
            # and the reader's own devices must still agree on what was read
            for key, seq in _read_upto(request.user, [found[m] for m in ids if m in found]).items():
                if seq > wanted.get(key, 0):
                    wanted[key], owner[key] = seq, index
        for item in advance_reads(conn, wanted, now):
            per_request[owner[item[0], item[3]["conversation"]]].append(item)

    def _advance(
        self, conn: Connection, user: str, status: Status, todo: list[Any], now: float
    ) -> list[InboxItem]:
        """Move the user's statuses of ``todo`` (receipt rows) and make the events for the senders;
        ``all`` once every recipient of a message is there."""
        # members' receipts for one message may be applied by several workers at once: take the
        # messages' row locks (in id order) so that exactly one of them sees a status complete
        group = sorted(row[0] for row in todo if is_group_id(row[5]))
        if group:
            _LOCK_MESSAGES.all(conn, {"b_ids": group})
        before = self._lowest(conn, group)
        params = {"b_user": user, "b_ids": [row[0] for row in todo], "b_now": now}
        moved = set(_MOVE[status].scalars(conn, params))
        after = self._lowest(conn, [m for m in group if m in moved])
        items: list[InboxItem] = []
        for row in todo:
            message_id = row[0]
            if message_id in moved:
                lowest = before.get(message_id, row[1]), after.get(message_id, int(status))
                items += _events(row, user, status, now, *lowest)
        return items

    @staticmethod
    def _lowest(conn: Connection, message_ids: list[str]) -> dict[str, int]:
        """The lowest status among each message's recipients."""
        if not message_ids:
            return {}
        return {row[0]: int(row[1]) for row in _LOWEST.all(conn, {"b_ids": message_ids})}
