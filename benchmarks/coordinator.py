"""The coordinator: splits a scenario over worker processes, drives its steps, samples the broker.

It runs in the main process and stays light (it only reads pipes and samples CPU once a
second), so the workers and the broker get the machine.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from multiprocessing.connection import wait
from typing import Any

from benchmarks import worker
from benchmarks.limits import source_addresses
from benchmarks.plan import ConnectResult, Mode, Progress, Step, StepResult, Target, WorkerPlan
from benchmarks.procstat import CpuWindow, MachineWatch, ProcessSet, ProcWatch, StoreWatch, percent_between
from benchmarks.progress import Progress as Display
from benchmarks.report import RunReport, StepReport, step_warnings
from benchmarks.stats import merge, percentiles

__all__ = ["BenchError", "Scenario", "new_run_id", "run_scenario", "scenario_users"]


class BenchError(Exception):
    """The benchmark could not run (a worker died, nothing could connect...)."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:6]


@dataclass(frozen=True)
class Scenario:
    mode: Mode
    idle: int = 0
    pairs: int = 0
    groups: int = 0
    group_size: int = 5
    rates: tuple[float | None, ...] = (None,)
    """Total messages per second of each step; None: flat out."""
    warmup: float = 2.0
    seconds: float = 10.0
    drain: float = 10.0
    procs: int = 2
    qos: int = 1
    payload: int = 100
    window: int = 10
    keepalive: int = 60
    connect_concurrency: int = 200
    receipts: bool = True
    run_id: str = field(default_factory=new_run_id)


@dataclass(frozen=True)
class Users:
    idle: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    groups: tuple[tuple[str, ...], ...]

    def all(self) -> list[str]:
        names = list(self.idle)
        for pair in self.pairs:
            names += pair
        for group in self.groups:
            names += group
        return names


def scenario_users(scenario: Scenario) -> Users:
    run = scenario.run_id
    return Users(
        idle=tuple(f"b{run}-i{n}" for n in range(scenario.idle)),
        pairs=tuple((f"b{run}-p{n}a", f"b{run}-p{n}b") for n in range(scenario.pairs)),
        groups=tuple(
            tuple(f"b{run}-g{n}m{m}" for m in range(scenario.group_size)) for n in range(scenario.groups)
        ),
    )


def _plans(scenario: Scenario, target: Target, users: Users) -> list[WorkerPlan]:
    procs = max(1, scenario.procs)
    idle_share = [users.idle[i::procs] for i in range(procs)]
    # on loopback only: a remote broker is reached from the machine's own address
    sources = tuple(source_addresses(len(users.all()))) if target.host == "127.0.0.1" else ()
    return [
        WorkerPlan(
            index=i,
            target=target,
            mode=scenario.mode,
            run_id=scenario.run_id,
            idle=idle_share[i],
            pairs=users.pairs[i::procs],
            groups=users.groups[i::procs],
            qos=scenario.qos,
            payload=scenario.payload,
            window=scenario.window,
            keepalive=scenario.keepalive,
            connect_concurrency=scenario.connect_concurrency,
            receipts=scenario.receipts,
            sources=sources,
            procs=procs,
        )
        for i in range(procs)
    ]


class _Workers:
    """The worker processes and their pipes."""

    def __init__(self, plans: list[WorkerPlan]) -> None:
        context = multiprocessing.get_context("spawn")
        self.plans = plans
        self.pipes: list[Pipe] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for plan in plans:
            parent, child = context.Pipe()
            proc = context.Process(
                target=worker.main, args=(plan, child), name=f"bench-worker-{plan.index}", daemon=True
            )
            proc.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.watches = [ProcWatch(proc.pid) for proc in self.procs if proc.pid is not None]

    def send(self, command: str, arg: Any = None) -> None:
        for pipe in self.pipes:
            pipe.send((command, arg))

    def collect(
        self,
        kind: str,
        *,
        timeout: float,
        on_progress: Callable[[Progress], None] = lambda p: None,
        on_idle: Callable[[], None] = lambda: None,
    ) -> list[Any]:
        """One ``kind`` answer from every worker, handling progress reports meanwhile."""
        answers: dict[int, Any] = {}
        deadline = time.monotonic() + timeout
        while len(answers) < len(self.pipes):
            if time.monotonic() > deadline:
                raise BenchError(f"workers did not answer {kind!r} within {timeout:.0f} s")
            for index, proc in enumerate(self.procs):
                if index not in answers and not proc.is_alive():
                    raise BenchError(f"worker {index} died (exit code {proc.exitcode})")
            for pipe in wait(self.pipes, timeout=0.1):
                assert isinstance(pipe, Pipe)
                try:
                    message, payload = pipe.recv()
                except EOFError:
                    continue
                if message == "progress":
                    on_progress(payload)
                elif message == kind:
                    answers[self.pipes.index(pipe)] = payload
            on_idle()
        return [answers[i] for i in range(len(self.pipes))]

    def close(self) -> None:
        try:
            self.send("close")
            self.collect("closed", timeout=60)
        except (BenchError, OSError):
            pass
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


