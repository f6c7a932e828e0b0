"""History: one conversation's pages for a user with many conversations and messages.

The store is seeded directly (a user with ``conversations`` conversations, ``groups`` of them
groups of five, ``messages`` messages in all, some edited or reacted to), then ``history`` is
measured two ways: in the store itself (``Store.history``, what the commands process spends),
and end to end through a node over MQTT (publish the command, wait for the ``history`` answer,
one at a time). Each query is a random conversation and a random kind of page: the latest page,
a page back from a random seq, or a page forwards from one.

python -m benchmarks history --conversations 1000 --messages 100000 --queries 1000
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.mqtt import Connection
from benchmarks.plan import Target
from benchmarks.progress import Progress as Display
from benchmarks.stats import Percentiles, percentiles

__all__ = ["HistoryReport", "measure_node", "measure_store", "seed"]

_BATCH = 1000
_GROUP_SIZE = 5


@dataclass(frozen=True)
class HistoryReport:
    where: str
    """``store`` or ``node`` (end to end over MQTT)."""
    latency: Percentiles | None
    messages_per_page: float


@dataclass(frozen=True)
class Seeded:
    user: str
    conversations: list[tuple[str, int]]
    """Each conversation of the user and its last seq."""
    messages: int
    seconds: float


def seed(store_url: str, *, conversations: int, groups: int, messages: int, display: Display) -> Seeded:
    """A user with ``conversations`` conversations (``groups`` of them groups) and ``messages``
    messages in them, spread evenly, written through the store as the node writes them."""
    from workers.stores import TextSend, open_store

    started = time.monotonic()
    store = open_store(store_url)
    store.create_schema()
    run = uuid.uuid4().hex[:6]
    user = f"h{run}-me"
    peers = [f"h{run}-p{i:04d}" for i in range(conversations - groups)]
    now = time.time() - 86_400
    try:
        for name in (user, *peers):
            store.create_user(name, now=now)
        per = max(1, messages // conversations)
        seqs: list[tuple[str, int]] = []
        # 1-on-1: each conversation's first message alone (it creates the conversation), then the
        # rest in batches as the node's commands process stores plain texts
        sends: list[TextSend] = []
        for i, peer in enumerate(peers):
            first = store.accept_message(
                sender=user, command_id=f"{peer}-0", recipient=peer, text="hi", now=now
            )
            seqs.append((first.message.conversation, per))
            for n in range(1, per):
                sender, to = (user, peer) if n % 2 else (peer, user)
                sends.append(TextSend(sender, f"{peer}-{n}", to, f"message {n} of {i}, " + "x" * 60))
                if len(sends) >= _BATCH:
                    _store_texts(store, sends, now)
                    sends = []
            if i % 100 == 0:
                display.update(f"[history] seeding: {i}/{conversations} conversations...")
        _store_texts(store, sends, now)
        # groups: five members each, every message one by one (a group send is not batched)
        for g in range(groups):
            members = peers[(g * 4) % len(peers) : (g * 4) % len(peers) + _GROUP_SIZE - 1]
            group = store.create_group(
                creator=user, name=f"group {g}", members=members, now=now, ref=f"g{g}", max_members=16
            ).group.id
            for n in range(per):
                sender = [user, *members][n % _GROUP_SIZE]
                store.accept_message(
                    sender=sender, command_id=f"{group}-{n}", recipient=group, text=f"g {n}", now=now
                )
            seqs.append((group, per))
            display.update(f"[history] seeding: group {g + 1}/{groups}...")
        # a few changes, so that views have edits and reactions to read
        for conversation, _last in seqs[:: max(1, len(seqs) // 50)]:
            page = store.history(_query(user, conversation, None, None, 5))
            for message in page.messages[:3]:
                store.react(
                    user=user, message_id=message["id"], emoji="👍", command_id=uuid.uuid4().hex, now=now
                )
    finally:
        store.close()
    return Seeded(user, seqs, len(seqs) * per, time.monotonic() - started)


def _store_texts(store: Any, sends: list[Any], now: float) -> None:
    if sends and store.accept_texts(sends, now=now) is None:
        raise RuntimeError("the store refused a batch of texts")


def _query(user: str, conversation: str, before: int | None, after: int | None, limit: int) -> Any:
    from workers.stores.rules.history import HistoryQuery

    return HistoryQuery(user, conversation, before, after, limit)


def _pages(seeded: Seeded, queries: int, limit: int) -> list[dict[str, Any]]:
    """Random pages: the latest, back from a random seq, forwards from one (a third each)."""
    chooser = random.Random(42)
    out = []
    for i in range(queries):
        conversation, last = chooser.choice(seeded.conversations)
        fields: dict[str, Any] = {"conversation": conversation, "limit": limit}
        if i % 3 == 1:
            fields["before"] = chooser.randint(1, last + 1)
        elif i % 3 == 2:
            fields["after"] = chooser.randint(0, last)
        out.append(fields)
    return out


def measure_store(store_url: str, seeded: Seeded, *, queries: int, limit: int) -> HistoryReport:
    from workers.stores import open_store

    store = open_store(store_url)
    samples, sizes = [], 0
    try:
        for fields in _pages(seeded, queries, limit):
            query = _query(
                seeded.user, fields["conversation"], fields.get("before"), fields.get("after"), limit
            )
            started = time.perf_counter()
            page = store.history(query)
            samples.append(time.perf_counter() - started)
            sizes += len(page.messages)
    finally:
        store.close()
    return HistoryReport("store", percentiles(samples), sizes / max(1, queries))


def measure_node(target: Target, seeded: Seeded, *, queries: int, limit: int) -> HistoryReport:
    return asyncio.run(_measure_node(target, seeded, queries=queries, limit=limit))


async def _measure_node(target: Target, seeded: Seeded, *, queries: int, limit: int) -> HistoryReport:
    loop = asyncio.get_running_loop()
    answers: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def received(topic: str, payload: bytes) -> None:
        event = json.loads(payload)
        waiting = answers.pop(str(event.get("ref")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(event)

    user = seeded.user
    conn = Connection(f"{user}/history-bench", username=user, password=target.token, on_message=received)
    await conn.connect(target.host, target.port)
    await conn.subscribe(f"chat/{user}/in")
    samples, sizes = [], 0
    try:
        for n, fields in enumerate(_pages(seeded, queries, limit)):
            cid = f"h-{n}"
            answer = answers[cid] = loop.create_future()
            command = {"v": 1, "type": "history", "id": cid, **fields}
            started = time.perf_counter()
            conn.publish(f"chat/{user}/out", json.dumps(command).encode(), 1)
            event = await asyncio.wait_for(answer, timeout=30)
            samples.append(time.perf_counter() - started)
            if event.get("type") != "history":
                raise RuntimeError(f"the node answered {event}")
            sizes += len(event["messages"])
    finally:
        await conn.close()
    return HistoryReport("node", percentiles(samples), sizes / max(1, queries))


def database_of(workdir: Path) -> str:
    """Where ``targets.launch("mqchat", workdir)`` keeps its SQLite database."""
    return f"sqlite:///{workdir / 'mqchat-data' / 'mqchat.db'}"
