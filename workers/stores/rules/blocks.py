"""Blocking and reports in every backend.

Whom a user blocks: their 1-on-1 messages to the blocker are stored for them (answered ``sent``,
on their own devices as sent) but get no copy for the blocker (no receipt row, no inbox entry, so
no push and no receipt ever); they do not see the blocker's presence or profile, get no receipt
of the blocker's, and adding the blocker to a group lists the blocker as ``invited`` with nothing
sent. In a group they share, their messages still reach the blocker. A report stores copies of the
messages named as the reporter's own inbox carries them (``rules.carriers``): only what the
reporter can see.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any, Final

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem

__all__ = [
    "MAX_REPORTED_MESSAGES",
    "blocked_pairs",
    "blocking_event",
    "check_block",
    "check_reported",
    "unblocked_items",
]

MAX_REPORTED_MESSAGES: Final = 50
"""The most messages one report carries (the schema's ``maxItems``)."""


def check_block(user: str, target: str) -> None:
    """A user cannot block (or report) themselves."""
    if user == target:
        raise CommandError(ErrorCode.BAD_REQUEST, "you cannot block or report yourself")


def blocking_event(user: str, target: str, *, blocked: bool, ref: str | None, now: float) -> InboxItem:
    """The ``blocking`` event for the blocker's own inbox (every device of theirs)."""
    return (user, "blocking", None, {"ref": ref, "user": target, "blocked": blocked, "ts": now})


def blocked_pairs(pairs: Iterable[tuple[str, str]], rows: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which ``(blocker, blocked)`` of ``pairs`` are blocks, given the rows a backend read for
    every blocker and blocked user among them (a superset: one lookup for a batch)."""
    found = {(str(a), str(b)) for a, b in rows}
    return {pair for pair in pairs if pair in found}


def unblocked_items(items: Sequence[InboxItem], by: str, blocked: Collection[str]) -> list[InboxItem]:
    """``items`` (events caused by ``by``: receipts) without those for users ``by`` blocked."""
    if not blocked:
        return list(items)
    return [item for item in items if item[0] not in blocked]


def check_reported(requested: Sequence[str], seen: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The copies of the reported messages in the order named; ``not_found`` for one the reporter
    cannot see (or that does not exist): a report carries only what its reporter was shown."""
    missing = [m for m in requested if m not in seen]
    if missing:
        raise CommandError(ErrorCode.NOT_FOUND, f"no message {missing[0]!r} that you can see")
    return [seen[m] for m in dict.fromkeys(requested)]
