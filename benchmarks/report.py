"""Results: what a run measured, the warnings that go with it, and how it is printed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.stats import Percentiles

__all__ = [
    "GENERATOR_SATURATED",
    "RunReport",
    "StepReport",
    "SyncReport",
    "format_runs",
    "step_warnings",
    "sustainable",
    "write_json",
]

GENERATOR_SATURATED = 90.0
"""A worker process above this CPU % could not have sent or read any faster."""
MIB = 2**20


@dataclass
class StepReport:
    label: str
    rate: float | None
    seconds: float
    sent: int
    expected: int
    delivered: int
    latencies: dict[str, Percentiles]
    errors: dict[str, int]
    behind: int
    lost_connections: int
    broker_cpu: float | None
    broker_rss: int
    worker_cpu: list[float]
    machine_cpu: float
    cores: int
    store_cpu: float | None = None
    """The database server's processes for this store (PostgreSQL), apart from the broker's."""
    warnings: list[str] = field(default_factory=list)
    components: dict[str, float] = field(default_factory=dict)
    """CPU (% of one core) of each watched component (``--watch``) in the measured window."""
    components_drained: dict[str, float] = field(default_factory=dict)
    """CPU seconds of each watched component from the window's start until the step drained: with
    ``--warmup 0``, all the work of the step's messages, even where it lagged behind the load."""

    @property
    def send_rate(self) -> float:
        return self.sent / self.seconds

    @property
    def delivery_rate(self) -> float:
        return self.delivered / self.seconds

    @property
    def other_cpu(self) -> float:
        """CPU of the rest of the machine: other processes, and the kernel's loopback networking."""
        used = (self.broker_cpu or 0.0) + (self.store_cpu or 0.0) + sum(self.worker_cpu)
        return max(0.0, self.machine_cpu - used)

    def cpu_per_message(self, percent: float | None) -> float | None:
        """Microseconds of CPU per message sent at ``percent`` of a core (the cost of a message)."""
        rate = self.send_rate
        return None if percent is None or rate <= 0 else percent / 100 * 1e6 / rate

    @property
    def undelivered(self) -> int:
        return self.expected - self.delivered

    def p99(self, kind: str = "delivered") -> float | None:
        figures = self.latencies.get(kind)
        return figures.p99 if figures else None

    def summary(self) -> str:
        text = f"{self.label}: sent {self.send_rate:.0f}/s, delivered {self.delivery_rate:.0f}/s"
        for kind, figures in self.latencies.items():
            text += f"; {kind} p50 {figures.p50:.1f} p99 {figures.p99:.1f} max {figures.max:.0f} ms"
        if self.broker_cpu is not None:
            text += f"; broker CPU {self.broker_cpu:.0f}% RSS {self.broker_rss / MIB:.0f} MiB"
        if self.store_cpu is not None:
            text += f"; store CPU {self.store_cpu:.0f}% ({self.cpu_per_message(self.store_cpu):.0f} µs/msg)"
        text += "; generator CPU " + "/".join(f"{c:.0f}%" for c in self.worker_cpu)
        return text


@dataclass
class RunReport:
    broker: str
    mode: str
    procs: int
    idle: int
    pairs: int
    groups: int
    group_size: int
    connections: int
    connect_failed: int
    connect_seconds: float
    connect_errors: list[str]
    rss_before: int
    rss_after: int
    steps: list[StepReport] = field(default_factory=list)
    connect_cpu: float = 0.0
    """The broker's CPU seconds while everyone connected (children included): less moved by the
    rest of the machine than the connect time, on a busy host."""

    @property
    def rss_per_connection(self) -> float | None:
        if not self.connections or not self.rss_after:
            return None
        return (self.rss_after - self.rss_before) / self.connections


@dataclass
class SyncReport:
    messages: int
    preload_seconds: float
    connect_seconds: float
    sync_seconds: float
    """From the first ``sync`` command to the page that reached the last cursor."""
    pages: int
    entries: int
    last_cursor: int
    receipts: bool
    broker_cpu: float | None
    broker_rss: int
    broker_rss_before: int = 0
    """The node's RSS (its commands process included) when the sync began, and its peak."""
    broker_rss_peak: int = 0
    client_rss_before: int = 0
    """The load generator's (the syncing client's) RSS when the sync began, and its peak."""
    client_rss_peak: int = 0

    @property
    def total_seconds(self) -> float:
        return self.connect_seconds + self.sync_seconds


def step_warnings(step: StepReport) -> list[str]:
    warnings = []
    hot = [c for c in step.worker_cpu if c >= GENERATOR_SATURATED]
    if hot:
        warnings.append(
            f"load generator saturated (worker CPU {', '.join(f'{c:.0f}%' for c in hot)}): the broker "
            "may do more than measured; add --procs or lower the load"
        )
    if step.rate is not None and step.send_rate < 0.95 * step.rate:
        warnings.append(f"the generator sent {step.send_rate:.0f}/s of the {step.rate:g}/s asked")
    if step.machine_cpu >= 0.95 * 100 * step.cores:
        warnings.append(
            f"the machine's {step.cores} cores were busy ({step.machine_cpu:.0f}% of {100 * step.cores}%): "
            "broker and generator competed for CPU"
        )
    if step.broker_cpu is not None and step.other_cpu >= 50.0:
        warnings.append(
            f"the rest of the machine used {step.other_cpu:.0f}% CPU (other processes, kernel networking): "
            "the figures are noisy"
        )
    if step.undelivered:
        warnings.append(f"{step.undelivered} of {step.expected} deliveries had not arrived after the drain")
    if step.lost_connections:
        warnings.append(f"{step.lost_connections} connections were lost")
    if step.errors:
        warnings.append(f"errors: {step.errors}")
    return warnings


