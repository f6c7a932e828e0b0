"""What a plugin of mqchat's broker is: an object built with its dependencies and passed in.

amqtt 0.12.1 builds its plugins itself, from dotted names in its config, and runs each call of the
connect path as a task of its own. mqchat's plugins are built by the node with what each needs
(typed constructor arguments, a nested ``Config`` dataclass) and given to
``MqchatBroker(plugins=...)``, which awaits their hooks in place, in the order given. Plugins named
in amqtt's config (none in the node) still go through amqtt's plugin manager.

The hooks are typed no-ops, except the security ones, which deny by default: an ``Authenticator``
that does not say otherwise refuses every login, a ``TopicFilter`` every topic.
"""

from __future__ import annotations

from typing import Protocol

from amqtt.contexts import Action
from amqtt.session import Session

__all__ = ["Authenticator", "BrokerPlugin", "PluginContext", "TopicFilter"]


class PluginContext(Protocol):
    """What a plugin may do to the broker: publish and retain (amqtt's ``BrokerContext`` does)."""

    async def broadcast_message(self, topic: str, data: bytes, qos: int | None = None) -> None: ...

    async def retain_message(
        self, topic_name: str, data: bytes | bytearray, qos: int | None = None
    ) -> None: ...


class BrokerPlugin:
    """A plugin; the broker awaits only the hooks a subclass overrides, so they cost nothing else.

    The connect and disconnect hooks are awaited in the connect path: they must return at once and
    queue any slow work themselves. A hook that fails is logged; the connection goes on.
    """

    def attach(self, context: PluginContext) -> None:
        """The broker this plugin serves was built (before it starts)."""

    async def client_connected(self, session: Session) -> None:
        """A client was accepted and its CONNACK sent."""

    async def client_disconnected(self, session: Session) -> None:
        """A client's connection ended (also when its keep-alive ran out)."""

    async def close(self) -> None:
        """The broker stopped: release what the plugin holds."""


class Authenticator(BrokerPlugin):
    async def authenticate(self, session: Session) -> bool | None:
        """True: let the client in; False: refuse it; None: no opinion (another plugin decides,
        and a login nobody has an opinion on is refused)."""
        return False


class TopicFilter(BrokerPlugin):
    async def topic_filtering(self, session: Session, topic: str, action: Action) -> bool | None:
        """Whether ``session`` may do ``action`` on ``topic`` (anything but True refuses it)."""
        return False
