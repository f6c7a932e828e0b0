"""The machine a run measured: its CPU, its cores, and how fast it runs a fixed piece of Python.

Each session gets whatever machine it gets, and the same code has measured up to twice as fast on
one as on another (``RESULTS.md``). The reference figure, printed at the top of every report, is
the time of a fixed pure-Python workload shaped like the node's own (a chat command's JSON read
and written, a dict and a list filled): compare it between two reports before comparing their
figures. Best of several rounds, so that a busy moment does not count; lower is faster.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Machine", "describe", "reference_us"]

_COMMAND = {"v": 1, "type": "send", "id": "c-000042", "to": "user-00017", "text": "hello " * 20}


@dataclass(frozen=True)
class Machine:
    cpu: str
    cores: int
    reference_us: float
    """Microseconds per round of the reference workload (lower is faster)."""

    def line(self) -> str:
        return (
            f"machine: {self.cpu}, {self.cores} cores; Python reference {self.reference_us:.1f} µs "
            "(lower is faster; benchmarks/machine.py)"
        )


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _round() -> None:
    seen: dict[str, int] = {}
    order: list[str] = []
    for i in range(20):
        command = json.loads(json.dumps({**_COMMAND, "id": f"c-{i}"}))
        key = f"{command['to']}:{command['id']}"
        seen[key] = seen.get(key, 0) + len(command["text"])
        order.append(key)
    order.sort()


def reference_us(rounds: int = 500, tries: int = 5) -> float:
    """Microseconds per round of the reference workload, best of ``tries``."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        for _ in range(rounds):
            _round()
        best = min(best, time.perf_counter() - started)
    return best * 1e6 / rounds


def describe() -> Machine:
    return Machine(cpu=cpu_model(), cores=os.cpu_count() or 1, reference_us=reference_us())
