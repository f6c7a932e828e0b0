"""Which settings need an optional extra, checked once at start.

A fresh install has only the base dependencies: the single-node default (SQLite, the in-process
job queue, a media folder) needs nothing more. A backend that a setting chooses (PostgreSQL,
MongoDB, Redis, RabbitMQ, S3) comes with an extra of ``pyproject.toml`` and is imported only where
that setting chooses it. So that a missing extra is one line naming the setting and the install
command rather than a traceback from deep inside a backend, every process checks its settings here
before it opens anything.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator

from config.settings import Settings, SettingsError, redact_url

__all__ = ["check_extras", "missing_extras"]


# The settings that choose a backend by URL, and what each URL scheme (before any "+driver",
# so "postgresql+psycopg" is "postgresql") needs beyond the base dependencies: (extra, module).
_URL_SETTINGS: dict[str, Callable[[Settings], str | None]] = {
    "store.url": lambda s: s.store_url,
    "workers.queue_url": lambda s: s.workers.queue_url,
    "locator.url": lambda s: s.locator.url,
    "media.storage_url": lambda s: s.media_storage_url,
}
_NEEDS = {
    "postgresql": ("postgres", "psycopg"),
    "postgres": ("postgres", "psycopg"),
    "mongodb": ("mongo", "pymongo"),
    "redis": ("redis", "redis"),
    "rediss": ("redis", "redis"),
    "amqp": ("rabbitmq", "pika"),
    "amqps": ("rabbitmq", "pika"),
    "s3": ("s3", "boto3"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package that is missing, or an import hook that refuses it
        return False


def missing_extras(settings: Settings) -> Iterator[str]:
    """One line for each setting whose backend's extra is not installed."""
    for setting, value in _URL_SETTINGS.items():
        url = value(settings)
        needs = _NEEDS.get(url.split(":", 1)[0].split("+", 1)[0].lower()) if url else None
        if url and needs and not _installed(needs[1]):
            yield (
                f"{setting} is {redact_url(url)}: that needs the {needs[0]} extra: pip install"
                f" 'mqchat[{needs[0]}]' (in a checkout: .venv/bin/pip install -e '.[{needs[0]}]')"
            )


def check_extras(settings: Settings) -> None:
    """Raise :class:`SettingsError` naming the first setting whose extra is missing."""
    for line in missing_extras(settings):
        raise SettingsError(line)
