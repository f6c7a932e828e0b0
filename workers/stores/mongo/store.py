"""The MongoDB store: every part of it on one client (see base), one module per concern."""

from __future__ import annotations

from workers.stores.mongo.blocks import MongoBlocks
from workers.stores.mongo.chats import MongoChats
from workers.stores.mongo.contacts import MongoContacts
from workers.stores.mongo.deletion import MongoDeletion
from workers.stores.mongo.devices import MongoDevices
from workers.stores.mongo.edits import MongoEdits
from workers.stores.mongo.forwards import MongoForwards
from workers.stores.mongo.group_settings import MongoGroupSettings
from workers.stores.mongo.hides import MongoHides
from workers.stores.mongo.history import MongoHistory
from workers.stores.mongo.messages import MongoMessages
from workers.stores.mongo.mqtt_sessions import MongoMqttSessions
from workers.stores.mongo.privacy import MongoPrivacy
from workers.stores.mongo.profiles import MongoProfiles
from workers.stores.mongo.push import MongoPush
from workers.stores.mongo.reactions import MongoReactions
from workers.stores.mongo.receipts import MongoReceipts
from workers.stores.mongo.reports import MongoReports
from workers.stores.mongo.retention import MongoRetention
from workers.stores.mongo.search import MongoSearch
from workers.stores.mongo.timers import MongoTimers
from workers.stores.mongo.users import MongoUsers

__all__ = ["MongoStore"]


class MongoStore(
    MongoUsers,
    MongoForwards,
    MongoMessages,
    MongoReceipts,
    MongoPush,
    MongoContacts,
    MongoProfiles,
    MongoDevices,
    MongoMqttSessions,
    MongoTimers,  # before MongoDeletion, on which it builds
    MongoDeletion,
    MongoReactions,
    MongoEdits,
    MongoHides,
    MongoGroupSettings,
    MongoChats,
    MongoSearch,
    MongoHistory,
    MongoRetention,
    MongoPrivacy,
    MongoBlocks,
    MongoReports,
):
    """The whole store on MongoDB (see workers.stores.interfaces.Store). Each part is a class of its
    own on :class:`~workers.stores.mongo.base.MongoBase`, which holds the client, transactions and
    the inbox log; messages build on groups and media. Thread-safe."""
