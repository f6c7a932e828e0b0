"""The locator: which node(s) each user is connected to, and when they last acted.

A node records ``user -> node`` when the user's first connection on it opens and removes it when
the last one closes; workers ask ``nodes_of(user)`` to route a delivery. ``locator.url`` chooses
where the map lives: unset, in this process's memory (``memory``: a single node, broker and
workers in one process); ``redis://…``, in Redis, shared by every node and worker (``redis``: the
optional ``redis`` extra, imported only when the URL chooses it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from workers.locator.memory import MemoryLocator

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["Locator", "MemoryLocator", "open_locator"]


class Locator(Protocol):
    def set_online(self, user: str, node: str, *, now: float) -> None: ...
    def set_offline(self, user: str, node: str, *, now: float) -> None: ...
    def touch(self, user: str, *, now: float) -> None: ...
    def nodes_of(self, user: str) -> set[str]: ...
    def last_action(self, user: str) -> float | None: ...
    def drop_node(self, node: str) -> list[str]:
        """Forget every user of ``node`` (it stopped or died); returns them."""
        ...


def open_locator(settings: Settings) -> Locator:
    """Redis when ``locator.url`` is set (several nodes), else this process's memory."""
    if settings.locator.url:
        from workers.locator.redis import RedisLocator

        return RedisLocator(settings.locator.url, node_ttl=settings.locator.node_ttl)
    return MemoryLocator()
