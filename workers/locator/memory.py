"""The locator in this process's memory: a single node, broker and workers in one process."""

from __future__ import annotations

import threading

__all__ = ["MemoryLocator"]


class MemoryLocator:
    """Which node each user is on, in this process's memory (single node). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: dict[str, frozenset[str]] = {}
        """Each user's nodes; the same frozenset object for every user on the same nodes (on a
        single node: one for all), so a user costs its dict entry, not a set of its own."""
        self._shared: dict[frozenset[str], frozenset[str]] = {}
        self._last_action: dict[str, float] = {}

    def set_online(self, user: str, node: str, *, now: float) -> None:
        with self._lock:
            self._nodes[user] = self._share(self._nodes.get(user, frozenset()) | {node})
            self._last_action[user] = now

    def set_offline(self, user: str, node: str, *, now: float) -> None:
        with self._lock:
            nodes = self._nodes.get(user)
            if nodes is not None:
                self._set(user, nodes - {node})
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
                self._set(user, self._nodes[user] - {node})
            return gone

    def _share(self, nodes: frozenset[str]) -> frozenset[str]:
        return self._shared.setdefault(nodes, nodes)

    def _set(self, user: str, nodes: frozenset[str]) -> None:
        if nodes:
            self._nodes[user] = self._share(nodes)
        else:
            del self._nodes[user]
