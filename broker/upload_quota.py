"""How many media uploads, and how many bytes of them, one user may send (per node).

Two token buckets per user: one upload each, refilled at ``per_minute`` a minute (bursts of as
many), and bytes, refilled at ``bytes_per_hour`` an hour. An upload is admitted when both have
room (the bytes bucket for what the request announces, or at least one byte when it announces
nothing), counted then, and its bytes are charged when it ends: refused or cut-off uploads count
too, for what they made the node read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from broker.throttle import RateLimiter

__all__ = ["UploadQuota", "Verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why an upload must wait, and for how long (whole seconds, for ``Retry-After``)."""

    retry_after: int
    message: str


class UploadQuota:
    def __init__(
        self, *, per_minute: int, bytes_per_hour: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._per_minute = per_minute
        self._bytes_per_hour = bytes_per_hour
        self._uploads = RateLimiter(rate=per_minute / 60.0, burst=per_minute, clock=clock)
        self._bytes = RateLimiter(rate=bytes_per_hour / 3600.0, burst=bytes_per_hour, clock=clock)

    def check(self, user: str, announced: int | None) -> Verdict | None:
        """Whether an upload of ``announced`` bytes would be admitted now; counts nothing."""
        return self._verdict(self._bytes.wait(user, _cost(announced)), self._uploads.wait(user))

    def admit(self, user: str, announced: int | None) -> Verdict | None:
        """None, and the upload is counted; or why it must wait."""
        refused = self._verdict(self._bytes.wait(user, _cost(announced)), 0.0)
        return refused or self._verdict(0.0, self._uploads.take(user))

    def received(self, user: str, size: int) -> None:
        """Charge the bytes an admitted upload made the node read."""
        if size > 0:
            self._bytes.charge(user, float(size))

    def _verdict(self, bytes_wait: float, uploads_wait: float) -> Verdict | None:
        if bytes_wait > 0:
            seconds = math.ceil(bytes_wait)
            volume = f"{self._bytes_per_hour / 1024**2:g} MiB"
            return Verdict(seconds, f"you may upload at most {volume} an hour; try again in {seconds} s")
        if uploads_wait > 0:
            seconds = math.ceil(uploads_wait)
            uploads = f"{self._per_minute} uploads"
            return Verdict(seconds, f"you may start at most {uploads} a minute; try again in {seconds} s")
        return None


def _cost(announced: int | None) -> float:
    return float(max(1, announced or 0))
