"""Removing media objects from storage, and the job that tries again when storage fails.

A message deleted for everyone gives up its objects (the file, its thumbnail or poster): the store
forgets them in the deletion's transaction, so nobody may download them from then on, and the
caller removes them from storage once that is committed (:func:`remove_objects`). What storage
did not remove is handed to the cleanup job (``mqchat_remove_media`` on the media queue), which
the Dramatiq ``Retries`` middleware runs again with backoff. A failure never undoes the deletion:
an object left behind is unreachable (no message names it), only wasted space.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

import dramatiq

from workers.jobs import MEDIA_QUEUE, enqueue
from workers.media.base import Storage
from workers.media.errors import StorageUnavailable

__all__ = ["CLEANUP_ACTOR", "declare_cleanup_actor", "remove_objects", "send_cleanup_job"]

log = logging.getLogger(__name__)

CLEANUP_ACTOR: Final = "mqchat_remove_media"


def remove_objects(storage: Storage, keys: Sequence[str]) -> list[str]:
    """Remove each object (a missing one is fine); returns the keys storage failed to remove."""
    left = []
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # each backend has its own errors: the job tries again
            log.warning("could not remove media object %s", key, exc_info=True)
            left.append(key)
    return left


def declare_cleanup_actor(broker: dramatiq.Broker, storage: Storage) -> dramatiq.Actor[Any, Any]:
    """The cleanup job, on the media queue of whoever runs the media jobs."""

    def remove(keys: list[str]) -> None:
        left = remove_objects(storage, keys)
        if left:
            raise StorageUnavailable(f"{len(left)} media object(s) not removed yet: {', '.join(left)}")

    return dramatiq.Actor(
        remove, broker=broker, actor_name=CLEANUP_ACTOR, queue_name=MEDIA_QUEUE, priority=0, options={}
    )


def send_cleanup_job(broker: dramatiq.Broker, keys: Sequence[str]) -> None:
    """Ask the cleanup job to remove ``keys`` (blocking: call it on a thread)."""
    if MEDIA_QUEUE not in broker.get_declared_queues():
        broker.declare_queue(MEDIA_QUEUE)
    enqueue(
        broker,
        dramatiq.Message(
            queue_name=MEDIA_QUEUE, actor_name=CLEANUP_ACTOR, args=(list(keys),), kwargs={}, options={}
        ),
    )
