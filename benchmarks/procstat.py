"""CPU and memory of processes (the broker, the load generator's workers) and of the machine."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]

__all__ = ["CpuWindow", "MachineWatch", "ProcWatch", "ProcessSet", "StoreWatch"]


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds used at a point in (monotonic) time, to diff against a later one."""

    at: float
    cpu: float

    def percent_until(self, later: CpuWindow) -> float:
        """Average CPU between the two points, in % of one core."""
        elapsed = later.at - self.at
        return 100.0 * (later.cpu - self.cpu) / elapsed if elapsed > 0 else 0.0


class ProcWatch:
    """One process (with all its threads) by pid; with ``children``, its CPU and memory include
    those of its child processes (a node's commands process) except those in ``exclude``."""

    def __init__(self, pid: int, *, children: bool = False, exclude: frozenset[int] = frozenset()) -> None:
        self.pid = pid
        self._proc = psutil.Process(pid)
        self._children = children
        self._exclude = exclude

    def alive(self) -> bool:
        try:
            return bool(self._proc.is_running() and self._proc.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:
            return False

    def _total(self, read: Callable[[psutil.Process], float]) -> float | None:
        """``read`` of the process plus, with ``children``, of its children not excluded (None when
        the process is gone)."""
        try:
            total = read(self._proc)
            kids = self._proc.children(recursive=True) if self._children else []
        except psutil.Error:
            return None
        for kid in kids:
            if kid.pid not in self._exclude:
                with contextlib.suppress(psutil.Error):  # ended in the meantime
                    total += read(kid)
        return total

    def cpu(self) -> CpuWindow:
        used = self._total(_cpu_seconds)
        return CpuWindow(time.monotonic(), used or 0.0)

    def rss(self) -> int:
        """Resident memory in bytes, children included (0 when the process is gone)."""
        return int(self._total(lambda proc: proc.memory_info().rss) or 0)

    def threads(self) -> int:
        try:
            return int(self._proc.num_threads())
        except psutil.Error:
            return 0


def _cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class MachineWatch:
    """Every core of the machine together: busy CPU seconds (100% = one core)."""

    cores = psutil.cpu_count() or 1

    def cpu(self) -> CpuWindow:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        busy = sum(times) - idle
        return CpuWindow(time.monotonic(), busy)


class ProcessSet:
    """Every process whose command line matches ``pattern`` (a regular expression), with their
    children: one component of a deployment (``mqchat worker``, RabbitMQ's ``beam.smp``, the
    PostgreSQL backends of one database), found again at each sample, so that a process that
    starts in between counts from its start."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def _processes(self) -> dict[int, psutil.Process]:
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or ())
            if cmdline and self.pattern.search(cmdline):
                found[proc.pid] = proc
                with contextlib.suppress(psutil.Error):
                    found.update((kid.pid, kid) for kid in proc.children(recursive=True))
        return found

    def cpu_by_pid(self) -> dict[int, float]:
        """CPU seconds of each matching process so far."""
        used = {}
        for pid, proc in self._processes().items():
            with contextlib.suppress(psutil.Error):  # ended in the meantime
                used[pid] = _cpu_seconds(proc)
        return used


def percent_between(before: dict[int, float], after: dict[int, float], seconds: float) -> float:
    """The CPU (% of one core) the processes of ``after`` used since ``before``: a process new in
    ``after`` counts all it used (it started in between); one that ended is lost."""
    used = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
    return 100.0 * used / seconds if seconds > 0 else 0.0


class StoreWatch:
    """The PostgreSQL backends serving one database (their process titles name it): the CPU the
    store costs, which the node's own CPU leaves out. Backends come and go with the node's pool, so
    each one's CPU is added up as it grows; one that ended loses only what it used since the last
    reading. ``for_url`` gives None for a store that is not PostgreSQL."""

    def __init__(self, database: str) -> None:
        self.database = database
        self._seen: dict[int, float] = {}
        self._total = 0.0

    @classmethod
    def for_url(cls, url: str | None) -> StoreWatch | None:
        if not url:
            return None
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() not in ("postgresql", "postgres") or not parsed.database:
            return None
        return cls(parsed.database)

    def _backends(self) -> list[psutil.Process]:
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            # "postgres: [<cluster>:] <user> <database> <client> <state>"
            words = " ".join(proc.info.get("cmdline") or []).split()
            if not words or words[0] != "postgres:":
                continue
            if len(words) > 1 and words[1].endswith(":"):
                words = words[1:]
            if len(words) >= 3 and words[2] == self.database:
                found.append(proc)
        return found

    def cpu(self) -> CpuWindow:
        seen: dict[int, float] = {}
        for proc in self._backends():
            with contextlib.suppress(psutil.Error):
                used = _cpu_seconds(proc)
                seen[proc.pid] = used
                self._total += used - self._seen.get(proc.pid, 0.0)
        self._seen = seen
        return CpuWindow(time.monotonic(), self._total)
