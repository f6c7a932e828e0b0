"""Topic ACL: a user subscribes only to its own inbox and to presence it may see, and publishes only
to its own outbox. Presence is read-only to clients. Deny by default.

Whose presence a user may see is the ``visibility`` setting: ``everyone`` (any user, and the
``<presence_prefix>/+`` wildcard) or ``contacts`` (the user itself, its 1-on-1 partners and its
group mates, asked of the store; the wildcard is refused, since the broker hands a wildcard
subscriber every matching retained message without asking the ACL about each).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amqtt.contexts import Action
from amqtt.session import Session

from broker.mqtt.plugins.base import TopicFilter
from broker.visibility import PresenceCheck, Visibility
from client_sdk.contract import Topics

__all__ = ["VISIBILITIES", "AclPlugin", "allowed"]

log = logging.getLogger(__name__)

VISIBILITIES = ("contacts", "everyone")


def allowed(
    topics: Topics, user: str | None, topic: str | None, action: Action | None, *, everyone: bool = True
) -> bool:
    """The rules that need no store: with ``everyone`` False, a presence topic other than the user's
    own still needs :meth:`Visibility.can_see`, and the presence wildcard is refused."""
    if not user or not topic:
        return False
    if action == Action.PUBLISH:
        return topic == topics.outbox(user)
    if action in (Action.SUBSCRIBE, Action.RECEIVE):
        return (
            topic == topics.inbox(user)
            or (everyone and topic == topics.presence_wildcard())
            or topics.user_of_presence(topic) is not None
        )
    return False


class AclPlugin(TopicFilter):
    @dataclass(frozen=True)
    class Config:
        prefix: str = "chat"
        presence_prefix: str = "presence"
        visibility: str = "contacts"

        def __post_init__(self) -> None:
            if self.visibility not in VISIBILITIES:
                raise ValueError(f"visibility must be one of {VISIBILITIES}, got {self.visibility!r}")

    def __init__(self, config: Config, *, can_see_presence: PresenceCheck) -> None:
        """``can_see_presence(watcher, user)``: the store's check (blocking; run off the event loop)."""
        self.config = config
        self._topics = Topics(config.prefix, config.presence_prefix)
        self._everyone = config.visibility == "everyone"
        self._visibility = Visibility(can_see_presence)

    async def topic_filtering(self, session: Session, topic: str, action: Action) -> bool | None:
        user = session.username
        if not allowed(self._topics, user, topic, action, everyone=self._everyone):
            return False
        assert user is not None
        watched = self._topics.user_of_presence(topic)
        if self._everyone or watched is None or watched == user:
            return True
        if await self._visibility.can_see(user, watched):
            return True
        log.info("refused %s a subscription to %s: not a contact of %s", user, topic, watched)
        return False

    async def client_disconnected(self, session: Session) -> None:
        """No remembered yes outlives a connection: a block made while the user had none here
        (so no node told this one) is asked of the store at their next subscription."""
        if session.username and not self._everyone:
            self._visibility.forget_watcher(session.username)

    def forget(self, watcher: str, user: str) -> None:
        """``watcher`` may no longer see ``user``'s presence (a block): no remembered yes."""
        self._visibility.forget(watcher, user)

    async def close(self) -> None:
        self._visibility.close()
