"""mqchat client SDK for asyncio apps: the same chat as :mod:`client_sdk`, awaited.

>>> from client_sdk.aio import Client
>>> async def main() -> None:  # doctest: +SKIP
...     async with Client("127.0.0.1", 1883, user="alice", token="...") as chat:
...         sent = await chat.send("bob", "hello")
...         await sent.wait("delivered", timeout=5)
...         async for message in chat.messages(timeout=5):
...             await chat.mark_read(message)

It needs the ``aio`` extra (``pip install 'mqchat[aio]'``): the MQTT client is aiomqtt, which
drives paho-mqtt (the blocking client's MQTT library) from the event loop instead of a thread.
The protocol itself is the blocking client's I/O-free core, so both behave the same; the events,
the errors and :class:`Status` are the very types of :mod:`client_sdk`. Only the handle of a sent
message differs: its :meth:`OutgoingMessage.wait` is awaited.
"""

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
from client_sdk._privacy import GroupInvitation, PrivacyChanged, PrivacySettings
from client_sdk._replies import Reply
from client_sdk.aio._client import Client
from client_sdk.aio._outgoing import OutgoingMessage
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
