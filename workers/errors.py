"""Errors of the workers package.

WorkerError
├── StoreError                 a store could not do what was asked
│   ├── UnknownUser            the user does not exist
│   ├── UserExists             create_user for an existing user
│   ├── UnknownDevice          the user has no such device
│   └── StoreUnavailable       the backend is down; the job is retried (a Retryable)
├── CommandError               a client command is refused; carries the wire error code
└── RunnerError                commands cannot be run as the settings ask (workers/runners/)

Retryable                      marker: a job that raises it is retried with backoff
"""

from __future__ import annotations

from client_sdk.contract import ErrorCode


class WorkerError(Exception):
    """Root of the workers package's errors."""


class Retryable(Exception):
    """Raised by something that may work later; Dramatiq retries the job with backoff."""


class StoreError(WorkerError):
    pass


class UnknownUser(StoreError):
    def __init__(self, user: str) -> None:
        super().__init__(f"no user {user!r}")
        self.user = user


class UserExists(StoreError):
    def __init__(self, user: str) -> None:
        super().__init__(f"user {user!r} already exists")
        self.user = user


class UnknownDevice(StoreError):
    def __init__(self, user: str, device: str) -> None:
        super().__init__(f"user {user!r} has no device {device!r}")
        self.user = user
        self.device = device


class StoreUnavailable(StoreError, Retryable):
    """The backend did not answer; the job that met it is retried later."""


class CommandError(WorkerError):
    """A command is refused: the sender gets an ``error`` event with this code and message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RunnerError(WorkerError):
    """Client commands cannot be run as the settings ask: a store the commands process cannot
    share, a commands process that does not start."""
