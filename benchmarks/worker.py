"""A load generator process: many connections on one asyncio loop, driven by the coordinator.

The coordinator talks to each worker over a pipe: ``connect`` (open and subscribe every
connection), ``step`` (send at a rate or flat out, measure, drain) and ``close``. A ``Workload``
(``raw.py``, ``chat.py``) says which connections to open, how to send one message of a sender
unit (a pair or a group) and what arrived; this module does the rest: concurrency, pacing,
measurement windows and progress.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from typing import Any

from benchmarks.limits import raise_open_files
from benchmarks.mqtt import Connection, ConnectionFailed, OnMessage
from benchmarks.plan import ConnectResult, Progress, Step, StepResult, WorkerPlan
from benchmarks.stats import percentiles
from broker.cli import loop_factory

__all__ = ["ConnSpec", "Recorder", "Workload", "main"]

log = logging.getLogger(__name__)

TICK = 0.002
"""Fixed rate: the pacing loop sends what is due every ``TICK`` seconds."""
REPORT_EVERY = 1.0


@dataclass
class ConnSpec:
    client_id: str
    username: str | None
    password: str | None
    subscribe: tuple[str, ...]
    on_message: OnMessage


@dataclass
class Recorder:
    """Counts and latency samples of the messages sent inside the measured window."""

    start: float = float("inf")
    end: float = float("inf")
    sent: int = 0
    expected: int = 0
    delivered: int = 0
    total_expected: int = 0
    total_delivered: int = 0
    latencies: dict[str, array[float]] = field(default_factory=dict)
    recent: list[float] = field(default_factory=list)

    def open(self, start: float, end: float) -> None:
        self.start, self.end = start, end
        self.sent = self.expected = self.delivered = 0
        self.latencies = {}
        self.recent = []

    def in_window(self, sent_at: float) -> bool:
        return self.start <= sent_at < self.end

    def on_send(self, sent_at: float, copies: int) -> None:
        self.total_expected += copies
        if self.start <= sent_at < self.end:
            self.sent += 1
            self.expected += copies

    def on_failed(self, sent_at: float, copies: int) -> None:
        """A message the server refused: its copies will never come."""
        self.total_expected -= copies
        if self.start <= sent_at < self.end:
            self.expected -= copies

    def on_deliver(self, sent_at: float, now: float) -> None:
        self.total_delivered += 1
        if self.start <= sent_at < self.end:
            self.delivered += 1
            self.latency("delivered", sent_at, now)
        self.recent.append(now - sent_at)

    def latency(self, kind: str, sent_at: float, now: float) -> None:
        if self.start <= sent_at < self.end:
            samples = self.latencies.get(kind)
            if samples is None:
                samples = self.latencies[kind] = array("d")
            samples.append(now - sent_at)

    def take_recent_p99(self) -> float | None:
        figures = percentiles(self.recent)
        self.recent = []
        return figures.p99 if figures else None


class Workload:
    """The common machinery; subclasses fill in ``specs``, ``send`` and the message handlers."""

    def __init__(self, plan: WorkerPlan) -> None:
        self.plan = plan
        self.rec = Recorder()
        self.errors: Counter[str] = Counter()
        self.lost = 0
        self.conns: dict[str, Any] = {}
        self._flat = False
        self._inflight: list[int] = []
        self._next_unit = 0
        self._counter = 0

    # ---------------------------------------------------------------- for subclasses
    def specs(self) -> list[ConnSpec]:
        raise NotImplementedError

    def units(self) -> int:
        """How many sender units (pairs, groups) there are."""
        raise NotImplementedError

    def send(self, unit: int, now: float) -> int:
        """Send one message of ``unit``; returns how many copies its recipients should get."""
        raise NotImplementedError

    def outstanding(self) -> int:
        """What is still on the way (the drain waits for it)."""
        return self.rec.total_expected - self.rec.total_delivered

    async def after_connect(self) -> None:
        return None

    async def open_connection(self, spec: ConnSpec, source: str | None = None) -> Any:
        """One connection from the local address ``source`` (None: any), logged in and subscribed
        (ConnectionFailed, closed, if it could not be)."""
        plan, target = self.plan, self.plan.target
        conn = Connection(
            spec.client_id,
            username=spec.username,
            password=spec.password,
            on_message=spec.on_message,
            on_lost=self._on_lost,
            mqtt5=target.mqtt5,
        )
        try:
            await conn.connect(target.host, target.port, keepalive=plan.keepalive, local_host=source)
            for topic in spec.subscribe:
                await conn.subscribe(topic, plan.qos)
        except ConnectionFailed:
            await conn.close()
            raise
        return conn

    def new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self.plan.index}-{self._counter}"

    # ---------------------------------------------------------------- pacing
    def _send(self, unit: int) -> None:
        now = time.monotonic()
        copies = self.send(unit, now)
        self._inflight[unit] += 1
        self.rec.on_send(now, copies)

    def completed(self, unit: int) -> None:
        """A message of ``unit`` reached every recipient (or failed): flat out, send the next."""
        self._inflight[unit] -= 1
        if self._flat:
            self._send(unit)

    # ---------------------------------------------------------------- phases
    async def connect_all(self, report: Callable[[Progress], None]) -> ConnectResult:
        plan = self.plan
        specs = self.specs()
        self._inflight = [0] * self.units()
        gate = asyncio.Semaphore(plan.connect_concurrency)
        errors: list[str] = []
        connected = 0
        started = time.monotonic()

        sources, step = plan.sources, plan.procs

        async def open_one(n: int, spec: ConnSpec) -> None:
            nonlocal connected
            source = sources[(plan.index + n * step) % len(sources)] if sources else None
            async with gate:
                try:
                    conn = await self.open_connection(spec, source)
                except ConnectionFailed as exc:
                    if len(errors) < 5:
                        errors.append(str(exc))
                    return
                self.conns[spec.client_id] = conn
                connected += 1

        async def tell() -> None:
            while True:
                await asyncio.sleep(0.5)
                report(Progress(worker=plan.index, connected=connected))

        teller = asyncio.create_task(tell())
        await asyncio.gather(*(open_one(n, spec) for n, spec in enumerate(specs)))
        seconds = time.monotonic() - started
        teller.cancel()
        if connected == len(specs):
            try:
                await self.after_connect()
            except Exception as exc:
                errors.append(f"setup failed: {exc!r}")
        gc.collect()
        gc.freeze()  # thousands of long-lived connection objects: keep the collector off them
        return ConnectResult(
            worker=plan.index,
            connected=connected,
            failed=len(specs) - connected,
            seconds=seconds,
            errors=errors,
        )

    def _on_lost(self) -> None:
        self.lost += 1

    async def run_step(self, step: Step, report: Callable[[Progress], None]) -> StepResult:
        measure_from = step.start_at + step.warmup
        end = measure_from + step.seconds
        self.rec.open(measure_from, end)
        self.errors.clear()
        lost_before = self.lost
        await asyncio.sleep(max(0.0, step.start_at - time.monotonic()))
        reporter = _Reporter(self, report)
        if not self._inflight:
            await self._idle_until(end, reporter)
        elif step.rate is None:
            await self._flat_out_until(end, reporter)
        else:
            await self._pace_until(end, step.rate, reporter)
        reporter.tick(time.monotonic())
        drain_until = time.monotonic() + step.drain
        while self.outstanding() > 0 and time.monotonic() < drain_until:
            await asyncio.sleep(0.02)
        return StepResult(
            worker=self.plan.index,
            sent=self.rec.sent,
            expected=self.rec.expected,
            delivered=self.rec.delivered,
            latencies=self.rec.latencies,
            errors=dict(self.errors),
            behind=reporter.behind,
            lost_connections=self.lost - lost_before,
        )

    async def _idle_until(self, end: float, reporter: _Reporter) -> None:
        while (now := time.monotonic()) < end:
            reporter.tick(now)
            await asyncio.sleep(min(0.05, end - now))

    async def _flat_out_until(self, end: float, reporter: _Reporter) -> None:
        """Each unit keeps ``window`` messages on the way; each arrival sends the next."""
        self._flat = True
        try:
            for unit in range(len(self._inflight)):
                for _ in range(max(0, self.plan.window - self._inflight[unit])):
                    self._send(unit)
            await self._idle_until(end, reporter)
        finally:
            self._flat = False

    async def _pace_until(self, end: float, rate: float, reporter: _Reporter) -> None:
        """Open loop: send what is due every ``TICK``, round robin over the units."""
        units = len(self._inflight)
        began = time.monotonic()
        sent = 0
        burst_cap = max(1, int(rate * 0.05))
        while (now := time.monotonic()) < end:
            due = int((now - began) * rate) - sent
            if due > 0:
                burst = min(due, burst_cap)
                for _ in range(burst):
                    self._send(self._next_unit)
                    self._next_unit = (self._next_unit + 1) % units
                sent += burst
                reporter.behind = max(reporter.behind, due - burst)
            reporter.tick(now)
            await asyncio.sleep(TICK)

    async def close(self) -> None:
        conns = list(self.conns.values())
        self.conns.clear()
        for start in range(0, len(conns), 500):
            await asyncio.gather(*(c.close() for c in conns[start : start + 500]))


class _Reporter:
    """Progress to the coordinator once a second."""

    def __init__(self, workload: Workload, report: Callable[[Progress], None]) -> None:
        self._workload = workload
        self._report = report
        self._next = time.monotonic() + REPORT_EVERY
        self.behind = 0

    def tick(self, now: float) -> None:
        if now < self._next:
            return
        self._next = now + REPORT_EVERY
        rec = self._workload.rec
        self._report(
            Progress(
                worker=self._workload.plan.index,
                sent=rec.total_expected,
                delivered=rec.total_delivered,
                p99_ms=rec.take_recent_p99(),
                behind=self.behind,
            )
        )


def _make(plan: WorkerPlan) -> Workload:
    if plan.mode == "raw":
        from benchmarks.raw import RawLoad

        return RawLoad(plan)
    if plan.target.protocol == "xmpp":
        from benchmarks.xmpp_chat import XmppChatLoad

        return XmppChatLoad(plan)
    from benchmarks.chat import ChatLoad

    return ChatLoad(plan)


async def _serve(plan: WorkerPlan, pipe: Pipe) -> None:
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: commands.put_nowait(pipe.recv()))
    # uvloop's add_reader makes the pipe non-blocking: a large step result would then fail to send
    os.set_blocking(pipe.fileno(), True)
    workload = _make(plan)

    def report(progress: Progress) -> None:
        pipe.send(("progress", progress))

    pipe.send(("ready", plan.index))
    while True:
        command, arg = await commands.get()
        if command == "connect":
            pipe.send(("connected", await workload.connect_all(report)))
        elif command == "step":
            pipe.send(("step", await workload.run_step(arg, report)))
        elif command == "close":
            await workload.close()
            loop.remove_reader(pipe.fileno())
            pipe.send(("closed", plan.index))
            return


def main(plan: WorkerPlan, pipe: Pipe) -> None:
    """The worker process's entry point."""
    raise_open_files()  # soft to hard (the coordinator raised the hard one where it could)
    logging.basicConfig(level=logging.WARNING, format=f"worker {plan.index}: %(levelname)s %(message)s")
    try:
        with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:  # the node's loop
            runner.run(_serve(plan, pipe))
    except (KeyboardInterrupt, BrokenPipeError, EOFError):
        pass
    finally:
        pipe.close()
