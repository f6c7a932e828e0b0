"""Retention, in every backend: what is pruned, and how a device learns that it was.

``retention.inbox_days``: inbox entries older than that are pruned; ``retention.messages_days``:
messages older than that are deleted with everything of theirs (media, receipts, reactions,
edits, quotes they hold, hides). 0 keeps them for ever. The inbox entries that carry a deleted
message must not outlive it, so the inbox is pruned at the shorter of the two when both are set,
and at ``messages_days`` when only that is.

Both prune a **prefix**: of each user's inbox, the entries from the oldest up to the last one
older than the cut (by cursor); of each conversation, its messages from the oldest up to the last
one older than the cut (by seq). Cursors and seqs only grow with time, so a prefix is exactly what
is old (an entry written a little out of time order waits for the next sweep), and what stays is
gapless: a user's inbox is every cursor above the highest pruned one, which is recorded per user
(``inbox_floor``). A ``sync`` from before that floor cannot be answered with what it missed: it
gets ``sync_reset`` (:func:`sync_reset_event`), never a page that silently skips.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from client_sdk.contract import VERSION

__all__ = [
    "DAY",
    "MessagePrune",
    "cut_off",
    "inbox_days",
    "needs_reset",
    "sync_reset_event",
]

DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class MessagePrune:
    """What one step of the message sweep did."""

    deleted: int = 0
    media_keys: list[str] = field(default_factory=list)
    """Stored objects no message uses any more: the caller removes them once this is committed."""
    done: bool = False
    """The sweep went through every conversation (it starts again from the first)."""


def inbox_days(inbox: float, messages: float) -> float:
    """The age at which inbox entries are pruned (0: never)."""
    kept = [days for days in (inbox, messages) if days > 0]
    return min(kept) if kept else 0.0


def cut_off(days: float, now: float) -> float | None:
    """What was created before this is pruned; None: keep for ever."""
    return None if days <= 0 else now - days * DAY


def needs_reset(after: int, first_cursor: int | None, floor: int) -> bool:
    """Whether a sync after ``after`` must be reset: entries past it were pruned (``floor``, the
    highest pruned cursor, is above it) and the page does not start right after it."""
    return floor > after and first_cursor != after + 1


def sync_reset_event(ref: str, *, after: int, floor: int) -> dict[str, Any]:
    """The answer to a ``sync`` from before the oldest kept entry: resume after ``cursor`` once
    rebuilt from the chat list and history."""
    return {
        "v": VERSION,
        "type": "sync_reset",
        "ref": ref,
        "after": after,
        "cursor": floor,
        "reason": "pruned",
    }
