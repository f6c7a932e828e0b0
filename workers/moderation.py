"""Deleting a message for everyone, for callers that are not MQTT commands: the admin API, the CLI.

:func:`delete_for_everyone` makes the store change (one transaction: the tombstone, the scrubbed
inbox entries and the ``deleted`` events, see ``workers.stores.rules.deletion``), then publishes
the events to the devices connected now, the way every event is routed (``Router.deliver``), and
removes the message's media objects from storage. Devices not connected get the events by sync.
Blocking: an event loop calls it on a thread (``Node.delete_message`` does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from workers.media.base import Storage
from workers.media.cleanup import remove_objects
from workers.stores import Deletion, MessageDeletion
from workers.stores.rules.deletion import ADMIN

__all__ = ["ADMIN", "Deliver", "delete_for_everyone"]

log = logging.getLogger(__name__)

Deliver = Callable[[Iterable[tuple[str, dict[str, Any]]]], None]
"""Publishes ``(user, event)`` pairs to the users' connected devices (``Router.deliver``)."""


def delete_for_everyone(
    store: MessageDeletion,
    *,
    message_id: str,
    by: str = ADMIN,
    deliver: Deliver | None,
    storage: Storage | None,
    retry_media: Callable[[Sequence[str]], None] | None = None,
    now: float | None = None,
) -> Deletion:
    """Delete ``message_id`` for everyone as ``by`` (``"admin"`` or a user id; who may is the
    caller's rule). CommandError ``not_found`` for an unknown id; a message deleted already is left
    as it is (``changed`` False, nothing published).

    ``deliver`` None publishes nothing live (devices learn it when they sync); ``storage`` None
    leaves the objects (a caller without media storage); ``retry_media`` gets the keys storage failed
    to remove (``send_cleanup_job``), else they are logged and left behind.
    """
    deletion = store.delete_for_everyone(message_id, by=by, now=time.time() if now is None else now)
    if not deletion.changed:
        return deletion
    log.info("message %s deleted for everyone by %s", message_id, by)
    if deliver is not None and deletion.entries:
        deliver([(entry.user, entry.payload) for entry in deletion.entries])
    if storage is not None and deletion.media_keys:
        left = remove_objects(storage, deletion.media_keys)
        if left and retry_media is not None:
            try:
                retry_media(left)
            except Exception:
                log.exception("could not hand media objects %s to the cleanup job", left)
        elif left:
            log.error("media objects of deleted message %s left behind: %s", message_id, left)
    return deletion