def _step_label(rate: float | None) -> str:
    return "flat out" if rate is None else f"{rate:g}/s"


def run_scenario(
    scenario: Scenario,
    target: Target,
    users: Users,
    display: Display,
    *,
    on_measure: Callable[[int, float], None] | None = None,
    on_connect: tuple[Callable[[], None], Callable[[], None]] | None = None,
    components: dict[str, ProcessSet] | None = None,
    store: StoreWatch | None = None,
) -> RunReport:
    """Connect everyone, run each step, and report. ``on_measure(step_index, seconds)`` is called
    when a step's measured window opens, ``on_connect`` (start, stop) around the connect phase
    (the profiler hooks in there). ``components``: processes whose CPU each step also reports;
    ``store``: the database's processes, whose CPU is reported as the store's."""
    plans = _plans(scenario, target, users)
    total_conns = len(users.all()) if target.mqchat or scenario.mode == "chat" else _plain_conns(users)
    machine = MachineWatch()
    workers = _Workers(plans)
    # the broker's CPU includes its child processes (a node's commands process), not the generator's
    generator = frozenset(watch.pid for watch in workers.watches)
    broker = ProcWatch(target.pid, children=True, exclude=generator) if target.pid else None
    try:
        workers.collect("ready", timeout=120)
        time.sleep(0.5)
        rss_before = broker.rss() if broker else 0
        connected_now: dict[int, int] = {}

        def connect_progress(p: Progress) -> None:
            connected_now[p.worker] = p.connected
            display.update(f"[{target.name}] connecting {sum(connected_now.values())}/{total_conns}")

        if on_connect is not None:
            on_connect[0]()
        cpu_before = broker.cpu() if broker else None
        started = time.monotonic()
        workers.send("connect")
        connects: list[ConnectResult] = workers.collect(
            "connected", timeout=600, on_progress=connect_progress
        )
        connect_seconds = time.monotonic() - started
        connect_cpu = broker.cpu().cpu - cpu_before.cpu if broker and cpu_before else 0.0
        if on_connect is not None:
            on_connect[1]()
        connected = sum(c.connected for c in connects)
        failed = sum(c.failed for c in connects)
        errors = [e for c in connects for e in c.errors]
        time.sleep(1.0)  # let the broker settle before reading its memory
        rss_after = broker.rss() if broker else 0
        report = RunReport(
            broker=target.name,
            mode=scenario.mode,
            procs=len(plans),
            idle=scenario.idle,
            pairs=scenario.pairs,
            groups=scenario.groups,
            group_size=scenario.group_size if scenario.groups else 0,
            connections=connected,
            connect_failed=failed,
            connect_seconds=connect_seconds,
            connect_errors=errors,
            rss_before=rss_before,
            rss_after=rss_after,
            connect_cpu=connect_cpu,
        )
        display.note(
            f"[{target.name}] {connected} connections subscribed in {connect_seconds:.2f} s"
            + (f" ({failed} failed: {errors[:2]})" if failed else "")
            + (f"; broker RSS {rss_before / 2**20:.0f} -> {rss_after / 2**20:.0f} MiB" if broker else "")
        )
        if failed or (scenario.pairs == 0 and scenario.groups == 0):
            return report
        units = [len(p.pairs) + len(p.groups) for p in plans]
        for index, rate in enumerate(scenario.rates):
            step = _run_step(
                scenario,
                index,
                rate,
                units,
                workers,
                broker,
                machine,
                display,
                target,
                on_measure,
                components or {},
                store,
            )
            report.steps.append(step)
            if rate is not None and _overloaded(step) and index + 1 < len(scenario.rates):
                display.note(
                    f"[{target.name}] the broker did not keep up at {rate:g}/s: the sweep stops here"
                )
                break
        return report
    finally:
        workers.close()


