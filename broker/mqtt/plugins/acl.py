"""Topic ACL: a user subscribes only to its own inbox, its own response topics (``<prefix>/<user>/reply``
and under it, where MQTT 5 answers go: ``broker/replies.py``) and presence it may see, and
publishes only to its own outbox. Presence and response topics are read-only to clients. Deny by
default.

Whose presence a user may see is the watched user's ``online`` privacy setting (everyone, contacts,
nobody), narrowed by the server's ``visibility`` (the operator's ceiling: ``everyone``, or
``contacts``: the user's 1-on-1 partners and group mates), asked of the store. A user always sees
their own. The ``<presence_prefix>/+`` wildcard is refused in every mode: the broker hands a
wildcard subscriber every matching retained message without asking the ACL about each, so it
would pass over anyone's privacy setting. A change of a setting cuts the subscriptions it no
longer allows (broker/presence_privacy.py).
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
            or topics.is_reply_of(user, topic, filter_=True)
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
        self._visibility = Visibility(can_see_presence)

    async def topic_filtering(self, session: Session, topic: str, action: Action) -> bool | None:
        user = session.username
        if not allowed(self._topics, user, topic, action, everyone=False):  # no wildcard: see above
            return False
        assert user is not None
        watched = self._topics.user_of_presence(topic)
        if watched is None or watched == user:
            return True
        if await self._visibility.can_see(user, watched):
            return True
        log.info("refused %s a subscription to %s: not a contact of %s", user, topic, watched)
        return False

    def forget(self, user: str) -> None:
        """``user``'s privacy settings changed: ask the store again for each watcher."""
        self._visibility.forget(user)

    async def may_still_watch(self, watcher: str, user: str) -> bool:
        """Whether ``watcher`` may keep watching ``user`` (asked of the store now)."""
        return await self._visibility.ask(watcher, user)

    async def client_disconnected(self, session: Session) -> None:
        """No remembered yes outlives a connection: a block made while the user had none here
        (so no node told this one) is asked of the store at their next subscription."""
        if session.username:
            self._visibility.forget_watcher(session.username)

    def forget_pair(self, watcher: str, user: str) -> None:
        """``watcher`` may no longer see ``user``'s presence (a block): no remembered yes."""
        self._visibility.forget_pair(watcher, user)

    async def close(self) -> None:
        self._visibility.close()
