"""Latency samples and their percentiles."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Percentiles", "Samples", "merge", "percentiles"]

Samples = array  # array("d") of seconds

PERCENTILES = (50.0, 90.0, 99.0)


@dataclass(frozen=True)
class Percentiles:
    """Latency figures in milliseconds over ``count`` samples."""

    count: int
    p50: float
    p90: float
    p99: float
    max: float

    def as_dict(self) -> dict[str, float]:
        return {"count": self.count, "p50": self.p50, "p90": self.p90, "p99": self.p99, "max": self.max}


def merge(parts: Iterable[array[float]]) -> array[float]:
    out: array[float] = array("d")
    for part in parts:
        out.extend(part)
    return out


def _rank(ordered: list[float], pct: float) -> float:
    """Nearest-rank percentile of a sorted list."""
    index = max(0, math.ceil(pct / 100.0 * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def percentiles(samples: Iterable[float]) -> Percentiles | None:
    """p50/p90/p99/max in milliseconds, or None without samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    p50, p90, p99 = (_rank(ordered, p) * 1000.0 for p in PERCENTILES)
    return Percentiles(count=len(ordered), p50=p50, p90=p90, p99=p99, max=ordered[-1] * 1000.0)
