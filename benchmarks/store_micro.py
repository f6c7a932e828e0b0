"""The store's per-message cost on its own: ``python -m benchmarks.store_micro [--messages N]``.

Sends ``N`` one-to-one messages through ``accept_message`` and marks each of them delivered
with ``apply_receipts``, both in batches of 50 calls (one ``store.batch()`` each, as the ingest
thread does), on a SQLite file in a temporary folder, and prints the milliseconds per message of
each path, in wall time and in CPU time of the process (SQLite runs inside it; the CPU figure is the
steadier one on a busy machine). Nothing else runs: the store's Python and database time alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from client_sdk.contract import Status
from workers.stores import Store, open_store

__all__: list[str] = []

_BATCH = 50
_USERS = 100


def _sends(store: Store, count: int, first: int) -> list[tuple[str, str]]:
    """``count`` messages from user i to user i+1, in batches; (recipient, message id) of each."""
    sent = []
    for start in range(first, first + count, _BATCH):
        with store.batch():
            for i in range(start, min(start + _BATCH, first + count)):
                sender, recipient = f"u{i % _USERS}", f"u{(i + 1) % _USERS}"
                result = store.accept_message(
                    sender=sender, command_id=f"c{i}", recipient=recipient, text=f"hello {i}", now=float(i)
                )
                sent.append((recipient, result.message.id))
    return sent


def _receipts(store: Store, sent: list[tuple[str, str]]) -> None:
    for start in range(0, len(sent), _BATCH):
        with store.batch():
            for recipient, message_id in sent[start : start + _BATCH]:
                store.apply_receipts(
                    user=recipient, status=Status.DELIVERED, message_ids=[message_id], now=1.0
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="messages to send (default 5000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{Path(folder) / 'store.db'}")
        try:
            store.create_schema()
            for i in range(_USERS):
                store.create_user(f"u{i}", now=0.0)
            _receipts(store, _sends(store, 500, -500))  # warm up caches and the database file
            started = _clocks()
            sent = _sends(store, args.messages, 0)
            middle = _clocks()
            _receipts(store, sent)
            ended = _clocks()
        finally:
            store.close()
    print(f"sqlite, batches of {_BATCH}, {args.messages} messages; ms/message, wall and CPU")
    for label, start, end in (
        ("accept_message", started, middle),
        ("apply_receipts", middle, ended),
        ("both", started, ended),
    ):
        wall, cpu = ((e - s) * 1000 / args.messages for s, e in zip(start, end, strict=True))
        print(f"{label:<16}{wall:.3f} wall  {cpu:.3f} cpu")


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


if __name__ == "__main__":
    main()
