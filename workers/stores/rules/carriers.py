"""The inbox entries that carry a message, in every backend: how a change to a message that was
already delivered (a delete, an edit, a reaction, a delete for me) reaches ``sync``.

An inbox entry keeps the event as it was written. When a message changes, the backends rewrite, in
the transaction of the change, every ``message`` and ``sent`` entry that carried it (its carriers)
to carry the message as it is now, and append an event with a cursor for everyone who must hear of
the change. A device that syncs afterwards therefore reads the message as it is now at its old
cursor, then the change's event; it never reads text that was deleted or replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final

__all__ = ["CARRIERS", "Patch", "hearers", "patched"]

CARRIERS: Final = ("message", "sent")
"""The kinds of inbox entry that carry a message's content."""

Patch = Callable[[dict[str, Any]], dict[str, Any] | None]
"""The message as a carrier holds it → the message it must hold now; None leaves that carrier as
it is (a message its user hid, say)."""


def hearers(sender: str, recipients: Iterable[str], *, group_members: Collection[str] | None) -> list[str]:
    """Who hears of a change to a message: the sender and every recipient of a copy; of a group
    message only those still members (a member who left gets nothing more from the group)."""
    users = [sender, *(r for r in recipients if r != sender)]
    if group_members is None:
        return users
    return [u for u in users if u in group_members]


def patched(payload: Mapping[str, Any], patch: Patch) -> dict[str, Any] | None:
    """A carrier's payload with its message patched (cursor, type and ``ref`` stay); None: leave it."""
    message = payload.get("message")
    if not isinstance(message, dict):
        return None
    new = patch(dict(message))
    if new is None or new == message:
        return None
    return {**payload, "message": new}
