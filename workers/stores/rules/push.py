"""Notification state in every backend: bursts collapse into one push.

The first message that waits for an offline user marks a push (and an SMS check) as due and asks
for a job; later ones only join the user's pending list until the job takes it. Messages are
referenced by id; whether each is still undelivered is read from the receipts when the job runs.
"""

from __future__ import annotations

__all__ = ["PENDING_MAX"]

PENDING_MAX = 100
"""Message ids a user's pending list keeps, the newest: a longer burst is pushed as its last ones."""
