"""The commands process's work per chat message on its own: ``python -m benchmarks.pipeline_micro``.

Runs what the commands process runs for a chat message, without the node or the pipe: a batch of
``--batch`` 1-on-1 sends through ``Pipeline.process_batch`` (on SQLite in a temporary folder), the
events encoded as the process encodes them, then a batch of the recipients' ``delivered``
receipts, and prints the CPU time of the process per message (its send and its receipt). At a low
rate the commands process gets batches of one command, under load batches of tens, so
``--batch 1`` against ``--batch 20`` shows what a transaction of its own costs a message. The
conversations exist before the timed part, as they do in the chat benchmark's steady state.
``--vary`` makes the batches' sizes vary as they do under load (1 to ``2 * --batch - 1`` sends,
the same sizes in every run), so that the lengths of their ``IN`` lists vary too. ``--gap``
sleeps between batches, as the process does between the batches of a low rate: the CPU
per message then includes what a process pays to start again after a sleep (cold caches).

``--database URL`` (a PostgreSQL server's admin URL) runs it on PostgreSQL, in a fresh database
dropped after, and prints the CPU of the database's backends per message too (the server's share:
on PostgreSQL a batch's statements run there).

``--group N`` measures a group message instead: one member of a group of N sends, and the other
members' ``delivered`` receipts follow in batches of ``--batch`` (every member's receipt comes at
once, so a batch of the commands process holds many of them); it prints the CPU per group message
with its receipts and the events the node would publish for it.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.databases import fresh_database
from benchmarks.machine import describe
from benchmarks.procstat import StoreWatch
from workers.events import dumps
from workers.pipeline import Pipeline
from workers.routing import Delivery
from workers.stores import Store, open_store

__all__: list[str] = []

_PAIRS = 100


def _round(
    pipeline: Pipeline, routed: list[Delivery], k: int, batch: int, gap: float = 0.0, size: int = 0
) -> int:
    """Round ``k``: ``size`` sends (``batch`` when 0) and their receipts; returns the sends."""
    sends = []
    for j in range(size or batch):
        i = (k * batch + j) % _PAIRS
        cmd = {"v": 1, "type": "send", "id": f"c{k}-{j}", "to": f"u{i + _PAIRS}", "text": "hello there"}
        sends.append({"user": f"u{i}", "cmd": cmd})
    pipeline.process_batch("n", sends)
    if gap:
        time.sleep(gap)
    delivered: dict[str, list[str]] = {}
    for user, event, *_ in routed:
        if event.get("type") == "message":
            delivered.setdefault(user, []).append(event["message"]["id"])
    for _, event, *_ in routed:
        dumps(event)
    routed.clear()
    receipts: list[dict[str, Any]] = [
        {
            "user": user,
            "cmd": {"v": 1, "type": "receipt", "id": f"r{k}-{user}", "status": "delivered", "messages": ids},
        }
        for user, ids in delivered.items()
    ]
    if gap:
        time.sleep(gap)
    pipeline.process_batch("n", receipts)
    for _, event, *_ in routed:
        dumps(event)
    routed.clear()
    return len(sends)


def _group_round(
    pipeline: Pipeline, routed: list[Delivery], k: int, group: str, size: int, batch: int
) -> int:
    """One group message of member ``k % size`` and its members' receipts; the events routed."""
    cmd = {"v": 1, "type": "send", "id": f"g{k}", "to": group, "text": "hello there"}
    pipeline.process_batch("n", [{"user": f"u{k % size}", "cmd": cmd}])
    receipts: list[dict[str, Any]] = [
        {
            "user": user,
            "cmd": {
                "v": 1,
                "type": "receipt",
                "id": f"r{k}",
                "status": "delivered",
                "messages": [event["message"]["id"]],
            },
        }
        for user, event, *_ in routed
        if event.get("type") == "message"
    ]
    for start in range(0, len(receipts), batch):
        pipeline.process_batch("n", receipts[start : start + batch])
    for _, event, *_ in routed:
        dumps(event)
    events = len(routed)
    routed.clear()
    return events


def _group(store: Store, args: argparse.Namespace) -> None:
    size = args.group
    for i in range(size):
        store.create_user(f"u{i}", now=time.time())
    members = [f"u{i}" for i in range(1, size)]
    group = store.create_group(
        creator="u0", name="micro", members=members, now=time.time(), ref="g", max_members=size
    ).group.id
    routed: list[Delivery] = []
    pipeline = Pipeline(store=store, route=routed.extend, max_group_members=size)
    for k in range(20):  # caches warm
        _group_round(pipeline, routed, k, group, size, args.batch)
    start = time.process_time()
    timed = range(20, 20 + args.messages)
    events = sum(_group_round(pipeline, routed, k, group, size, args.batch) for k in timed)
    cpu = time.process_time() - start
    print(
        f"group of {size}, receipts in batches of {args.batch}: {1e6 * cpu / args.messages:.0f} µs of CPU"
        f" per group message and its receipts; {events / args.messages:.0f} events routed per message"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000, help="timed messages (default 1000)")
    parser.add_argument("--batch", type=int, default=1, help="commands per batch (default 1)")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds of sleep between batches (default 0)")
    parser.add_argument(
        "--vary",
        action="store_true",
        help="batches of 1 to 2 * batch - 1 sends, as under load (default: all alike)",
    )
    parser.add_argument("--group", type=int, default=0, help="members of a group (default: 1-on-1)")
    parser.add_argument(
        "--database",
        metavar="URL",
        help="a PostgreSQL server (admin URL): run in a fresh database there (default: SQLite)",
    )
    args = parser.parse_args()
    print(describe().line())
    with contextlib.ExitStack() as stack:
        if args.database:
            url = stack.enter_context(fresh_database(args.database, "micro"))
        else:
            url = f"sqlite:///{Path(stack.enter_context(tempfile.TemporaryDirectory())) / 'micro.db'}"
        store = open_store(url)
        try:
            store.create_schema()
            if args.group:
                _group(store, args)
                return
            _pairs(store, args, StoreWatch.for_url(url))
        finally:
            store.close()


def _pairs(store: Store, args: argparse.Namespace, server: StoreWatch | None) -> None:
    for i in range(2 * _PAIRS):
        store.create_user(f"u{i}", now=time.time())
    routed: list[Delivery] = []
    pipeline = Pipeline(store=store, route=routed.extend)
    warm = -(-_PAIRS // args.batch) + 20  # every conversation started, caches warm
    for k in range(warm):
        _round(pipeline, routed, k, args.batch)
    # --vary: batches of 1 to 2 * batch - 1 sends, the same sizes in every run
    draw = random.Random(7)
    sizes = [draw.randint(1, 2 * args.batch - 1) if args.vary else args.batch for _ in range(args.messages)]
    server_before = None if server is None else server.cpu()
    start = time.process_time()
    sent = k = 0
    while sent < args.messages:
        sent += _round(pipeline, routed, warm + k, args.batch, args.gap, sizes[k])
        k += 1
    cpu = time.process_time() - start
    per_message = 1e6 * cpu / sent
    gap = f", {args.gap * 1000:g} ms apart" if args.gap else ""
    size = f"1-{2 * args.batch - 1} (mean {args.batch})" if args.vary else f"{args.batch}"
    print(f"batches of {size}{gap}: {per_message:.0f} µs of CPU per message and its receipt")
    if server is not None and server_before is not None:
        used = server.cpu().cpu - server_before.cpu
        print(f"PostgreSQL: {1e6 * used / sent:.0f} µs of its backends' CPU per message and its receipt")


if __name__ == "__main__":
    main()
