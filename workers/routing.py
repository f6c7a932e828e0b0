"""Routing: hand each inbox event to the node(s) where its user is connected.

A worker never speaks MQTT. It asks the locator where the recipient is and passes the
event to that node's delivery queue; the node publishes it to the user's inbox topic. A user who is
connected nowhere gets nothing live: the event waits in the inbox log for the next sync.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from workers.answers import PublishOptions
from workers.events import dumps
from workers.locator import Locator

__all__ = ["CONTROL_QOS", "PRESENCE_CUT", "Delivery", "NodeItem", "NodeSender", "Router"]

NodeItem = tuple[str, str, int, PublishOptions | None]
"""``(user, payload_json, qos, options)``: one event for a node to publish (``options``: see
``workers/answers.py``; None for the user's inbox, as almost every event)."""
NodeSender = Callable[[str, list[NodeItem]], None]
"""Sends ``[(user, payload_json, qos, options), ...]`` to one node's delivery queue."""

Delivery = tuple[str, dict[str, Any], str | None, int, PublishOptions | None]
"""``(user, event, node, qos, options)``: ``node``, when set, gets the event even if the locator
does not list the user there (the node of the command being answered, for its sender); an event
whose ``options`` name a topic (the answer on an MQTT 5 command's Response Topic) goes to that
node only, where the device that asked is."""


CONTROL_QOS = -1
"""The QoS of a delivery that is an order to the node, not an event to publish: it travels the way
events do (to every node the user is on, in order with them) and the node carries it out."""
PRESENCE_CUT = "presence_cut"
"""A control delivery to a user: ``{"type": PRESENCE_CUT, "user": <blocker>}``: end the user's
subscriptions to the blocker's presence now, and forget that the user may see it (``rules.blocks``)."""


class Router:
    def __init__(self, locator: Locator, send_to_node: NodeSender) -> None:
        self._locator = locator
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
        user's events, even if the locator has not recorded the connection yet.
        """
        self.route(
            (user, event, origin[1] if origin is not None and origin[0] == user else None, qos, None)
            for user, event in items
        )

    def route(self, deliveries: Iterable[Delivery]) -> None:
        """Publish many events, in order, with one hand-off per node for all of them."""
        per_node: dict[str, list[NodeItem]] = defaultdict(list)
        nodes_cache: dict[str, set[str]] = {}
        for user, event, also, qos, options in deliveries:
            if options is not None and "topic" in options:
                if also is not None:
                    per_node[also].append((user, dumps(event), qos, options))
                continue
            nodes = nodes_cache.get(user)
            if nodes is None:
                nodes = nodes_cache[user] = self._locator.nodes_of(user)
            if also is not None and also not in nodes:
                nodes = nodes | {also}
            payload = dumps(event)
            for node in nodes:
                per_node[node].append((user, payload, qos, options))
        for node, batch in per_node.items():
            self._send(node, batch)
