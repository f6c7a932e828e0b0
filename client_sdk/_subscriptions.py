"""What the client subscribes (its inbox, the presence of the users it watches) and which answers it
awaits: pure state, owned by :class:`~client_sdk._session.Session`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Subscribe", "Subscriptions"]


@dataclass(frozen=True, slots=True)
class Subscribe:
    """One SUBSCRIBE (QoS 1) to send: the inbox topic first when ``inbox``, then the presence topic
    of each user of ``presence``. The I/O layer reports its message id (``Session.on_subscribing``)."""

    presence: tuple[str, ...]
    inbox: bool = False


class Subscriptions:
    """The watched users, and the SUBSCRIBEs whose SUBACK has not come yet.

    A watched user is subscribed again after every connect, until the server refuses: a refused
    user is no longer watched until the app watches them again.
    """

    def __init__(self) -> None:
        self._watched: set[str] = set()
        self._unanswered: set[str] = set()
        """Watched users whose presence subscription has no SUBACK yet."""
        self._refused: set[str] = set()
        """Users the server refused to let this user watch (until watched again)."""
        self._subscribing: dict[int, Subscribe] = {}
        """SUBSCRIBE message id -> what it subscribes, until its SUBACK."""

    def unanswered(self, user: str) -> bool:
        return user in self._unanswered

    def refused(self, user: str) -> bool:
        return user in self._refused

    def on_connected(self) -> Subscribe:
        """What to subscribe on a new connection: the inbox and every watched user's presence."""
        return Subscribe(presence=tuple(sorted(self._watched)), inbox=True)

    def watch(self, user: str) -> bool:
        """Watch ``user`` from now on; False when they were watched already (nothing to subscribe)."""
        if user in self._watched:
            return False
        self._watched.add(user)
        self._refused.discard(user)
        return True

    def sent(self, message_id: int, subscribe: Subscribe) -> None:
        self._subscribing[message_id] = subscribe
        self._unanswered.update(subscribe.presence)

    def lost(self) -> None:
        """The connection is gone, and with it every SUBSCRIBE still unanswered (made again on connect)."""
        self._subscribing.clear()
        self._unanswered.clear()

    def answered(self, message_id: int, refused: Sequence[bool]) -> tuple[list[str], bool | None]:
        """The SUBACK of ``message_id`` (``refused``: per topic, in order): the watched users the
        server refused, and whether it granted the inbox (None: the inbox was not in it)."""
        subscribe = self._subscribing.pop(message_id, None)
        if subscribe is None:
            return [], None
        presence_refused = refused[1:] if subscribe.inbox else refused
        refusals = []
        for user, failed in zip(subscribe.presence, presence_refused, strict=False):
            self._unanswered.discard(user)
            if failed and user in self._watched:
                self._watched.discard(user)
                self._refused.add(user)
                refusals.append(user)
        if not subscribe.inbox:
            return refusals, None
        return refusals, not (refused and refused[0])
