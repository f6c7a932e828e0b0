"""Commands run on a thread of the node (a single node, ``workers.commands_process`` false).

The node's own pipeline stores each batch on the runner's thread, with the job queue's retry
policy, and its events reach the node's clients through the in-process router: no job queue hop,
no encoding of the batch. Broker and store then share one GIL; ``child`` gives each its core.
"""

from __future__ import annotations

from workers.retry import MAX_BACKOFF_MS, MIN_BACKOFF_MS, Work, retry_when
from workers.runners.threaded import ThreadedRunner

__all__ = ["InlineRunner"]


class InlineRunner(ThreadedRunner):
    def __init__(
        self,
        process: Work,
        *,
        batch_size: int,
        linger: float = 0.0,
        min_backoff: float = MIN_BACKOFF_MS / 1000,
        max_backoff: float = MAX_BACKOFF_MS / 1000,
    ) -> None:
        """``process`` stores a batch and hands its events on (``Pipeline.process_batch``)."""
        super().__init__(
            process,
            name="mqchat-commands",
            batch_size=batch_size,
            linger=linger,
            when=retry_when,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
        )
