"""Search latency of one busy user: ``python -m benchmarks.search [--url URL] [--messages N]``.

Seeds a store with one user, ``reader``, in ``--conversations`` conversations (1-on-1 chats and,
one in twenty, groups) holding ``--messages`` messages in all, half sent by them, and
``--others`` more messages between other users (which the reader must never find, so the
visibility filter has work to do). Texts are drawn from a vocabulary with a Zipf-like spread:
a few words are in a large share of the messages, most in few. Then it times ``search_messages``
for the reader, straight on the store (no broker: the store's engine and the visibility rules
alone), over a mix of queries: a very common word, a rare one, two words, a prefix, a page
further back, one conversation, and a word nobody wrote. Prints the machine line and p50/p99 in
milliseconds per kind and over all. The store is SQLite in a temporary folder unless ``--url``
names another (a PostgreSQL database is left with the data: use a scratch one; a later run on it
searches what is there instead of seeding again).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks.machine import describe
from workers.stores import Store, TextSend, open_store
from workers.stores.rules.messages import dm_conversation

__all__: list[str] = []

_READER = "reader"
_BATCH = 500
_GROUP_EVERY = 20
"""One conversation in this many is a group (of the reader and three others)."""


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(size * 2)}
    return sorted(words)[:size]


def _texts(rng: random.Random, vocabulary: list[str]) -> Iterator[str]:
    weights = [1.0 / (rank + 1) for rank in range(len(vocabulary))]  # Zipf: word k is 1/k as common
    while True:
        yield " ".join(rng.choices(vocabulary, weights, k=rng.randint(3, 14)))


def _seed(store: Store, args: argparse.Namespace, vocabulary: list[str]) -> tuple[list[str], list[str]]:
    """The reader's conversations: (partners of 1-on-1 chats, group ids)."""
    rng = random.Random(7)
    texts = _texts(rng, vocabulary)
    store.create_user(_READER, now=0.0)
    partners, groups = [], []
    for i in range(args.conversations):
        user = f"p{i}"
        store.create_user(user, now=0.0)
        if i % _GROUP_EVERY == 0:
            members = [user, f"p{i}x", f"p{i}y"]
            for member in members[1:]:
                store.create_user(member, now=0.0)
            created = store.create_group(
                creator=_READER, name=f"g{i}", members=members, now=0.0, ref=f"g{i}", max_members=10
            )
            groups.append(created.group.id)
        else:
            partners.append(user)
            store.accept_message(sender=user, command_id="hi", recipient=_READER, text=next(texts), now=0.0)
    now, count = 1.0, len(partners)
    per_group = args.messages * len(groups) // args.conversations
    for i in range(per_group):  # group messages go one by one (as the pipeline stores them)
        group = groups[i % len(groups)]
        sender = _READER if i % 2 else f"p{groups.index(group) * _GROUP_EVERY}"
        store.accept_message(sender=sender, command_id=f"gm{i}", recipient=group, text=next(texts), now=now)
        now += 0.001
    remaining = args.messages - per_group - count
    sends = []
    for i in range(remaining):
        partner = partners[rng.randrange(count)]
        mine = i % 2 == 0
        sender, recipient = (_READER, partner) if mine else (partner, _READER)
        sends.append(TextSend(sender, f"m{i}", recipient, next(texts)))
    _store_texts(store, sends, now)
    others = [f"o{i}" for i in range(max(2, args.others // 100))]
    for user in others:
        store.create_user(user, now=0.0)
    for a, b in itertools.pairwise(others):
        store.accept_message(sender=a, command_id="hi", recipient=b, text=next(texts), now=now)
    pairs = list(itertools.pairwise(others))
    noise = [
        TextSend(pairs[i % len(pairs)][0], f"n{i}", pairs[i % len(pairs)][1], next(texts))
        for i in range(args.others)
    ]
    _store_texts(store, noise, now)
    return partners, groups


def _conversations(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The partners and groups of a store seeded before (group ids from the groups' names)."""
    partners = [f"p{i}" for i in range(args.conversations) if i % _GROUP_EVERY]
    return partners, []


def _store_texts(store: Store, sends: list[TextSend], now: float) -> None:
    for start in range(0, len(sends), _BATCH):
        with store.batch():
            stored = store.accept_texts(sends[start : start + _BATCH], now=now)
        if stored is None:  # MongoDB: one by one
            for s in sends[start : start + _BATCH]:
                store.accept_message(
                    sender=s.sender, command_id=s.command_id, recipient=s.recipient, text=s.text, now=now
                )


def _queries(
    store: Store, vocabulary: list[str], partners: list[str], groups: list[str]
) -> dict[str, Callable[[random.Random], object]]:
    def search(query: str, conversation: str | None = None, before: str | None = None) -> object:
        return store.search_messages(
            user=_READER, query=query, conversation=conversation, before=before, limit=20
        )

    common, rare = vocabulary[:5], vocabulary[len(vocabulary) // 2 :]
    second_pages = {}
    for word in common:
        first = store.search_messages(user=_READER, query=word, conversation=None, before=None, limit=20)
        second_pages[word] = first.next

    def conversation_of(rng: random.Random) -> str:
        if groups and rng.random() < 0.2:
            return rng.choice(groups)
        return dm_conversation(_READER, rng.choice(partners))

    return {
        "common word": lambda rng: search(rng.choice(common)),
        "rare word": lambda rng: search(rng.choice(rare)),
        "two words": lambda rng: search(f"{rng.choice(common)} {rng.choice(vocabulary[5:200])}"),
        "prefix": lambda rng: search(rng.choice(vocabulary[:200])[:2]),
        "page 2": lambda rng: search((word := rng.choice(common)), before=second_pages[word]),
        "one conversation": lambda rng: search(rng.choice(vocabulary[:50]), conversation_of(rng)),
        "nobody wrote it": lambda rng: search("zzzzqqq"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a store URL (default: SQLite in a temporary folder)")
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100_000, help="the reader's messages in all")
    parser.add_argument("--others", type=int, default=20_000, help="messages between other users")
    parser.add_argument("--vocabulary", type=int, default=5000, help="distinct words of the texts")
    parser.add_argument("--rounds", type=int, default=100, help="timed searches of each kind")
    args = parser.parse_args()
    print(describe().line())
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(args.url or f"sqlite:///{Path(folder) / 'store.db'}")
        try:
            store.create_schema()
            vocabulary = _vocabulary(random.Random(3), args.vocabulary)
            started = time.perf_counter()
            if store.user_exists(_READER):  # a database seeded by an earlier run (same arguments)
                partners, groups = _conversations(args)
                print("seeded before: searching what is there")
            else:
                partners, groups = _seed(store, args, vocabulary)
                print(
                    f"seeded in {time.perf_counter() - started:.0f} s: {args.conversations} conversations, "
                    f"{args.messages} messages of the reader, {args.others} of others"
                )
            _time(_queries(store, vocabulary, partners, groups), args.rounds)
        finally:
            store.close()


def _time(queries: dict[str, Callable[[random.Random], object]], rounds: int) -> None:
    rng = random.Random(11)
    for run in queries.values():  # warm the caches once
        run(rng)
    every: list[float] = []
    print(f"{'query':<18}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    for label, run in queries.items():
        took = []
        for _ in range(rounds):
            start = time.perf_counter()
            run(rng)
            took.append((time.perf_counter() - start) * 1000)
        every += took
        print(f"{label:<18}{_p(took, 50):>8.1f}{_p(took, 99):>8.1f}{max(took):>8.1f}")
    print(f"{'all':<18}{_p(every, 50):>8.1f}{_p(every, 99):>8.1f}{max(every):>8.1f}")


def _p(values: list[float], percent: int) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[percent - 1] if len(values) > 1 else values[0]
    )


if __name__ == "__main__":
    main()
