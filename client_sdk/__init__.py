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
    Blocking,
    Chat,
    ChatPage,
    Device,
    Event,
    Group,
    GroupEvent,
    GroupInvite,
    HistoryPage,
    JoinRequest,
    Message,
    MessageDeleted,
    MessageEdited,
    MessageHidden,
    MessagesExpired,
    Presence,
    PresenceRefused,
    Profile,
    ProfileChanged,
    Reaction,
    ReadState,
    Receipt,
    ReceiptState,
    SearchResults,
    Sent,
    ServerError,
    SyncReset,
    TimerChanged,
    Typing,
)
from client_sdk._media import Media
from client_sdk._outbox import OutgoingMessage
from client_sdk._privacy import GroupInvitation, PrivacyChanged, PrivacySettings
from client_sdk._replies import Reply
from client_sdk.contract import Status

__all__ = [
    "AuthenticationError",
    "Blocking",
    "Chat",
    "ChatPage",
    "Client",
    "CommandRejected",
    "ConnectError",
    "Device",
    "Event",
    "Group",
    "GroupEvent",
    "GroupInvitation",
    "GroupInvite",
    "HistoryPage",
    "JoinRequest",
    "Media",
    "Message",
    "MessageDeleted",
    "MessageEdited",
    "MessageHidden",
    "MessagesExpired",
    "MqchatError",
    "NotConnected",
    "OutgoingMessage",
    "Presence",
    "PresenceForbidden",
    "PresenceRefused",
    "PrivacyChanged",
    "PrivacySettings",
    "Profile",
    "ProfileChanged",
    "Reaction",
    "ReadState",
    "Receipt",
    "ReceiptState",
    "Reply",
    "SearchResults",
    "Sent",
    "ServerError",
    "Status",
    "SyncReset",
    "Timeout",
    "TimerChanged",
    "Typing",
]
