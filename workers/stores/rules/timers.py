"""Disappearing messages, in every backend: a conversation's timer, who may set it, what a message
sent under it carries, and what is left of it once it expires.

A conversation (a 1-on-1 chat or a group) has a timer, off (0) or a number of seconds. Either
participant of a 1-on-1 chat may set it; in a group only admins (``not_admin``). Setting it puts a
``timer`` event, with a cursor, in every participant's inbox (a group's current members): the
announcement in the chat. A message sent while the timer is on gets ``expires_at`` (its time plus
the timer), stored with it, never a sleeping task: a sweeper (``workers/expiry.py``) asks the store
for the messages whose time is up and scrubs them as a deletion for everyone does (text, media rows
and objects, reactions, quotes of it), leaving the expired stub in every entry that carried them,
and appends one ``expired`` event per hearer listing them, so live devices remove them and a
device that syncs later never reads them. Only conversations with a timer have a stored row, and
only their messages an expiry row: a conversation without a timer writes nothing more.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from client_sdk.contract import ErrorCode, is_group_id
from workers.errors import CommandError
from workers.stores.records import InboxItem
from workers.stores.rules.deletion import place, tombstone
from workers.stores.rules.messages import dm_conversation, not_member, unknown_group

__all__ = [
    "EXPIRED_BY",
    "check_timer",
    "check_timer_setter",
    "expired_events",
    "expired_stub",
    "gone_stub",
    "timer_conversation",
    "timer_events",
]

EXPIRED_BY: Final = "expired"
"""``deleted_by`` of a message the sweeper expired: an expired message is, for every other rule,
a message deleted for everyone (it cannot be edited, reacted to or quoted)."""


def check_timer(seconds: int, allowed: Iterable[int]) -> int:
    """``seconds`` if 0 (off) or one of the ``allowed`` timers (``messages.disappearing_timers``),
    else CommandError ``bad_request``."""
    values = sorted(set(allowed))
    if seconds != 0 and seconds not in values:
        shown = ", ".join(str(v) for v in values)
        raise CommandError(ErrorCode.BAD_REQUEST, f"seconds: 0 (off) or one of {shown}")
    return seconds


def check_timer_setter(group: str, user: str, roles: Mapping[str, bool]) -> None:
    """Only an admin of ``group`` sets its timer (``roles``: member -> whether an admin)."""
    if user not in roles:
        raise CommandError(ErrorCode.NOT_MEMBER, f"you are not a member of {group}")
    if not roles[user]:
        raise CommandError(ErrorCode.NOT_ADMIN, f"only admins of {group} can do that")


def timer_events(
    users: Iterable[str], *, conversation: str, seconds: int, by: str, now: float, ref: str
) -> list[InboxItem]:
    """The ``timer`` announcement for each participant (``ref`` on the setter's own, else null)."""
    body = {"conversation": conversation, "seconds": seconds, "by": by, "ts": now}
    return [(user, "timer", None, {"ref": ref if user == by else None, **body}) for user in users]


def expired_stub(
    *, message_id: str, conversation: str, seq: int, sender: str, recipient: str, ts: float
) -> dict[str, Any]:
    """The wire form of an expired message: where it was and who sent it, never what it said."""
    where = place(
        message_id=message_id, conversation=conversation, seq=seq, sender=sender, recipient=recipient, ts=ts
    )
    return {**where, "expired": True}


def gone_stub(
    *,
    message_id: str,
    conversation: str,
    seq: int,
    sender: str,
    recipient: str,
    ts: float,
    deleted_at: float,
    deleted_by: str,
) -> dict[str, Any]:
    """What a message deleted from the store shows (history, views): the expired stub when the
    sweeper removed it (``deleted_by`` is ``EXPIRED_BY``), else the tombstone of a deletion."""
    if deleted_by == EXPIRED_BY:
        return expired_stub(
            message_id=message_id,
            conversation=conversation,
            seq=seq,
            sender=sender,
            recipient=recipient,
            ts=ts,
        )
    return tombstone(
        message_id=message_id,
        conversation=conversation,
        seq=seq,
        sender=sender,
        recipient=recipient,
        ts=ts,
        deleted_at=deleted_at,
        deleted_by=deleted_by,
    )


def timer_conversation(user: str, to: str, members: Collection[str] | None) -> str:
    """The conversation whose timer ``user`` asks for: the group ``to`` (``members``: None when
    there is no such group; ``user`` must be one of them), or their 1-on-1 chat with ``to``."""
    if not is_group_id(to):
        return dm_conversation(user, to)
    if members is None:
        raise unknown_group(to)
    if user not in members:
        raise not_member(to)
    return to


def expired_events(per_user: Mapping[str, list[dict[str, Any]]], *, now: float) -> list[InboxItem]:
    """One ``expired`` event per user, listing the stubs of the messages of theirs that expired."""
    return [
        (user, "expired", None, {"messages": stubs, "ts": now}) for user, stubs in per_user.items() if stubs
    ]
