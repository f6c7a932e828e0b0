"""Presence: which users the client watches lives in the session; here the app waits for the
server's answer and for a status."""

from __future__ import annotations

import time

from client_sdk._base import DEFAULT_REQUEST_TIMEOUT, ClientBase, State
from client_sdk._errors import NotConnected, PresenceForbidden, Timeout
from client_sdk._events import Presence
from client_sdk.contract import PRESENCE_STATUSES, is_valid_user_id

__all__ = ["PresenceCalls"]


class PresenceCalls(ClientBase):
    """Watching other users' presence."""

    def watch_presence(self, user: str, *, timeout: float | None = DEFAULT_REQUEST_TIMEOUT) -> None:
        """Follow ``user``'s presence (:meth:`presence`, :meth:`wait_presence`, and Presence events).

        While connected, waits for the server's answer: raises :class:`PresenceForbidden` when it
        refuses (by default a server shows presence to contacts only: see the error), and
        :class:`Timeout` when no answer comes within ``timeout`` seconds. Offline, it returns at
        once and the subscription is made on connect; a refusal then arrives as a
        :class:`PresenceRefused` event (so does one after a reconnect). A refused user is no longer
        watched: call this again once it may be (after the first message, say).
        """
        if not is_valid_user_id(user):
            raise ValueError(f"user {user!r} is not a user id")
        with self._changed:
            if self._state is State.CLOSED:
                raise NotConnected("the client is closed")
            session, closed = self._session, self._closed
            self._apply(session.watch(user))
            if not self._changed.wait_for(lambda: not session.presence_unanswered(user) or closed(), timeout):
                raise Timeout(f"the server did not answer the presence subscription to {user} in {timeout} s")
            if closed():
                raise NotConnected("the client was closed")
            if session.presence_refused(user):
                raise PresenceForbidden(user)

    def presence(self, user: str) -> Presence | None:
        """The latest known presence of a watched user (None until it arrives)."""
        with self._lock:
            return self._session.presence(user)

    def wait_presence(self, user: str, status: str = "online", *, timeout: float | None = None) -> Presence:
        """Block until ``user``'s presence is ``status`` (``"online"`` or ``"offline"``); watches the user.

        Raises :class:`Timeout` after ``timeout`` seconds (None: no limit), :class:`NotConnected`
        when the client gets closed.
        """
        if status not in PRESENCE_STATUSES:
            raise ValueError(f"status must be one of {sorted(PRESENCE_STATUSES)}, got {status!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        self.watch_presence(user, timeout=timeout)
        session = self._session

        def reached() -> bool:
            presence = session.presence(user)
            return presence is not None and presence.status == status

        with self._changed:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._changed.wait_for(
                lambda: reached() or session.presence_refused(user) or self._state is State.CLOSED, left
            ):
                raise Timeout(f"{user} was not {status} within {timeout} s")
            if session.presence_refused(user) and not reached():
                raise PresenceForbidden(user)
            if not reached():
                raise NotConnected("the client was closed")
            presence = session.presence(user)
            assert presence is not None  # reached() checked it
            return presence
