"""The locator in this process's memory: a single node, broker and workers in one process."""

from __future__ import annotations

import threading

__all__ = ["MemoryLocator"]


class MemoryLocator:
    """Which node each user is on, in this process's memory (single node). Thread-safe."""

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
