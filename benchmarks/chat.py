"""Chat load on mqchat's JSON contract: online users, chatting pairs and groups.

Every user has one connection (client id ``<user>/bench``) subscribed to its inbox. A pair's two
users take turns sending to each other; a group's members take turns sending to the group. Each
message's text starts with its send time and command id, so the worker measures:

- ``sent``: send to the ``sent`` event at the sender (the server stored it);
- ``delivered``: send to the ``message`` event at a recipient (every copy, for groups);
- ``last``: for groups, send to the ``message`` event at the last member to get it (the fan-out's
  time: a group's members are all in one generator process);
- ``receipt``: send to the ``delivered`` receipt with ``all: true`` back at the sender (the two
  ticks), when recipients acknowledge as the SDK does (one ``receipt`` command per burst).
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import orjson

from benchmarks.mqtt import Connection
from benchmarks.plan import WorkerPlan
from benchmarks.worker import ConnSpec, Workload

__all__ = ["ChatLoad"]

MAX_IDS_PER_RECEIPT = 500


def _encode(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)  # JSON was a quarter of the generator's CPU with the standard library


class ChatLoad(Workload):
    def __init__(self, plan: WorkerPlan) -> None:
        super().__init__(plan)
        self._pad = "x" * max(0, plan.payload - 120)
        self._turn: list[int] = []
        self._group_ids: list[str] = []
        self._sent_at: dict[str, tuple[float, int, int]] = {}
        """Command id -> (send time, unit, copies) until its ``sent`` or ``error`` comes."""
        self._copies_left: dict[str, int] = {}
        self._receipt_at: dict[str, float] = {}
        """Message id -> send time until its two ticks come."""
        self._acks: dict[str, list[str]] = {}
        self._ack_scheduled = False
        self._group_waiters: dict[str, asyncio.Future[str]] = {}

    def _users(self) -> list[str]:
        plan = self.plan
        seen: dict[str, None] = {}
        for pair in plan.pairs:
            seen.update(dict.fromkeys(pair))
        for group in plan.groups:
            seen.update(dict.fromkeys(group))
        seen.update(dict.fromkeys(plan.idle))
        return list(seen)

    def specs(self) -> list[ConnSpec]:
        token = self.plan.target.token
        return [
            ConnSpec(f"{user}/bench", user, token, (f"chat/{user}/in",), partial(self._received, user))
            for user in self._users()
        ]

    def units(self) -> int:
        return len(self.plan.pairs) + len(self.plan.groups)

    def _conn(self, user: str) -> Connection:
        conn: Connection = self.conns[f"{user}/bench"]
        return conn

    def _command(self, user: str, payload: dict[str, Any]) -> None:
        self._conn(user).publish(f"chat/{user}/out", _encode(payload), 1)

    async def after_connect(self) -> None:
        self._turn = [0] * self.units()
        loop = asyncio.get_running_loop()
        for index, members in enumerate(self.plan.groups):
            ref = self.new_id("g")
            waiter: asyncio.Future[str] = loop.create_future()
            self._group_waiters[ref] = waiter
            self._command(
                members[0],
                {
                    "v": 1,
                    "type": "group_create",
                    "id": ref,
                    "name": f"bench {self.plan.run_id} {index}",
                    "members": list(members[1:]),
                },
            )
            self._group_ids.append(await asyncio.wait_for(waiter, 30))

    # ---------------------------------------------------------------- sending
    def send(self, unit: int, now: float) -> int:
        pairs = self.plan.pairs
        turn = self._turn[unit]
        self._turn[unit] = turn + 1
        if unit < len(pairs):
            sender, to = pairs[unit] if turn % 2 == 0 else pairs[unit][::-1]
            copies = 1
        else:
            members = self.plan.groups[unit - len(pairs)]
            sender, to = members[turn % len(members)], self._group_ids[unit - len(pairs)]
            copies = len(members) - 1
        ref = self.new_id("c")
        self._sent_at[ref] = (now, unit, copies)
        if copies > 1:
            self._copies_left[ref] = copies
        text = f"{now!r} {ref} {unit} {self._pad}"
        self._command(sender, {"v": 1, "type": "send", "id": ref, "to": to, "text": text})
        return copies

    def outstanding(self) -> int:
        waiting = super().outstanding() + len(self._sent_at)
        return waiting + len(self._receipt_at) if self.plan.receipts else waiting

    # ---------------------------------------------------------------- receiving
    def _received(self, user: str, topic: str, payload: bytes) -> None:
        now = time.monotonic()
        try:
            event = orjson.loads(payload)
            kind = event["type"]
            if kind == "message":
                self._message(user, event["message"], now)
            elif kind == "sent":
                self._sent(event, now)
            elif kind == "receipt":
                if event.get("status") == "delivered" and event.get("all"):
                    sent_at = self._receipt_at.pop(event["message_id"], None)
                    if sent_at is not None:
                        self.rec.latency("receipt", sent_at, now)
            elif kind == "error":
                self._error(event)
            elif kind == "group":
                waiter = self._group_waiters.pop(event.get("ref") or "", None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event["group"]["id"])
        except (ValueError, KeyError, TypeError, IndexError):
            self.errors["unreadable event"] += 1

    def _message(self, user: str, message: dict[str, Any], now: float) -> None:
        stamp, ref, unit_text, _ = message["text"].split(" ", 3)
        self.rec.on_deliver(float(stamp), now)
        if self.plan.receipts:
            self._ack(user, message["id"])
        left = self._copies_left.get(ref)
        if left is None:
            self.completed(int(unit_text))
        elif left > 1:
            self._copies_left[ref] = left - 1
        else:
            del self._copies_left[ref]
            self.rec.latency("last", float(stamp), now)
            self.completed(int(unit_text))

    def _sent(self, event: dict[str, Any], now: float) -> None:
        entry = self._sent_at.pop(event.get("ref") or "", None)
        if entry is None:
            return
        sent_at = entry[0]
        self.rec.latency("sent", sent_at, now)
        if self.plan.receipts:
            self._receipt_at[event["message"]["id"]] = sent_at

    def _error(self, event: dict[str, Any]) -> None:
        self.errors[str(event.get("code"))] += 1
        entry = self._sent_at.pop(event.get("ref") or "", None)
        if entry is not None:
            sent_at, unit, copies = entry
            self._copies_left.pop(event["ref"], None)
            self.rec.on_failed(sent_at, copies)
            self.completed(unit)

    # ---------------------------------------------------------------- delivered receipts
    def _ack(self, user: str, message_id: str) -> None:
        self._acks.setdefault(user, []).append(message_id)
        if not self._ack_scheduled:
            self._ack_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_acks)

    def _flush_acks(self) -> None:
        self._ack_scheduled = False
        acks, self._acks = self._acks, {}
        for user, ids in acks.items():
            for start in range(0, len(ids), MAX_IDS_PER_RECEIPT):
                self._command(
                    user,
                    {
                        "v": 1,
                        "type": "receipt",
                        "id": self.new_id("a"),
                        "status": "delivered",
                        "messages": ids[start : start + MAX_IDS_PER_RECEIPT],
                    },
                )
