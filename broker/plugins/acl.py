"""Topic ACL: a user subscribes only to its own inbox and to presence, and publishes only to its
own outbox. Presence is read-only to clients. Deny by default."""

from __future__ import annotations

from dataclasses import dataclass

from amqtt.contexts import Action
from amqtt.plugins.base import BaseTopicPlugin
from amqtt.session import Session

from client_sdk.contract import Topics

__all__ = ["MqchatAclPlugin", "allowed"]


def allowed(topics: Topics, user: str | None, topic: str | None, action: Action | None) -> bool:
    if not user or not topic:
        return False
    if action == Action.PUBLISH:
        return topic == topics.outbox(user)
    if action in (Action.SUBSCRIBE, Action.RECEIVE):
        return (
            topic == topics.inbox(user)
            or topic == topics.presence_wildcard()
            or topics.user_of_presence(topic) is not None
        )
    return False


class MqchatAclPlugin(BaseTopicPlugin):
    @dataclass
    class Config:
        prefix: str = "chat"
        presence_prefix: str = "presence"

    def __init__(self, context: object) -> None:
        super().__init__(context)
        self._topics = Topics(self.config.prefix, self.config.presence_prefix)

    async def topic_filtering(
        self, *, session: Session | None = None, topic: str | None = None, action: Action | None = None
    ) -> bool | None:
        return allowed(self._topics, session.username if session else None, topic, action)
