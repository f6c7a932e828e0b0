"""Reactions, in every backend: one emoji per user per message, replaceable and removable.

Who may react is who can see the message: its sender, or a recipient who got a copy (of a group
message, one who is still a member: the hearers of ``rules.carriers``). Anyone else, an unknown
id or a deleted message is ``not_found``, the same answer, so a reaction tells nobody whether a
message they cannot see exists.

A change is stored with the command id that made it, and in its transaction the message's
*summary* (``{user: emoji}``, absent when empty) is written into every inbox entry that carries
the message (``rules.carriers``), so history and sync show it, and a ``reaction`` event with a
cursor goes to every hearer. The same emoji again, or the same command again (a resend), changes
nothing and writes no event: the pipeline answers it with a live ``ok``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from client_sdk.contract import ErrorCode
from workers.errors import CommandError
from workers.stores.records import InboxItem
from workers.stores.rules.carriers import Patch
from workers.stores.rules.emoji import MAX_EMOJI_BYTES, is_emoji

__all__ = [
    "check_emoji",
    "not_visible",
    "reaction_events",
    "summary_patch",
    "unchanged",
]


def check_emoji(emoji: str) -> str | None:
    """The emoji of a ``react`` command, or None for ``""`` (remove my reaction). CommandError
    ``bad_request`` for anything that is not one emoji (see ``rules.emoji``)."""
    if emoji == "":
        return None
    if not is_emoji(emoji):
        raise CommandError(
            ErrorCode.BAD_REQUEST,
            f'emoji: one emoji of at most {MAX_EMOJI_BYTES} bytes, or "" to remove your reaction',
        )
    return emoji


def not_visible(message_id: str) -> CommandError:
    """The one answer for a message the user may not react to, whatever the reason."""
    return CommandError(ErrorCode.NOT_FOUND, f"no message {message_id!r} that you can see")


def unchanged(current: tuple[str, str] | None, *, emoji: str | None, command_id: str) -> bool:
    """Whether a ``react`` changes nothing: ``current`` is the user's ``(emoji, command id)`` on the
    message (None: no reaction). The same emoji again, no reaction to remove, or the command that
    made the current state, sent again."""
    if current is None:
        return emoji is None
    return current[0] == emoji or current[1] == command_id


def summary_patch(reactions: Mapping[str, str]) -> Patch:
    """The carrier patch that sets a message's summary (``reactions`` absent when empty). A
    tombstone or a message the user hid is left as it is; every other field is kept."""
    summary = dict(reactions)

    def patch(message: dict[str, Any]) -> dict[str, Any] | None:
        if message.get("deleted") or message.get("hidden"):
            return None
        new = {k: v for k, v in message.items() if k != "reactions"}
        if summary:
            new["reactions"] = dict(summary)
        return new

    return patch


def reaction_events(
    users: Iterable[str],
    message: Mapping[str, Any],
    *,
    by: str,
    emoji: str | None,
    reactions: Mapping[str, str],
    ref: str,
    now: float,
) -> list[InboxItem]:
    """The ``reaction`` event for each of ``users``; ``message`` has the message's ``id``,
    ``conversation`` and ``seq``. ``ref`` only on the reactor's own entries."""
    items: list[InboxItem] = []
    for user in users:
        body = {
            "ref": ref if user == by else None,
            "message_id": message["id"],
            "conversation": message["conversation"],
            "seq": message["seq"],
            "by": by,
            "emoji": emoji,
            "reactions": dict(reactions),
            "ts": now,
        }
        items.append((user, "reaction", message["id"], body))
    return items
