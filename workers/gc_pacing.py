"""Short garbage-collection pauses for a node with thousands of connections (and cheap full
collections in its commands process).

CPython's full collection walks every tracked object. A node holds many long-lived objects per
connection (session, handler, transport, streams...), so with thousands of connections each full
collection is a pause of hundreds of milliseconds, and they came every few seconds while clients
connected: the benchmarks' p99 were these pauses. ``GcPacing`` freezes what survives each
collection of the two older generations (``gc.freeze``: moved out of the collector's generations,
still freed by reference counting), so the oldest generation stays nearly empty and no collection
walks the connections' objects again (benchmarks/RESULTS.md has the pauses before and after).
The commands process (``workers/runners/child/``) holds no connections, but its full collections
walked SQLAlchemy's and the store's objects each time, a visible share of its time under load.

A cycle among frozen objects that becomes garbage later (a connection closed since) is not
collected while frozen: every ``refresh`` seconds the frozen objects go back to the collector,
whose next full collection (one long pause) frees those cycles, and freezing starts again.
"""

from __future__ import annotations

import gc
import time
from typing import Any

__all__ = ["REFRESH_SECONDS", "GcPacing"]

REFRESH_SECONDS = 600.0


class GcPacing:
    """Install with ``start`` (after startup, once per process), remove with ``stop``."""

    def __init__(self, refresh: float = REFRESH_SECONDS) -> None:
        self._refresh = refresh
        self._since = 0.0
        self.freezes = 0
        self.refreshes = 0

    def start(self) -> None:
        gc.collect()
        gc.freeze()  # what startup built lives as long as the process
        self._since = time.monotonic()
        gc.callbacks.append(self._collected)

    def stop(self) -> None:
        if self._collected in gc.callbacks:
            gc.callbacks.remove(self._collected)
        gc.unfreeze()

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info["generation"] == 0:
            return  # the youngest generation's survivors are not long-lived yet
        now = time.monotonic()
        if now - self._since >= self._refresh:
            self._since = now
            self.refreshes += 1
            gc.unfreeze()  # the next full collection sees everything, and frees old cycles
        else:
            self.freezes += 1
            gc.freeze()
