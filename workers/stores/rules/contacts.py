"""Contacts in every backend: who may see whose presence.

A user sees its own presence and that of its contacts: the users it has a 1-on-1 conversation
with (either of them sent the other a message) and its group mates. The backend answers the two
lookups; the cheaper one is asked first, and only when needed.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.stores.rules.messages import dm_conversation

__all__ = ["may_see_presence"]


def may_see_presence(
    watcher: str,
    user: str,
    *,
    chatted: Callable[[str], bool],
    share_a_group: Callable[[str, str], bool],
) -> bool:
    """Whether ``watcher`` may see ``user``'s presence. ``chatted(conversation)``: whether that 1-on-1
    conversation exists; ``share_a_group(watcher, user)``: whether both are members of one group."""
    if watcher == user:
        return True
    return chatted(dm_conversation(watcher, user)) or share_a_group(watcher, user)
