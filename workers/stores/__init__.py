"""Stores behind one interface, chosen by URL.

``sqlite:///…`` and ``postgresql://…`` (SQLAlchemy), ``mongodb://host:port/db`` and
``mongodb+srv://…`` (pymongo, the optional ``mongo`` extra).
"""

from __future__ import annotations

from workers.stores.base import (
    AcceptResult,
    GroupChange,
    GroupInfo,
    InboxEntry,
    PushToken,
    ReceiptRequest,
    ReceiptResult,
    SmsRecord,
    Store,
    StoredMessage,
    TextSend,
    UserInfo,
)

__all__ = [
    "AcceptResult",
    "GroupChange",
    "GroupInfo",
    "InboxEntry",
    "PushToken",
    "ReceiptRequest",
    "ReceiptResult",
    "SmsRecord",
    "Store",
    "StoredMessage",
    "TextSend",
    "UserInfo",
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
