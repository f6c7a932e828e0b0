"""The SQL store: every part of it on one engine (see base), one module per concern."""

from __future__ import annotations

from workers.stores.sql.blocks import SqlBlocks
from workers.stores.sql.chats import SqlChats
from workers.stores.sql.contacts import SqlContacts
from workers.stores.sql.deletion import SqlDeletion
from workers.stores.sql.devices import SqlDevices
from workers.stores.sql.edits import SqlEdits
from workers.stores.sql.forwards import SqlForwards
from workers.stores.sql.group_settings import SqlGroupSettings
from workers.stores.sql.hides import SqlHides
from workers.stores.sql.history import SqlHistory
from workers.stores.sql.messages import SqlMessages
from workers.stores.sql.mqtt_sessions import SqlMqttSessions
from workers.stores.sql.privacy import SqlPrivacy
from workers.stores.sql.profiles import SqlProfiles
from workers.stores.sql.push import SqlPush
from workers.stores.sql.reactions import SqlReactions
from workers.stores.sql.receipts import SqlReceipts
from workers.stores.sql.reports import SqlReports
from workers.stores.sql.retention import SqlRetention
from workers.stores.sql.search import SqlSearch
from workers.stores.sql.timers import SqlTimers
from workers.stores.sql.users import SqlUsers

__all__ = ["SqlStore"]


class SqlStore(
    SqlUsers,
    SqlForwards,
    SqlMessages,
    SqlReceipts,
    SqlPush,
    SqlContacts,
    SqlProfiles,
    SqlDevices,
    SqlMqttSessions,
    SqlTimers,  # before SqlDeletion, on which it builds
    SqlDeletion,
    SqlReactions,
    SqlEdits,
    SqlHides,
    SqlGroupSettings,
    SqlChats,
    SqlSearch,
    SqlHistory,
    SqlRetention,
    SqlPrivacy,
    SqlBlocks,
    SqlReports,
):
    """The whole store on SQLAlchemy Core (see workers.stores.interfaces.Store). Each part is a
    class of its own on :class:`~workers.stores.sql.base.SqlBase`, which holds the engine,
    transactions, batches and the inbox log; messages build on groups and media."""
