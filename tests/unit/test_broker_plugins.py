"""mqchat's broker plugins are built with what they need; security hooks deny by default, and a
plugin's Config refuses what it does not know."""

from __future__ import annotations

import asyncio
import dataclasses
from types import SimpleNamespace
from typing import Any

import pytest
from amqtt.contexts import Action

from broker.mqtt.plugins import AclPlugin, Authenticator, PresencePlugin, TopicFilter


def _session(user: str | None) -> Any:
    return SimpleNamespace(username=user, password="x", client_id=f"{user}/d", remote_address="127.0.0.1")


def test_security_hooks_deny_unless_a_plugin_says_otherwise() -> None:
    assert asyncio.run(Authenticator().authenticate(_session("alice"))) is False
    assert (
        asyncio.run(TopicFilter().topic_filtering(_session("alice"), "chat/alice/in", Action.SUBSCRIBE))
        is False
    )


def test_the_acl_allows_the_users_own_topics_only() -> None:
    acl = AclPlugin(AclPlugin.Config(visibility="contacts"), can_see_presence=lambda watcher, user: False)
    try:
        alice = _session("alice")
        verdicts = [
            asyncio.run(acl.topic_filtering(alice, "chat/alice/in", Action.SUBSCRIBE)),
            asyncio.run(acl.topic_filtering(alice, "chat/alice/out", Action.PUBLISH)),
            asyncio.run(acl.topic_filtering(alice, "chat/bob/in", Action.SUBSCRIBE)),
            asyncio.run(acl.topic_filtering(alice, "presence/bob", Action.SUBSCRIBE)),
            asyncio.run(acl.topic_filtering(alice, "presence/+", Action.SUBSCRIBE)),
            asyncio.run(acl.topic_filtering(_session(None), "chat/alice/in", Action.SUBSCRIBE)),
        ]
    finally:
        asyncio.run(acl.close())
    assert verdicts == [True, True, False, False, False, False]


def test_a_plugin_config_is_checked_when_it_is_built() -> None:
    with pytest.raises(ValueError, match="visibility"):
        AclPlugin.Config(visibility="friends")
    with pytest.raises(TypeError):
        PresencePlugin.Config(min_intervall=1.0)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        AclPlugin.Config().visibility = "everyone"  # type: ignore[misc]


def test_the_acl_lets_only_the_user_subscribe_to_their_response_topics_and_nobody_publish_there() -> None:
    acl = AclPlugin(AclPlugin.Config(visibility="contacts"), can_see_presence=lambda watcher, user: True)
    alice, bob = _session("alice"), _session("bob")

    def may(session: Any, topic: str, action: Action) -> bool | None:
        return asyncio.run(acl.topic_filtering(session, topic, action))

    try:
        own = [
            may(alice, topic, Action.SUBSCRIBE)
            for topic in (
                "chat/alice/reply",
                "chat/alice/reply/phone",
                "chat/alice/reply/#",
                "chat/alice/reply/+",
            )
        ]
        others = [
            may(bob, topic, action)
            for topic in (
                "chat/alice/reply",
                "chat/alice/reply/phone",
                "chat/+/reply",
                "chat/+/reply/#",
                "chat/#",
            )
            for action in (Action.SUBSCRIBE, Action.RECEIVE)
        ]
        publish = [
            may(alice, "chat/alice/reply", Action.PUBLISH),
            may(alice, "chat/alice/reply/x", Action.PUBLISH),
        ]
        near = [
            may(alice, "chat/alice/replyx", Action.SUBSCRIBE),
            may(alice, "chat/alice/replies", Action.SUBSCRIBE),
        ]
    finally:
        asyncio.run(acl.close())
    assert own == [True] * 4
    assert others == [False] * 10
    assert publish == [False, False]  # only the server publishes answers
    assert near == [False, False]
