"""The chat workload of ``benchmarks/chat.py`` over XMPP, for the chat peer (ejabberd).

The same users, pairs, pacing and measurement windows; the same three figures, each as an XMPP
client of a WhatsApp-like service sees it:

- ``sent``: send to the server's stream-management acknowledgement (XEP-0198) covering the
  message (it has taken it; with ``mod_mam`` it has archived it for the sender);
- ``delivered``: send to the message at the recipient;
- ``receipt``: send to the recipient's delivery receipt (XEP-0184) back at the sender. XMPP has
  one receipt stanza per message; mqchat's recipients send one per burst (the SDK's batching).

One-to-one pairs only: a group over XMPP would be a MUC room, a different service with its own
costs, so the peer is compared on pairs.
"""

from __future__ import annotations

import time
from collections import deque
from functools import partial
from typing import Any
from xml.etree.ElementTree import Element

from benchmarks.plan import WorkerPlan
from benchmarks.worker import ConnSpec, Workload
from benchmarks.xmpp import CLIENT, RECEIPTS, XmppConnection, message_xml, receipt_xml

__all__ = ["XmppChatLoad"]

_BODY = f"{{{CLIENT}}}body"
_RECEIVED = f"{{{RECEIPTS}}}received"
_MESSAGE = f"{{{CLIENT}}}message"


class XmppChatLoad(Workload):
    def __init__(self, plan: WorkerPlan) -> None:
        super().__init__(plan)
        if plan.groups:
            raise ValueError("the XMPP peer runs one-to-one pairs only")
        self._pad = "x" * max(0, plan.payload - 120)
        self._turn: list[int] = []
        self._domain = plan.target.domain or "localhost"
        self._unacked: dict[str, deque[tuple[int, float]]] = {}
        """User -> (stanza number, send time) of messages the server has not acknowledged yet."""
        self._receipt_at: dict[str, float] = {}
        """Message id -> send time until its receipt comes."""

    def _users(self) -> list[str]:
        seen: dict[str, None] = {}
        for pair in self.plan.pairs:
            seen.update(dict.fromkeys(pair))
        seen.update(dict.fromkeys(self.plan.idle))
        return list(seen)

    def specs(self) -> list[ConnSpec]:
        token = self.plan.target.token
        return [ConnSpec(user, user, token, (), lambda topic, payload: None) for user in self._users()]

    def units(self) -> int:
        return len(self.plan.pairs)

    async def open_connection(self, spec: ConnSpec, source: str | None = None) -> Any:
        user = spec.client_id
        conn = XmppConnection(
            user,
            self._domain,
            spec.password or "",
            on_stanza=partial(self._received, user),
            on_acked=partial(self._acked, user),
            on_lost=self._on_lost,
        )
        await conn.connect(self.plan.target.host, self.plan.target.port, local_host=source)
        self._unacked[user] = deque()
        return conn

    async def after_connect(self) -> None:
        self._turn = [0] * self.units()

    # ---------------------------------------------------------------- sending
    def send(self, unit: int, now: float) -> int:
        turn = self._turn[unit]
        self._turn[unit] = turn + 1
        sender, to = self.plan.pairs[unit] if turn % 2 == 0 else self.plan.pairs[unit][::-1]
        ref = self.new_id("c")
        text = f"{now!r} {ref} {unit} {self._pad}"
        conn: XmppConnection = self.conns[sender]
        number = conn.send(message_xml(f"{to}@{self._domain}/bench", ref, text))
        self._unacked[sender].append((number, now))
        if self.plan.receipts:
            self._receipt_at[ref] = now
        return 1

    def outstanding(self) -> int:
        waiting = super().outstanding() + sum(len(q) for q in self._unacked.values())
        return waiting + len(self._receipt_at) if self.plan.receipts else waiting

    # ---------------------------------------------------------------- receiving
    def _acked(self, user: str, handled: int) -> None:
        now = time.monotonic()
        queue = self._unacked.get(user)
        while queue and queue[0][0] <= handled:
            _, sent_at = queue.popleft()
            self.rec.latency("sent", sent_at, now)

    def _received(self, user: str, stanza: Element) -> None:
        now = time.monotonic()
        if stanza.tag != _MESSAGE:
            return
        if stanza.get("type") == "error":
            self.errors["message error"] += 1
            return
        try:
            body = stanza.find(_BODY)
            if body is not None and body.text:
                stamp, ref, unit_text, _ = body.text.split(" ", 3)
                self.rec.on_deliver(float(stamp), now)
                if self.plan.receipts:
                    sender = stanza.get("from") or ""
                    self.conns[user].send(receipt_xml(sender, stanza.get("id") or ref))
                self.completed(int(unit_text))
                return
            received = stanza.find(_RECEIVED)
            if received is not None:
                sent_at = self._receipt_at.pop(received.get("id") or "", None)
                if sent_at is not None:
                    self.rec.latency("receipt", sent_at, now)
        except (ValueError, KeyError, IndexError):
            self.errors["unreadable stanza"] += 1
