"""The store's per-message cost on its own: ``python -m benchmarks.store_micro [--messages N]``.

Sends ``N`` one-to-one messages through ``accept_message`` and marks each of them delivered
with ``apply_receipts``, both in batches of 50 calls (``--batch``; one ``store.batch()`` each, as
the commands process does), then ``N`` more stored together, as the pipeline stores a batch's
plain messages and receipts (``accept_texts``, ``apply_receipts_of``, a batch per call), on a
SQLite file in a temporary folder (or the database of ``--url``: PostgreSQL, whose backends' CPU
is printed too), and prints the milliseconds per message of each path, in wall time and in CPU
time of the process (SQLite runs inside it; the CPU figure is the steadier one on a busy machine).
Nothing else runs: the store's Python and database time alone. ``--batch 1`` shows what a
transaction of its own costs.

``--group-size M`` measures a group's fan-out instead: ``N`` messages to a group of ``M``, then
every member's ``delivered`` receipt of each, one by one (``apply_receipts``) and together
(``apply_receipts_of``), ``--batch`` receipts a store batch, in ms per group message.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.machine import describe
from benchmarks.procstat import StoreWatch
from client_sdk.contract import Status
from workers.stores import CommandStore, ReceiptRequest, TextSend, open_store

__all__: list[str] = []

_USERS = 100
_RUN = uuid.uuid4().hex[:6]
"""Users of this run (u<run>-<n>): a database of earlier runs keeps theirs."""


def _user(n: int) -> str:
    return f"u{_RUN}-{n % _USERS}"


def _sends(store: CommandStore, count: int, first: int, batch: int) -> list[tuple[str, str]]:
    """``count`` messages from user i to user i+1, in batches; (recipient, message id) of each."""
    sent = []
    for start in range(first, first + count, batch):
        with store.batch():
            for i in range(start, min(start + batch, first + count)):
                sender, recipient = _user(i), _user(i + 1)
                result = store.accept_message(
                    sender=sender, command_id=f"c{i}", recipient=recipient, text=f"hello {i}", now=float(i)
                )
                sent.append((recipient, result.message.id))
    return sent


def _receipts(store: CommandStore, sent: list[tuple[str, str]], batch: int) -> None:
    for start in range(0, len(sent), batch):
        with store.batch():
            for recipient, message_id in sent[start : start + batch]:
                store.apply_receipts(
                    user=recipient, status=Status.DELIVERED, message_ids=[message_id], now=1.0
                )


def _sends_together(store: CommandStore, count: int, batch: int) -> list[tuple[str, str]]:
    sent = []
    for start in range(0, count, batch):
        sends = [
            TextSend(_user(i), f"t{i}", _user(i + 1), f"hello {i}")
            for i in range(start, min(start + batch, count))
        ]
        with store.batch():
            results = store.accept_texts(sends, now=1.0)
        assert results is not None, "the store could not store them together"
        sent += [(send.recipient, result.message.id) for send, result in zip(sends, results, strict=True)]
    return sent


def _receipts_together(store: CommandStore, sent: list[tuple[str, str]], batch: int) -> None:
    for start in range(0, len(sent), batch):
        requests = [
            ReceiptRequest(user, Status.DELIVERED, [mid]) for user, mid in sent[start : start + batch]
        ]
        with store.batch():
            assert store.apply_receipts_of(requests, now=1.0) is not None


def _group_fan_out(store: CommandStore, messages: int, size: int, batch: int) -> None:
    members = [f"u{i}" for i in range(size)]
    group = store.create_group(
        creator=members[0], name="fan-out", members=members[1:], now=0.0, ref="g", max_members=size
    ).group.id

    def send(prefix: str) -> list[str]:
        ids = []
        for i in range(messages):
            with store.batch():
                result = store.accept_message(
                    sender=members[0], command_id=f"{prefix}{i}", recipient=group, text=f"hello {i}", now=1.0
                )
            ids.append(result.message.id)
        return ids

    def one_by_one(ids: list[str]) -> None:
        requests = [(member, mid) for mid in ids for member in members[1:]]
        for start in range(0, len(requests), batch):
            with store.batch():
                for member, mid in requests[start : start + batch]:
                    store.apply_receipts(user=member, status=Status.DELIVERED, message_ids=[mid], now=2.0)

    def together(ids: list[str]) -> None:
        requests = [ReceiptRequest(member, Status.DELIVERED, [mid]) for mid in ids for member in members[1:]]
        for start in range(0, len(requests), batch):
            with store.batch():
                assert store.apply_receipts_of(requests[start : start + batch], now=2.0) is not None

    one_by_one(send("w"))  # warm up
    marks = [_clocks()]
    first = send("a")
    marks.append(_clocks())
    one_by_one(first)
    marks.append(_clocks())
    second = send("b")
    marks.append(_clocks())
    together(second)
    marks.append(_clocks())
    print(
        f"sqlite, a group of {size}, {messages} messages, receipts in batches of {batch};"
        " ms/group message, wall and CPU"
    )
    for label, start, end in (
        ("accept_message", marks[0], marks[1]),
        ("apply_receipts", marks[1], marks[2]),
        ("accept_message", marks[2], marks[3]),
        ("apply_receipts_of", marks[3], marks[4]),
    ):
        wall, cpu = ((e - s) * 1000 / messages for s, e in zip(start, end, strict=True))
        print(f"{label:<18}{wall:.3f} wall  {cpu:.3f} cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages to send (default 5000)")
    parser.add_argument(
        "--batch", type=int, default=50, help="messages (and receipts) per store batch (default 50)"
    )
    parser.add_argument("--group-size", type=int, default=0, help="measure a group's fan-out instead")
    parser.add_argument("--url", help="the store (default: SQLite in a temporary folder)")
    args = parser.parse_args()
    batch = max(1, args.batch)
    print(describe().line())
    database = StoreWatch.for_url(args.url)
    if database is not None:
        _DATABASE.append(database)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(args.url or f"sqlite:///{Path(folder) / 'store.db'}")
        try:
            store.create_schema()
            for i in range(_USERS):
                store.create_user(_user(i), now=0.0)
            if args.group_size:
                for i in range(args.group_size):
                    store.create_user(f"u{i}", now=0.0)
                _group_fan_out(store, args.messages, args.group_size, batch)
                return
            _receipts(store, _sends(store, 500, -500, batch), batch)  # warm up caches and the database file
            started = _clocks()
            sent = _sends(store, args.messages, 0, batch)
            middle = _clocks()
            _receipts(store, sent, batch)
            ended = _clocks()
            together = _sends_together(store, args.messages, batch)
            sent_together = _clocks()
            _receipts_together(store, together, batch)
            done = _clocks()
        finally:
            store.close()
    kind = "sqlite" if database is None else f"postgresql ({database.database})"
    what = "wall and CPU" + ("" if database is None else " (this process, then the database's backends)")
    print(f"{kind}, batches of {batch}, {args.messages} messages; ms/message, {what}")
    for label, start, end in (
        ("accept_message", started, middle),
        ("apply_receipts", middle, ended),
        ("both", started, ended),
        ("accept_texts", ended, sent_together),
        ("apply_receipts_of", sent_together, done),
        ("both together", ended, done),
    ):
        wall, cpu, db = ((e - s) * 1000 / args.messages for s, e in zip(start, end, strict=True))
        print(f"{label:<18}{wall:.3f} wall  {cpu:.3f} cpu" + ("" if database is None else f"  {db:.3f} db"))


_DATABASE: list[StoreWatch] = []


def _clocks() -> tuple[float, float, float]:
    db = _DATABASE[0].cpu().cpu if _DATABASE else 0.0
    return time.perf_counter(), time.process_time(), db


if __name__ == "__main__":
    main()
