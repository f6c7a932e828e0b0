"""Disappearing messages: a conversation's timer, set or read.

:meth:`TimerCalls.set_timer` publishes ``timer_set`` and waits for this user's own ``timer`` event
(``ref`` = the command id; it reaches :meth:`Client.events` as a :class:`TimerChanged`, on every
participant's devices), or the live ``ok`` when the timer had that value already. Messages sent
while a timer is on carry :attr:`Message.expires_at`; once they expire a :class:`MessagesExpired`
event lists them, and sync returns their stubs (:attr:`Message.expired`).
"""

from __future__ import annotations

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase
from client_sdk._commands import timer_get_command, timer_set_command
from client_sdk._events import Ok, TimerInfo

__all__ = ["TimerCalls"]


class TimerCalls(ClientBase):
    """The disappearing-message timer of a conversation."""

    def set_timer(
        self, conversation: str, seconds: int, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        """Set the timer of this user's conversation with ``conversation`` (a user id, or a group
        id: admins only) to ``seconds``: 0 (off) or one the server allows (by default 86400,
        604800, 7776000: 24 hours, 7 days, 90 days). :class:`CommandRejected`: ``bad_request``
        (a value the server does not allow), ``not_admin``, ``not_member``, ``unknown_user``,
        ``unknown_group``."""
        self._request(lambda id: timer_set_command(id=id, to=conversation, seconds=seconds), Ok, timeout)

    def get_timer(self, conversation: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> int:
        """The timer (seconds, 0: off) of this user's conversation with ``conversation``."""
        answer = self._request(lambda id: timer_get_command(id=id, to=conversation), TimerInfo, timeout)
        return answer.seconds
