"""History of one conversation, in every backend: who may read it, which page, and the receipt
state of the viewer's own messages.

A page is chosen by ``seq``: ``after`` pages forwards (the first ``limit`` messages with a seq
above it, below ``before`` if that is given too), ``before`` alone backwards (the last ``limit``
below it), neither the latest ``limit``. Messages come in ascending seq either way, each as the
viewer sees it now (``rules.views``); ``more`` says whether the page stopped at ``limit`` in the
direction it went.

**Who may read** is who may see each message (its sender, or a user with a ``receipts`` row for
it): a group member sees only what came while they were a member, and one who left keeps what
they got. A conversation the viewer is not in (a 1-on-1 id without them; a group they are not a
member of and have nothing from) is ``forbidden``, whether or not it exists. A malformed id, or
a 1-on-1 id whose users are not in order (``dm_conversation``), is ``bad_request``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from client_sdk.contract import ErrorCode, Status, is_group_id, is_valid_user_id
from workers.errors import CommandError
from workers.stores.rules.messages import dm_conversation

__all__ = [
    "MAX_HISTORY_LIMIT",
    "HistoryPage",
    "HistoryQuery",
    "check_conversation",
    "clamp_limit",
    "not_in_conversation",
    "receipt_state",
]

MAX_HISTORY_LIMIT: Final = 200
"""A page holds at most this many messages (a larger ``limit`` is clamped)."""

_DM: Final = re.compile(r"dm:([^:]+):([^:]+)")


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    viewer: str
    conversation: str
    before: int | None
    after: int | None
    limit: int

    @property
    def backwards(self) -> bool:
        """Paging back from ``before`` (or from the end): the page is the last ``limit`` messages."""
        return self.after is None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    messages: list[dict[str, Any]]
    """Ascending seq, each as the viewer sees it now."""
    more: bool
    """There are more messages the viewer may see past the page, in the direction it went."""
    receipts: dict[str, dict[str, Any]]
    """The receipt state of the viewer's own messages of the page, by message id (``receipt_state``)."""


def clamp_limit(limit: int | None) -> int:
    return MAX_HISTORY_LIMIT // 4 if limit is None else max(1, min(MAX_HISTORY_LIMIT, limit))


def not_in_conversation(conversation: str) -> CommandError:
    """The one answer for a conversation the viewer is not in, whether or not it exists."""
    return CommandError(ErrorCode.FORBIDDEN, f"you are not in conversation {conversation!r}")


def check_conversation(conversation: str, viewer: str) -> str | None:
    """The other user of a 1-on-1 conversation the viewer is in; None for a group id (membership
    is the backend's to check). ``bad_request`` for a malformed id, ``forbidden`` for a 1-on-1
    conversation of others."""
    if is_group_id(conversation):
        return None
    found = _DM.fullmatch(conversation)
    if found is None or not all(is_valid_user_id(u) for u in found.groups()):
        raise CommandError(ErrorCode.BAD_REQUEST, f"conversation: not a conversation id: {conversation!r}")
    first, second = found.groups()
    if dm_conversation(first, second) != conversation:
        raise CommandError(
            ErrorCode.BAD_REQUEST, f"conversation: the users of a 1-on-1 id are in order: {conversation!r}"
        )
    if viewer not in (first, second):
        raise not_in_conversation(conversation)
    return second if viewer == first else first


def receipt_state(recipients: int, delivered: int, read: int) -> dict[str, Any]:
    """A sent message's receipt state: how many recipients it went to, how many have it
    (delivered or read) and how many read it; ``status`` is what all of them reached (the
    ticks): ``read`` when every one read it, ``delivered`` when every one has it, else ``sent``."""
    if recipients and read >= recipients:
        status = Status.READ
    elif recipients and delivered >= recipients:
        status = Status.DELIVERED
    else:
        status = Status.SENT
    return {"status": status.label, "recipients": recipients, "delivered": delivered, "read": read}


def page_of(
    query: HistoryQuery, seqs_ids: list[tuple[int, str]], views: Mapping[str, dict[str, Any]]
) -> tuple[list[dict[str, Any]], bool]:
    """The page from up to ``limit + 1`` (seq, id) rows in the direction of the query; ``more``
    when there was one more."""
    more = len(seqs_ids) > query.limit
    rows = sorted(seqs_ids[: query.limit])
    return [views[i] for _, i in rows if i in views], more
