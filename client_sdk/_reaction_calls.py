"""Reactions: one emoji per user per message, set, replaced or removed.

A call publishes its ``react`` command and waits for the server's answer: the ``reaction`` event
with ``ref`` = its id when something changed (it reaches :meth:`Client.events` as a
:class:`Reaction`, on this user's other devices too), or a live ``ok`` when nothing did (the same
emoji again). Either way the call returns once the server has the reaction.
"""

from __future__ import annotations

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import react_command
from client_sdk._events import Message, Ok

__all__ = ["ReactionCalls"]


class ReactionCalls(ClientBase):
    """Reacting to messages."""

    def react(
        self, message: Message | str, emoji: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """React to ``message`` (a message or its id) with ``emoji``, replacing this user's earlier
        reaction; ``""`` removes it. :class:`CommandRejected`: ``bad_request`` (not one emoji),
        ``not_found`` (a message this user cannot see, or one deleted for everyone)."""
        message_id = message.id if isinstance(message, Message) else message
        self._request(lambda id: react_command(id=id, message=message_id, emoji=emoji), Ok, timeout)

    def unreact(self, message: Message | str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Remove this user's reaction to ``message`` (nothing happens when there is none)."""
        self.react(message, "", timeout=timeout)
