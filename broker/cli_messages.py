"""``mqchat messages delete MESSAGE_ID``: an operator deletes a message for everyone.

The store change is the same as the admin API's (``workers.moderation``): the tombstone, the
scrubbed inbox entries and a ``deleted`` event for each participant, and the media objects
removed from storage. Who hears of it live depends on the deployment: with a shared job queue and
locator (``mqchat node`` + ``mqchat worker``), the events go through the nodes' queues to the
devices connected now, and storage failures to the cleanup job; a single node (``mqchat run``,
in-process queue) cannot be reached from here, so its devices learn it at their next sync (a
reconnect, or the gap the next event of their inbox shows).
"""

from __future__ import annotations

import sys
from functools import partial

from config.settings import Settings
from workers.errors import CommandError
from workers.jobs import make_queue_broker, send_to_node
from workers.locator import open_locator
from workers.media import storage_for
from workers.media.cleanup import send_cleanup_job
from workers.moderation import delete_for_everyone
from workers.routing import Router
from workers.stores import open_store

__all__ = ["delete_message"]


def delete_message(settings: Settings, message_id: str, *, by: str) -> int:
    """Delete ``message_id`` for everyone; prints what happened. Exit status 1 for an unknown id."""
    shared = not settings.workers.queue_url.startswith("memory:") and bool(settings.locator.url)
    store = open_store(settings.store_url)
    storage = storage_for(settings)
    queue_broker = make_queue_broker(settings.workers.queue_url) if shared else None
    try:
        store.create_schema()
        deliver = retry = None
        if queue_broker is not None:
            deliver = Router(open_locator(settings), partial(send_to_node, queue_broker)).deliver
            retry = partial(send_cleanup_job, queue_broker)
        try:
            deletion = delete_for_everyone(
                store, message_id=message_id, by=by, deliver=deliver, storage=storage, retry_media=retry
            )
        except CommandError as exc:
            print(f"mqchat: {exc.message}", file=sys.stderr)
            return 1
    finally:
        if queue_broker is not None:
            queue_broker.close()
        storage.close()
        store.close()
    if not deletion.changed:
        print(f"message {message_id} was deleted already")
        return 0
    heard = "now" if deliver is not None else "at their next sync"
    print(
        f"message {message_id} deleted for everyone; {len(deletion.entries)} inbox(es) get the"
        f" deleted event ({'connected devices ' + heard})"
        + (f"; {len(deletion.media_keys)} media object(s) removed" if deletion.media_keys else "")
    )
    return 0