BACKLOG_P99_MS = 1000.0
"""A fixed-rate step whose p99 passes this was queueing up: the broker did not keep up."""


def _overloaded(step: StepReport) -> bool:
    """A fixed-rate step left a backlog: faster steps would only measure the queue."""
    assert step.rate is not None
    p99 = step.p99()
    return (
        step.delivery_rate < 0.9 * step.rate
        or step.undelivered > 0
        or (p99 is not None and p99 > BACKLOG_P99_MS)
    )


def _plain_conns(users: Users) -> int:
    return len(users.idle) + 2 * len(users.pairs)


def _run_step(
    scenario: Scenario,
    index: int,
    rate: float | None,
    units: list[int],
    workers: _Workers,
    broker: ProcWatch | None,
    machine: MachineWatch,
    display: Display,
    target: Target,
    on_measure: Callable[[int, float], None] | None,
    components: dict[str, ProcessSet],
    store: StoreWatch | None = None,
) -> StepReport:
    total_units = sum(units) or 1
    start_at = time.monotonic() + 0.3
    measure_from = start_at + scenario.warmup
    measure_to = measure_from + scenario.seconds
    for pipe, share in zip(workers.pipes, units, strict=True):
        step = Step(
            rate=None if rate is None else rate * share / total_units,
            start_at=start_at,
            warmup=scenario.warmup,
            seconds=scenario.seconds,
            drain=scenario.drain,
        )
        pipe.send(("step", step))
    label = _step_label(rate)
    windows: dict[str, list[CpuWindow]] = {}
    parts = _Components(components)
    ticker = _Ticker(broker, workers.watches)

    def sample(point: str) -> None:
        values = [w.cpu() for w in workers.watches] + [machine.cpu()]
        values.append(broker.cpu() if broker else values[-1])
        values.append(store.cpu() if store else values[-1])
        windows[point] = values
        parts.sample(point)

    def on_idle() -> None:
        now = time.monotonic()
        if "from" not in windows and now >= measure_from:
            sample("from")
            if on_measure is not None:
                on_measure(index, scenario.seconds)
        if "to" not in windows and now >= measure_to:
            sample("to")
        phase = "warm-up" if now < measure_from else "measuring" if now < measure_to else "draining"
        line = ticker.line(now)
        if line is not None:
            display.update(f"[{target.name}] step {index + 1}/{len(scenario.rates)} {label} {phase} | {line}")

    results: list[StepResult] = workers.collect(
        "step",
        timeout=scenario.warmup + scenario.seconds + scenario.drain + 120,
        on_progress=ticker.progress,
        on_idle=on_idle,
    )
    if "to" not in windows:
        sample("to")
    if "from" not in windows:
        windows["from"] = windows["to"]
    worker_cpu, machine_cpu, broker_cpu, store_cpu = _cpu_figures(
        windows, len(workers.watches), broker is not None, store is not None
    )
    rss = broker.rss() if broker else 0
    latencies = {}
    for kind in ("delivered", "last", "sent", "receipt"):
        figures = percentiles(merge(r.latencies[kind] for r in results if kind in r.latencies))
        if figures is not None:
            latencies[kind] = figures
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r.errors)
    sent = sum(r.sent for r in results)
    step_report = StepReport(
        label=label,
        rate=rate,
        seconds=scenario.seconds,
        sent=sent,
        expected=sum(r.expected for r in results),
        delivered=sum(r.delivered for r in results),
        latencies=latencies,
        errors=dict(errors),
        behind=max((r.behind for r in results), default=0),
        lost_connections=sum(r.lost_connections for r in results),
        broker_cpu=broker_cpu,
        broker_rss=max(rss, ticker.rss_peak),
        store_cpu=store_cpu,
        worker_cpu=worker_cpu,
        machine_cpu=machine_cpu,
        cores=MachineWatch.cores,
        components=parts.percent(),
        components_drained=parts.drained(),
    )
    step_report.warnings = step_warnings(step_report)
    display.note(f"[{target.name}] {step_report.summary()}")
    for warning in step_report.warnings:
        display.note(f"[{target.name}]   warning: {warning}")
    return step_report


