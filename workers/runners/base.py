"""The one interface of the ways to run client commands: what ``Ingest`` hands batches to.

A runner's life, driven from the node's event loop::

    await runner.start()
    runner.submit(node, batch)   # whenever runner.room(); on_room says when there is room again
    await runner.drain(timeout)  # at stop: every batch submitted is done
    await runner.close()

``taken`` counts the commands submitted that the runner has in hand (stored, enqueued, or on their
way to a process that stores them); the others still count against ingest's bound, past which it
refuses commands with ``busy``. A runner hands the events of the commands it ran back to the node
through the one delivery callback the node gave it (directly, or through the job queue and the
workers), never by returning them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

__all__ = ["Batch", "CommandRunner"]

Batch = list[dict[str, Any]]
"""Validated commands in the order the node received them: ``[{"user": …, "cmd": {…}}, …]``."""


def _nothing() -> None:
    return None


class CommandRunner(ABC):
    """Runs the batches of commands a node accepted (``inline``, ``child`` or ``queue``)."""

    def __init__(self) -> None:
        self.taken = 0
        """Commands submitted that the runner has in hand (written by the runner only)."""
        self.on_room: Callable[[], None] = _nothing
        """Called on the event loop when ``room()`` may have become true (set by who submits)."""

    @abstractmethod
    async def start(self) -> None:
        """Make ready to take batches (start a thread or a process); on the event loop."""

    @abstractmethod
    def room(self) -> bool:
        """Whether a batch may be submitted now."""

    @abstractmethod
    def submit(self, node: str, batch: Batch) -> None:
        """Take ``batch`` of commands received by ``node``; never blocks, never raises, and never
        calls ``on_room`` itself."""

    @abstractmethod
    async def drain(self, timeout: float) -> None:
        """Wait until every batch submitted is done (at most ``timeout`` seconds); submit no more."""

    @abstractmethod
    async def close(self) -> None:
        """Stop, giving up what ``drain`` could not finish (it is logged)."""
