"""Errors of media handling.

MediaError
├── MediaRefused          the upload is not an acceptable image or video (wire code ``bad_media``)
│   └── TooLarge          it is larger than the limit for its type (HTTP 413)
├── ObjectMissing         object storage has no object with that key
└── StorageUnavailable    object storage did not answer; the job is retried (a Retryable)
"""

from __future__ import annotations

from workers.errors import Retryable, WorkerError

__all__ = ["MediaError", "MediaRefused", "ObjectMissing", "StorageUnavailable", "TooLarge"]


class MediaError(WorkerError):
    pass


class MediaRefused(MediaError):
    """The message says what is wrong with the file, in words for its sender."""


class TooLarge(MediaRefused):
    def __init__(self, limit: int, what: str = "the file") -> None:
        super().__init__(f"{what} is larger than the limit of {limit} bytes")
        self.limit = limit


class ObjectMissing(MediaError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no stored object {key!r}")
        self.key = key


class StorageUnavailable(MediaError, Retryable):
    pass
