"""Release inbox events strictly in cursor order, each exactly once (pure logic, no I/O, not thread-safe).

An inbox is numbered 1, 2, 3, ... without gaps. Events arrive live and from ``sync`` pages, so they
can arrive twice or out of order. :class:`Sequencer` remembers the highest cursor processed in
order, drops what is at or below it, buffers what is ahead of it, and tells its owner when a gap
has stayed open long enough that a ``sync`` should fill it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["DEFAULT_GAP_TIMEOUT", "Sequencer"]

DEFAULT_GAP_TIMEOUT = 0.3
"""Seconds a gap may stay open before a ``sync`` is due."""

T = TypeVar("T")


class Sequencer(Generic[T]):
    """Orders items by cursor.

    ``processed`` is the highest cursor released in order. :meth:`offer` returns the items that
    became ready, in cursor order. Time is passed in (any monotonic clock), so the class is
    deterministic and has no threads.
    """

    __slots__ = ("_buffer", "_gap_since", "_gap_timeout", "_processed")

    def __init__(self, *, processed: int = 0, gap_timeout: float = DEFAULT_GAP_TIMEOUT) -> None:
        if processed < 0:
            raise ValueError(f"processed must be >= 0, got {processed}")
        if gap_timeout < 0:
            raise ValueError(f"gap_timeout must be >= 0, got {gap_timeout}")
        self._processed = processed
        self._gap_timeout = gap_timeout
        self._buffer: dict[int, T] = {}
        self._gap_since: float | None = None

    @property
    def processed(self) -> int:
        """The highest cursor released in order (0 before the first)."""
        return self._processed

    @property
    def buffered(self) -> int:
        """How many items wait for a missing predecessor."""
        return len(self._buffer)

    @property
    def has_gap(self) -> bool:
        """Whether items are buffered behind a missing cursor."""
        return bool(self._buffer)

    @property
    def gap_deadline(self) -> float | None:
        """When the open gap becomes due for a ``sync`` (None when there is no gap)."""
        return None if self._gap_since is None else self._gap_since + self._gap_timeout

    def offer(self, cursor: int, item: T, *, now: float) -> list[T]:
        """Take the item at ``cursor``; return every item now ready, in cursor order (maybe none).

        A cursor at or below :attr:`processed`, or one already buffered, is a duplicate: dropped.
        """
        if cursor < 1:
            raise ValueError(f"cursor must be >= 1, got {cursor}")
        if cursor <= self._processed or cursor in self._buffer:
            return []
        if cursor > self._processed + 1:
            if not self._buffer:
                self._gap_since = now
            self._buffer[cursor] = item
            return []
        ready = [item]
        self._processed = cursor
        while self._processed + 1 in self._buffer:
            self._processed += 1
            ready.append(self._buffer.pop(self._processed))
        # Progress was made: whatever gap is left is measured from now.
        self._gap_since = now if self._buffer else None
        return ready

    def skip_to(self, cursor: int) -> None:
        """Everything up to ``cursor`` is gone (the server pruned it): count it as processed, and
        drop what was buffered up to there; what is buffered beyond stays, released from there."""
        if cursor <= self._processed:
            return
        self._processed = cursor
        for buffered in [c for c in self._buffer if c <= cursor]:
            del self._buffer[buffered]
        if not self._buffer:
            self._gap_since = None

    def gap_due(self, *, now: float) -> bool:
        """Whether a gap has stayed open for the gap timeout, so a ``sync`` should fill it."""
        deadline = self.gap_deadline
        return deadline is not None and now >= deadline

    def restart_gap_clock(self, *, now: float) -> None:
        """A ``sync`` was just sent: give it the gap timeout again before another one is due."""
        if self._buffer:
            self._gap_since = now
