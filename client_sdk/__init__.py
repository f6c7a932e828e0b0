"""mqchat client SDK: chat over MQTT with any mqchat server.

>>> from client_sdk import Client
>>> with Client("127.0.0.1", 1883, user="alice", token="...") as chat:  # doctest: +SKIP
...     chat.send("bob", "hello").wait("delivered", timeout=5)
...     for message in chat.messages(timeout=5):
...         chat.mark_read(message)
...     climbing = chat.create_group("Climbing", ["bob", "carol"])
...     chat.send(climbing.id, "hello everyone").wait("read", timeout=60)  # read by every member

The wire contract itself (topics, payloads, codes) is in :mod:`client_sdk.contract` and
docs/protocol.md.
"""

from client_sdk._client import Client
from client_sdk._errors import (
    AuthenticationError,
    CommandRejected,
    ConnectError,
    MqchatError,
    NotConnected,
    PresenceForbidden,
    Timeout,
)
from client_sdk._events import (
    Device,
    Event,
    Group,
    GroupEvent,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageHidden,
    Presence,
    PresenceRefused,
    Profile,
    ProfileChanged,
    Reaction,
    Receipt,
    SearchResults,
    Sent,
    ServerError,
    Typing,
)
from client_sdk._media import Media
from client_sdk._outbox import OutgoingMessage
from client_sdk._replies import Reply
from client_sdk.contract import Status

__all__ = [
    "AuthenticationError",
    "Client",
    "CommandRejected",
    "ConnectError",
    "Device",
    "Event",
    "Group",
    "GroupEvent",
    "Media",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageHidden",
    "MqchatError",
    "NotConnected",
    "OutgoingMessage",
    "Presence",
    "PresenceForbidden",
    "PresenceRefused",
    "Profile",
    "ProfileChanged",
    "Reaction",
    "Receipt",
    "Reply",
    "SearchResults",
    "Sent",
    "ServerError",
    "Status",
    "Timeout",
    "Typing",
]
