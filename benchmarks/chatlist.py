"""The chat list of a busy user: ``python -m benchmarks.chatlist [--conversations N] [--messages M]``.

Seeds a SQLite file (or ``--store URL``) with one user who has ``N`` conversations (1-on-1s and,
one in twenty, groups of five) holding ``M`` messages in all, half of them to the user, a third of
the conversations read part of the way; then times the ``chat_list`` command's store call and the
building of its answer: the first page (50 chats), a page deep in the list (after a cursor), and
the first page again after a read receipt moved a read position. Prints p50 and p99 in
milliseconds of each, with the machine line (see machine.py). Nothing else runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.machine import describe
from client_sdk.contract import Status
from workers.events import dumps
from workers.stores import Store, TextSend, open_store
from workers.stores.rules.chats import chat_wire, decode_cursor, encode_cursor

__all__: list[str] = []

_ME = "me"
_GROUP_EVERY = 20
_BATCH = 500


def _seed(store: Store, conversations: int, messages: int) -> None:
    """``conversations`` chats of ``_ME``'s with ``messages`` messages in all."""
    store.create_user(_ME, now=0.0)
    peers = [f"peer{i:05d}" for i in range(conversations)]
    for peer in peers:
        store.create_user(peer, now=0.0)
    targets: list[tuple[str, str]] = []  # (sender side, recipient) of each conversation
    now = 1.0
    for i, peer in enumerate(peers):
        if i % _GROUP_EVERY == 0:
            members = [peer, *peers[i + 1 : i + 5]]
            group = store.create_group(
                creator=_ME, name=f"group {i}", members=members, now=now, ref=f"g{i}", max_members=16
            ).group.id
            targets.append((peer, group))
        else:
            targets.append((peer, _ME))
        now += 0.001
    # the first message of each conversation creates it; then batches of texts, round-robin
    sent = 0
    for peer, to in targets:
        store.accept_message(sender=peer, command_id=f"first-{peer}", recipient=to, text="hello", now=now)
        sent, now = sent + 1, now + 0.001
    texts: list[TextSend] = []
    groups: list[tuple[str, str]] = []
    i = 0
    while sent < messages:
        peer, to = targets[i % len(targets)]
        i += 1
        mine = i % 2 == 0  # half the messages are the user's own
        if to == _ME:
            sender, recipient = (_ME, peer) if mine else (peer, _ME)
            texts.append(TextSend(sender, f"t{sent}", recipient, f"message {sent} " * 3))
        else:
            groups.append((_ME if mine else peer, to))
        sent += 1
        if len(texts) >= _BATCH:
            _flush(store, texts, groups, now)
            now += 1.0
    _flush(store, texts, groups, now)
    # a third of the conversations read part of the way (read receipts of the user's)
    page, _ = store.chat_list(user=_ME, before=None, limit=100)
    del page


def _flush(store: Store, texts: list[TextSend], groups: list[tuple[str, str]], now: float) -> None:
    with store.batch():
        if texts:
            stored = store.accept_texts(texts, now=now)
            if stored is None:
                for send in texts:
                    store.accept_message(
                        sender=send.sender,
                        command_id=send.command_id,
                        recipient=send.recipient,
                        text=send.text,
                        now=now,
                    )
        for n, (sender, group) in enumerate(groups):
            store.accept_message(
                sender=sender, command_id=f"gm{now}-{n}", recipient=group, text="to the group", now=now
            )
    texts.clear()
    groups.clear()


def _read_some(store: Store) -> list[str]:
    """Read receipts for a few messages of every third chat; the message ids read."""
    entries, _ = store.sync(user=_ME, after=0, limit=5000)
    by_conversation: dict[str, list[str]] = {}
    for entry in entries:
        if entry.payload["type"] == "message":
            message = entry.payload["message"]
            by_conversation.setdefault(message["conversation"], []).append(message["id"])
    read: list[str] = []
    for n, ids in enumerate(by_conversation.values()):
        if n % 3 == 0:
            read += ids[: max(1, len(ids) // 2)]
    for start in range(0, len(read), 400):
        store.apply_receipts(
            user=_ME, status=Status.READ, message_ids=read[start : start + 400], now=time.time()
        )
    return read


def _answer(store: Store, before: str | None, limit: int) -> str:
    """What the pipeline's ``chat_list`` does but route it: the store call and the encoded answer."""
    page, more = store.chat_list(
        user=_ME, before=None if before is None else decode_cursor(before), limit=limit
    )
    following = encode_cursor(page[-1].ts, page[-1].conversation) if more and page else None
    return dumps(
        {"v": 1, "type": "chats", "ref": "c", "chats": [chat_wire(c, _ME) for c in page], "next": following}
    )


def _timed(rounds: int, work: Callable[[], object]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(p50, p99) in milliseconds of wall time, and of the process's CPU time (SQLite runs inside
    it: the steadier figure on a busy machine)."""
    wall, cpu = [], []
    for _ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        work()
        cpu.append((time.process_time() - used) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
    return _quantiles(wall), _quantiles(cpu)


def _quantiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.99))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chatlist", description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument(
        "--store", help="a store URL (default: a SQLite file in a temporary folder); seeded once, then reused"
    )
    args = parser.parse_args(argv)
    print(describe().line(), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        url = args.store or f"sqlite:///{Path(folder) / 'chatlist.db'}"
        store = open_store(url)
        store.create_schema()
        try:
            if store.user_exists(_ME):  # a store seeded by an earlier run (--store)
                print(f"reusing the seeded store {url}", flush=True)
            else:
                started = time.perf_counter()
                _seed(store, args.conversations, args.messages)
                read = _read_some(store)
                print(
                    f"seeded {args.conversations} conversations, {args.messages} messages, "
                    f"{len(read)} read, in {time.perf_counter() - started:.1f} s ({url.split(':')[0]})",
                    flush=True,
                )
            deep = None
            for _ in range(args.conversations // 2 // 50):
                page, _more = store.chat_list(
                    user=_ME, before=None if deep is None else decode_cursor(deep), limit=50
                )
                deep = encode_cursor(page[-1].ts, page[-1].conversation)
            runs: dict[str, Callable[[], object]] = {
                "first page (50)": lambda: _answer(store, None, 50),
                "a page half way down (50)": lambda: _answer(store, deep, 50),
                "first page (100)": lambda: _answer(store, None, 100),
            }
            for name, work in runs.items():
                work()  # warm
                (p50, p99), (cpu50, cpu99) = _timed(args.rounds, work)
                print(
                    f"chat_list {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms; "
                    f"CPU p50 {cpu50:.2f} ms, p99 {cpu99:.2f} ms ({args.rounds} rounds)",
                    flush=True,
                )
        finally:
            store.close()


if __name__ == "__main__":
    main()