def sustainable(run: RunReport, p99_ms: float) -> StepReport | None:
    """The fastest fixed-rate step that kept up, delivered everything and kept p99 under ``p99_ms``."""
    good = [
        s
        for s in run.steps
        if s.rate is not None
        and s.send_rate >= 0.95 * s.rate
        and s.undelivered == 0
        and not s.lost_connections
        and (p99 := s.p99()) is not None
        and p99 <= p99_ms
    ]
    return max(good, key=lambda s: s.delivery_rate, default=None)


def _ms(figures: Percentiles | None) -> str:
    return "-" if figures is None else f"{figures.p50:.1f} / {figures.p99:.1f} / {figures.max:.0f}"


def format_runs(runs: list[RunReport], *, p99_ms: float = 10.0) -> str:
    """A plain-text report: one block per run, one table row per step, then the sustainable rates."""
    lines: list[str] = []
    for run in runs:
        shape = f"{run.idle} idle, {run.pairs} pairs"
        if run.groups:
            shape += f", {run.groups} groups of {run.group_size}"
        lines.append(f"== {run.broker} ({run.mode}: {shape}; {run.procs} generator processes)")
        per = run.rss_per_connection
        lines.append(
            f"connect+subscribe: {run.connections} connections in {run.connect_seconds:.2f} s"
            + (f", {run.connect_failed} failed" if run.connect_failed else "")
            + (
                f"; broker RSS {run.rss_before / MIB:.0f} -> {run.rss_after / MIB:.0f} MiB"
                + (f" ({per / 1024:.1f} KiB per connection)" if per is not None else "")
                if run.rss_after
                else ""
            )
            + (
                f"; broker CPU {run.connect_cpu:.2f} s"
                f" ({run.connect_cpu / run.connections * 1e6:.0f} µs per connection)"
                if run.connect_cpu and run.connections
                else ""
            )
        )
        if not run.steps:
            lines.append("")
            continue
        kinds = [
            k for k in ("delivered", "last", "sent", "receipt") if any(k in s.latencies for s in run.steps)
        ]
        header = ["step", "sent/s", "deliv/s"] + [f"{k} p50/p99/max ms" for k in kinds]
        stored = any(s.store_cpu is not None for s in run.steps)
        header += ["broker CPU", "broker RSS", "gen CPU", "other CPU", "CPU µs/msg broker/gen"]
        header += ["store CPU, µs/msg"] if stored else []
        header += ["notes"]
        rows = [header]
        for s in run.steps:
            row = [s.label, f"{s.send_rate:.0f}", f"{s.delivery_rate:.0f}"]
            row += [_ms(s.latencies.get(k)) for k in kinds]
            row += [
                "-" if s.broker_cpu is None else f"{s.broker_cpu:.0f}%",
                f"{s.broker_rss / MIB:.0f} MiB" if s.broker_rss else "-",
                "/".join(f"{c:.0f}%" for c in s.worker_cpu),
                f"{s.other_cpu:.0f}%",
                "/".join(
                    "-" if us is None else f"{us:.0f}"
                    for us in (s.cpu_per_message(s.broker_cpu), s.cpu_per_message(sum(s.worker_cpu)))
                ),
            ]
            if stored:
                store_us = s.cpu_per_message(s.store_cpu)
                row += [
                    "-" if s.store_cpu is None or store_us is None else f"{s.store_cpu:.0f}%, {store_us:.0f}"
                ]
            row += [f"{len(s.warnings)} warning(s)" if s.warnings else ""]
            rows.append(row)
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        for s in run.steps:
            if s.components:
                lines.append(
                    f"  {s.label}: CPU % of a core, µs per message: "
                    + ", ".join(
                        f"{name} {pct:.0f}% {us:.0f} µs"
                        for name, pct in s.components.items()
                        if (us := s.cpu_per_message(pct)) is not None
                    )
                )
            if s.components_drained and s.sent:
                lines.append(
                    f"  {s.label}: CPU µs per message through the drain: "
                    + ", ".join(
                        f"{name} {cpu * 1e6 / s.sent:.0f}" for name, cpu in s.components_drained.items()
                    )
                )
            for warning in s.warnings:
                lines.append(f"  {s.label}: {warning}")
        best = sustainable(run, p99_ms)
        if any(s.rate is not None for s in run.steps):
            lines.append(
                f"sustainable with p99 <= {p99_ms:g} ms: "
                + (f"{best.delivery_rate:.0f} msg/s (step {best.label})" if best else "no step qualified")
            )
        lines.append("")
    return "\n".join(lines)


def write_json(path: Path, payload: Any) -> None:
    def convert(item: Any) -> Any:
        if isinstance(item, RunReport | SyncReport):
            data = asdict(item)
            if isinstance(item, RunReport):
                data["rss_per_connection"] = item.rss_per_connection
            return data
        return item

    data = [convert(item) for item in payload] if isinstance(payload, list) else convert(payload)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
