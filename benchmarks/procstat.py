"""CPU and memory of processes (the broker, the load generator's workers) and of the machine."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]

__all__ = ["CpuWindow", "MachineWatch", "ProcWatch"]


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

    def _kids(self) -> list[psutil.Process]:
        if not self._children:
            return []
        kids = self._proc.children(recursive=True)
        return [kid for kid in kids if kid.pid not in self._exclude]

    def cpu(self) -> CpuWindow:
        try:
            times = self._proc.cpu_times()
            used = times.user + times.system
            kids = self._kids()
        except psutil.Error:
            return CpuWindow(time.monotonic(), 0.0)
        for kid in kids:
            try:
                kid_times = kid.cpu_times()
                used += kid_times.user + kid_times.system
            except psutil.Error:
                continue  # ended in the meantime
        return CpuWindow(time.monotonic(), used)

    def rss(self) -> int:
        """Resident memory in bytes, children included (0 when the process is gone)."""
        try:
            rss = int(self._proc.memory_info().rss)
            kids = self._kids()
        except psutil.Error:
            return 0
        for kid in kids:
            try:
                rss += int(kid.memory_info().rss)
            except psutil.Error:
                continue
        return rss

    def threads(self) -> int:
        try:
            return int(self._proc.num_threads())
        except psutil.Error:
            return 0


class MachineWatch:
    """Every core of the machine together: busy CPU seconds (100% = one core)."""

    cores = psutil.cpu_count() or 1

    def cpu(self) -> CpuWindow:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        busy = sum(times) - idle
        return CpuWindow(time.monotonic(), busy)
