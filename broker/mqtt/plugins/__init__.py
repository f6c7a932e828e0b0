"""mqchat's broker plugins: authentication, topic ACL and presence.

Each is built by the node with the few services it needs and passed to ``MqchatBroker`` (see
``base``); each has a nested ``Config`` dataclass, checked when it is built. The security plugins
deny by default.
"""

from broker.mqtt.plugins.acl import AclPlugin
from broker.mqtt.plugins.auth import AuthPlugin
from broker.mqtt.plugins.base import Authenticator, BrokerPlugin, PluginContext, TopicFilter
from broker.mqtt.plugins.presence import PresencePlugin

__all__ = [
    "AclPlugin",
    "AuthPlugin",
    "Authenticator",
    "BrokerPlugin",
    "PluginContext",
    "PresencePlugin",
    "TopicFilter",
]
