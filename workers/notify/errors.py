"""Errors of the notification senders.

NotifyError
├── TokenGone          the push token is no longer registered: forget it
├── Transient          try again later (5xx, timeouts, connection errors); the job is retried
└── Rejected           the provider refused the request for good; logged, not retried
"""

from __future__ import annotations

from workers.errors import Retryable


class NotifyError(Exception):
    pass


class TokenGone(NotifyError):
    pass


class Transient(NotifyError, Retryable):
    pass


class Rejected(NotifyError):
    pass
