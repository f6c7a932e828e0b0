"""Offline sync: a user who missed K messages connects; how long until its sync pages reach the end.

A sender stores K messages for the reader (through the node, flat out, each confirmed by ``sent``)
and disconnects; the reader, offline all along, connects, subscribes and follows ``sync`` pages
from cursor 0 until ``more`` is false, acknowledging each page with one ``delivered`` receipt as
the SDK does (unless ``receipts`` is off). Repeats sync the same inbox again from 0 (receipts then
change nothing).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from benchmarks.mqtt import Connection
from benchmarks.plan import Target
from benchmarks.procstat import ProcWatch
from benchmarks.progress import Progress as Display
from benchmarks.report import SyncReport

__all__ = ["offline_sync"]

MAX_IDS_PER_RECEIPT = 500


def _encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


async def _preload(target: Target, sender: str, reader: str, messages: int, window: int, pad: str) -> float:
    done = asyncio.get_running_loop().create_future()
    confirmed = 0
    sent = 0
    conn: Connection

    def send_next() -> None:
        nonlocal sent
        sent += 1
        command = {"v": 1, "type": "send", "id": f"pre-{sent}", "to": reader, "text": f"missed {sent} {pad}"}
        conn.publish(f"chat/{sender}/out", _encode(command), 1)

    def received(topic: str, payload: bytes) -> None:
        nonlocal confirmed
        event = json.loads(payload)
        if event.get("type") == "error" and not done.done():
            done.set_exception(RuntimeError(f"the node refused a message: {event}"))
        if event.get("type") != "sent":
            return
        confirmed += 1
        if sent < messages:
            send_next()
        elif confirmed >= messages and not done.done():
            done.set_result(None)

    conn = Connection(f"{sender}/bench", username=sender, password=target.token, on_message=received)
    await conn.connect(target.host, target.port)
    await conn.subscribe(f"chat/{sender}/in")
    started = time.monotonic()
    for _ in range(min(window, messages)):
        send_next()
    await asyncio.wait_for(done, timeout=max(120.0, messages / 50))
    seconds = time.monotonic() - started
    await conn.close()
    return seconds


async def _sync_once(
    target: Target, reader: str, device: str, page_size: int, receipts: bool
) -> tuple[float, float, int, int, int]:
    """(connect seconds, sync seconds, pages, entries, last cursor)."""
    done = asyncio.get_running_loop().create_future()
    pages = entries = last_cursor = 0
    counter = 0
    conn: Connection

    def command(payload: dict[str, Any]) -> None:
        nonlocal counter
        counter += 1
        payload["id"] = f"{device}-{counter}"
        conn.publish(f"chat/{reader}/out", _encode(payload), 1)

    def received(topic: str, payload: bytes) -> None:
        nonlocal pages, entries, last_cursor
        event = json.loads(payload)
        if event.get("type") == "error" and not done.done():
            done.set_exception(RuntimeError(f"the node answered an error: {event}"))
        if event.get("type") != "sync_page":
            return
        pages += 1
        page = event["entries"]
        entries += len(page)
        last_cursor = int(event["cursor"])
        if event["more"]:
            command({"v": 1, "type": "sync", "after": last_cursor, "limit": page_size})
        if receipts:
            ids = [e["message"]["id"] for e in page if e.get("type") == "message"]
            for start in range(0, len(ids), MAX_IDS_PER_RECEIPT):
                chunk = ids[start : start + MAX_IDS_PER_RECEIPT]
                command({"v": 1, "type": "receipt", "status": "delivered", "messages": chunk})
        if not event["more"] and not done.done():
            done.set_result(None)

    conn = Connection(f"{reader}/{device}", username=reader, password=target.token, on_message=received)
    started = time.monotonic()
    await conn.connect(target.host, target.port)
    await conn.subscribe(f"chat/{reader}/in")
    connected = time.monotonic()
    command({"v": 1, "type": "sync", "after": 0, "limit": page_size})
    await asyncio.wait_for(done, timeout=300)
    finished = time.monotonic()
    await conn.close()
    return connected - started, finished - connected, pages, entries, last_cursor


class _RssPeaks:
    """The node's RSS (with its commands process) and this client's, sampled while a sync runs:
    at flat memory the peaks stay near where they started, whatever the number of messages."""

    EVERY = 0.05

    def __init__(self, broker: ProcWatch | None) -> None:
        self._broker = broker
        self._client = ProcWatch(os.getpid())
        self.broker_before = broker.rss() if broker else 0
        self.client_before = self._client.rss()
        self.broker_peak, self.client_peak = self.broker_before, self.client_before

    async def sample(self) -> None:
        while True:
            self.broker_peak = max(self.broker_peak, self._broker.rss() if self._broker else 0)
            self.client_peak = max(self.client_peak, self._client.rss())
            await asyncio.sleep(self.EVERY)


async def _run(
    target: Target,
    sender: str,
    reader: str,
    *,
    messages: int,
    page_size: int,
    receipts: bool,
    repeat: int,
    payload: int,
    display: Display,
) -> list[SyncReport]:
    broker = ProcWatch(target.pid, children=True) if target.pid else None
    display.update(f"[sync] storing {messages} messages for {reader}...")
    preload = await _preload(target, sender, reader, messages, 200, "x" * max(0, payload - 90))
    display.note(f"[sync] {messages} messages stored in {preload:.2f} s ({messages / preload:.0f}/s)")
    reports = []
    for attempt in range(repeat):
        cpu = broker.cpu() if broker else None
        display.update(f"[sync] sync {attempt + 1}/{repeat}...")
        rss = _RssPeaks(broker)
        sampler = asyncio.create_task(rss.sample())
        try:
            connect_s, sync_s, pages, entries, cursor = await _sync_once(
                target, reader, f"sync{attempt}", page_size, receipts
            )
        finally:
            sampler.cancel()
        report = SyncReport(
            messages=messages,
            preload_seconds=preload,
            connect_seconds=connect_s,
            sync_seconds=sync_s,
            pages=pages,
            entries=entries,
            last_cursor=cursor,
            receipts=receipts,
            broker_cpu=cpu.percent_until(broker.cpu()) if broker and cpu else None,
            broker_rss=broker.rss() if broker else 0,
            broker_rss_before=rss.broker_before,
            broker_rss_peak=rss.broker_peak,
            client_rss_before=rss.client_before,
            client_rss_peak=rss.client_peak,
        )
        display.note(
            f"[sync] sync {attempt + 1}: {entries} entries in {pages} pages,"
            f" connect {connect_s * 1000:.0f} ms"
            f" + sync {sync_s:.2f} s = {report.total_seconds:.2f} s (last cursor {cursor})"
        )
        reports.append(report)
    return reports


def offline_sync(
    target: Target,
    sender: str,
    reader: str,
    *,
    messages: int,
    page_size: int = 200,
    receipts: bool = True,
    repeat: int = 1,
    payload: int = 100,
    display: Display,
) -> list[SyncReport]:
    return asyncio.run(
        _run(
            target,
            sender,
            reader,
            messages=messages,
            page_size=page_size,
            receipts=receipts,
            repeat=repeat,
            payload=payload,
            display=display,
        )
    )
