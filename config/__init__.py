"""Typed settings of an mqchat process: built once at start, validated, passed explicitly."""

from config.settings import (
    AuthSettings,
    BrokerSettings,
    GroupSettings,
    LimitSettings,
    LocatorSettings,
    MediaSettings,
    PresenceSettings,
    PushSettings,
    Settings,
    SettingsError,
    StoreSettings,
    TopicSettings,
    WorkerSettings,
    load_settings,
)

__all__ = [
    "AuthSettings",
    "BrokerSettings",
    "GroupSettings",
    "LimitSettings",
    "LocatorSettings",
    "MediaSettings",
    "PresenceSettings",
    "PushSettings",
    "Settings",
    "SettingsError",
    "StoreSettings",
    "TopicSettings",
    "WorkerSettings",
    "load_settings",
]
