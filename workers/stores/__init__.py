"""Stores behind narrow interfaces (see interfaces), the backend chosen by URL.

``sqlite:///…`` and ``postgresql://…`` (``sql``, SQLAlchemy), ``mongodb://host:port/db`` and
``mongodb+srv://…`` (``mongo``, pymongo: the optional ``mongo`` extra). A backend is imported only
when a URL chooses it. What both backends decide the same way is in ``rules``.
"""

from __future__ import annotations

from workers.stores.interfaces import (
    AdminStore,
    Blocks,
    Chats,
    CommandStore,
    Credentials,
    Devices,
    Groups,
    GroupSettingsStore,
    Logins,
    MediaAccess,
    MediaEndpointStore,
    MessageChanges,
    MessageDeletion,
    Messages,
    MqttSessions,
    Notifications,
    Phones,
    Presence,
    Profiles,
    Reactions,
    Store,
    Timers,
    Users,
)
from workers.stores.records import (
    AcceptResult,
    BlockChange,
    Deletion,
    DeviceInfo,
    DeviceSeen,
    Expiry,
    GroupChange,
    GroupInfo,
    GroupUpdate,
    InboxEntry,
    JoinRequest,
    MessageChange,
    MessageFacts,
    Profile,
    ProfileChange,
    PushToken,
    ReactionChange,
    ReceiptRequest,
    ReceiptResult,
    ReportInfo,
    ResumedSession,
    SessionMark,
    SmsRecord,
    StoredMessage,
    SyncPage,
    TextSend,
    TimerChange,
    UserInfo,
)

__all__ = [
    "AcceptResult",
    "AdminStore",
    "BlockChange",
    "Blocks",
    "Chats",
    "CommandStore",
    "Credentials",
    "Deletion",
    "DeviceInfo",
    "DeviceSeen",
    "Devices",
    "Expiry",
    "GroupChange",
    "GroupInfo",
    "GroupSettingsStore",
    "GroupUpdate",
    "Groups",
    "InboxEntry",
    "JoinRequest",
    "Logins",
    "MediaAccess",
    "MediaEndpointStore",
    "MessageChange",
    "MessageChanges",
    "MessageDeletion",
    "MessageFacts",
    "Messages",
    "MqttSessions",
    "Notifications",
    "Phones",
    "Presence",
    "Profile",
    "ProfileChange",
    "Profiles",
    "PushToken",
    "ReactionChange",
    "Reactions",
    "ReceiptRequest",
    "ReceiptResult",
    "ReportInfo",
    "ResumedSession",
    "SessionMark",
    "SmsRecord",
    "Store",
    "StoredMessage",
    "SyncPage",
    "TextSend",
    "TimerChange",
    "Timers",
    "UserInfo",
    "Users",
    "open_store",
]


def open_store(url: str) -> Store:
    """The store for ``url``; the backend module is imported only when used."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in {"sqlite", "postgresql", "postgres"}:
        from workers.stores.sql import SqlStore

        return SqlStore(url)
    if scheme == "mongodb":
        try:
            from workers.stores.mongo import MongoStore
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] not in {"pymongo", "bson"}:
                raise
            raise ImportError("the MongoDB store needs pymongo: pip install 'mqchat[mongo]'") from exc
        return MongoStore(url)
    raise ValueError(f"no store for URL scheme {scheme!r} (use sqlite://, postgresql:// or mongodb://)")
