"""Routing: hand each inbox event to the node(s) where its user is connected.

A worker never speaks MQTT. It asks the session service where the recipient is and passes the
event to that node's delivery queue; the node publishes it to the user's inbox topic. A user who is
connected nowhere gets nothing live: the event waits in the inbox log for the next sync.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from workers.sessions import SessionStore

__all__ = ["NodeSender", "Router"]

NodeSender = Callable[[str, list[tuple[str, str, int]]], None]
"""Sends ``[(user, payload_json, qos), ...]`` to one node's delivery queue."""


class Router:
    def __init__(self, sessions: SessionStore, send_to_node: NodeSender) -> None:
        self._sessions = sessions
        self._send = send_to_node

    def deliver(
        self,
        items: Iterable[tuple[str, dict[str, Any]]],
        *,
        origin: tuple[str, str] | None = None,
        qos: int = 1,
    ) -> None:
        """Publish each ``(user, event)`` on every node the user is connected to.

        ``origin`` is ``(user, node)`` of the command being answered: that node always gets the
        user's events, even if the session service has not recorded the connection yet.
        """
        per_node: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
        nodes_cache: dict[str, set[str]] = {}
        for user, event in items:
            nodes = nodes_cache.get(user)
            if nodes is None:
                nodes = self._sessions.nodes_of(user)
                if origin is not None and origin[0] == user:
                    nodes = nodes | {origin[1]}
                nodes_cache[user] = nodes
            payload = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
            for node in nodes:
                per_node[node].append((user, payload, qos))
        for node, batch in per_node.items():
            self._send(node, batch)