def _cpu_figures(
    windows: dict[str, list[CpuWindow]], n: int, broker: bool, store: bool
) -> tuple[list[float], float, float | None, float | None]:
    """Each generator worker's, the machine's, the broker's and the store's CPU (% of one core) over
    the measured window, from ``sample``'s readings (workers, machine, broker, store)."""
    cpu_from, cpu_to = windows["from"], windows["to"]
    worker_cpu = [cpu_from[i].percent_until(cpu_to[i]) for i in range(n)]
    machine_cpu = cpu_from[n].percent_until(cpu_to[n])
    broker_cpu = cpu_from[n + 1].percent_until(cpu_to[n + 1]) if broker else None
    store_cpu = cpu_from[n + 2].percent_until(cpu_to[n + 2]) if store else None
    return worker_cpu, machine_cpu, broker_cpu, store_cpu


class _Components:
    """The CPU of the watched components at the points of a step's window."""

    def __init__(self, components: dict[str, ProcessSet]) -> None:
        self._components = components
        self._at: dict[str, tuple[float, dict[str, dict[int, float]]]] = {}

    def sample(self, point: str) -> None:
        if self._components:
            self._at[point] = (time.monotonic(), {n: c.cpu_by_pid() for n, c in self._components.items()})

    def percent(self, until: str = "to") -> dict[str, float]:
        """CPU (% of a core) from the window's start to ``until``."""
        if "from" not in self._at or until not in self._at:
            return {}
        (start, before), (end, after) = self._at["from"], self._at[until]
        return {name: percent_between(before[name], after[name], end - start) for name in self._components}

    def drained(self) -> dict[str, float]:
        """CPU seconds from the window's start until now, when the step has drained."""
        self.sample("drained")
        if "from" not in self._at or "drained" not in self._at:
            return {}
        seconds = self._at["drained"][0] - self._at["from"][0]
        return {name: pct * seconds / 100 for name, pct in self.percent("drained").items()}


class _Ticker:
    """The once-a-second progress line: rates since the last line, the workers' recent p99,
    broker and generator CPU."""

    def __init__(self, broker: ProcWatch | None, gen: list[ProcWatch]) -> None:
        self._broker = broker
        self._gen = gen
        self._last: dict[int, Progress] = {}
        self._at = time.monotonic()
        self._sent = self._delivered = 0
        self._broker_cpu = broker.cpu() if broker else None
        self._gen_cpu = [w.cpu() for w in gen]
        self.rss_peak = 0

    def progress(self, p: Progress) -> None:
        self._last[p.worker] = p

    def line(self, now: float) -> str | None:
        elapsed = now - self._at
        if elapsed < 1.0:
            return None
        sent = sum(p.sent for p in self._last.values())
        delivered = sum(p.delivered for p in self._last.values())
        text = (
            f"sent {(sent - self._sent) / elapsed:6.0f}/s"
            f" delivered {(delivered - self._delivered) / elapsed:6.0f}/s"
        )
        p99s = [p.p99_ms for p in self._last.values() if p.p99_ms is not None]
        if p99s:
            text += f" | p99 {max(p99s):6.1f} ms"
        if self._broker is not None and self._broker_cpu is not None:
            cpu = self._broker.cpu()
            rss = self._broker.rss()
            self.rss_peak = max(self.rss_peak, rss)
            text += f" | broker CPU {self._broker_cpu.percent_until(cpu):3.0f}% RSS {rss / 2**20:.0f} MiB"
            self._broker_cpu = cpu
        gen = [w.cpu() for w in self._gen]
        text += " | gen CPU " + "/".join(
            f"{a.percent_until(b):.0f}%" for a, b in zip(self._gen_cpu, gen, strict=True)
        )
        self._at, self._sent, self._delivered, self._gen_cpu = now, sent, delivered, gen
        return text
