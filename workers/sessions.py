"""The session service: which node(s) each user is connected to, and when they last acted.

A node records ``user -> node`` when the user's first connection on it opens and removes it when
the last one closes; workers ask ``nodes_of(user)`` to route a delivery. The in-memory store
serves a single node (broker and workers in one process).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from config.settings import Settings

__all__ = ["MemorySessions", "SessionStore", "open_sessions"]


class SessionStore(Protocol):
    def set_online(self, user: str, node: str, *, now: float) -> None: ...
    def set_offline(self, user: str, node: str, *, now: float) -> None: ...
    def touch(self, user: str, *, now: float) -> None: ...
    def nodes_of(self, user: str) -> set[str]: ...
    def last_action(self, user: str) -> float | None: ...
    def drop_node(self, node: str) -> list[str]:
        """Forget every user of ``node`` (it stopped or died); returns them."""
        ...


class MemorySessions:
    """Sessions in this process's memory (single node). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, set[str]] = {}
        self._last_action: dict[str, float] = {}

    def set_online(self, user: str, node: str, *, now: float) -> None:
        with self._lock:
            self._nodes.setdefault(user, set()).add(node)
            self._last_action[user] = now

    def set_offline(self, user: str, node: str, *, now: float) -> None:
        with self._lock:
            nodes = self._nodes.get(user)
            if nodes is not None:
                nodes.discard(node)
                if not nodes:
                    del self._nodes[user]
            self._last_action[user] = now

    def touch(self, user: str, *, now: float) -> None:
        with self._lock:
            self._last_action[user] = now

    def nodes_of(self, user: str) -> set[str]:
        with self._lock:
            return set(self._nodes.get(user, ()))

    def last_action(self, user: str) -> float | None:
        with self._lock:
            return self._last_action.get(user)

    def drop_node(self, node: str) -> list[str]:
        with self._lock:
            gone = [user for user, nodes in self._nodes.items() if node in nodes]
            for user in gone:
                self._nodes[user].discard(node)
                if not self._nodes[user]:
                    del self._nodes[user]
            return gone


def open_sessions(settings: Settings) -> SessionStore:
    """Redis when ``sessions.url`` is set (several nodes), else this process's memory."""
    if settings.sessions.url:
        from workers.sessions_redis import RedisSessions

        return RedisSessions(settings.sessions.url, node_ttl=settings.sessions.node_ttl)
    return MemorySessions()
