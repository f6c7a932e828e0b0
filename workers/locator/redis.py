"""The locator in Redis, shared by every node and worker of a deployment.

Keys (``<prefix>`` is ``mqchat`` by default):

- ``<prefix>:u:<user>:nodes`` set of nodes the user is connected to; ``…:last`` last action.
- ``<prefix>:n:<node>:users`` set of the node's users; ``…:alive`` a key the node refreshes
  every few seconds with a short expiry. A node whose key expired is dead: its entries no longer
  count (``nodes_of`` skips it) and ``reap`` clears them and tells who went offline with it.
- ``<prefix>:nodes`` every node that ever registered, until reaped.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redis.exceptions import RedisError

from workers.errors import StoreUnavailable

__all__ = ["RedisLocator"]

log = logging.getLogger(__name__)


class RedisLocator:
    def __init__(self, url: str, *, prefix: str = "mqchat", node_ttl: float = 10.0) -> None:
        self._redis: Any = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self._p = prefix
        self.node_ttl = node_ttl

    def _user(self, user: str, what: str) -> str:
        return f"{self._p}:u:{user}:{what}"

    def _node(self, node: str, what: str) -> str:
        return f"{self._p}:n:{node}:{what}"

    def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except RedisError as exc:
            raise StoreUnavailable(f"locator unavailable: {exc}") from exc

    # ------------------------------------------------------------------ Locator
    def set_online(self, user: str, node: str, *, now: float) -> None:
        def go() -> None:
            pipe = self._redis.pipeline()
            pipe.sadd(self._user(user, "nodes"), node)
            pipe.sadd(self._node(node, "users"), user)
            pipe.set(self._user(user, "last"), repr(now))
            pipe.execute()

        self._run(go)

    def set_offline(self, user: str, node: str, *, now: float) -> None:
        def go() -> None:
            pipe = self._redis.pipeline()
            pipe.srem(self._user(user, "nodes"), node)
            pipe.srem(self._node(node, "users"), user)
            pipe.set(self._user(user, "last"), repr(now))
            pipe.execute()

        self._run(go)

    def touch(self, user: str, *, now: float) -> None:
        self._run(self._redis.set, self._user(user, "last"), repr(now))

    def nodes_of(self, user: str) -> set[str]:
        nodes = sorted(self._run(self._redis.smembers, self._user(user, "nodes")))
        if not nodes:
            return set()
        alive = self._run(self._redis.mget, [self._node(n, "alive") for n in nodes])
        return {node for node, flag in zip(nodes, alive, strict=True) if flag}

    def last_action(self, user: str) -> float | None:
        value = self._run(self._redis.get, self._user(user, "last"))
        return float(value) if value else None

    def drop_node(self, node: str) -> list[str]:
        def go() -> list[str]:
            users = sorted(self._redis.smembers(self._node(node, "users")))
            pipe = self._redis.pipeline()
            for user in users:
                pipe.srem(self._user(user, "nodes"), node)
            pipe.delete(self._node(node, "users"), self._node(node, "alive"))
            pipe.srem(f"{self._p}:nodes", node)
            pipe.execute()
            return users

        result: list[str] = self._run(go)
        return result

    # ------------------------------------------------------------------ cluster membership
    def heartbeat(self, node: str) -> bool:
        """Refresh ``node``'s entry; True when Redis did not know the node (it lost its data)."""

        def go() -> bool:
            pipe = self._redis.pipeline()
            pipe.set(self._node(node, "alive"), "1", px=int(self.node_ttl * 1000))
            pipe.sadd(f"{self._p}:nodes", node)
            return bool(pipe.execute()[1])

        result: bool = self._run(go)
        return result

    def live_nodes(self) -> set[str]:
        nodes = sorted(self._run(self._redis.smembers, f"{self._p}:nodes"))
        if not nodes:
            return set()
        alive = self._run(self._redis.mget, [self._node(n, "alive") for n in nodes])
        return {node for node, flag in zip(nodes, alive, strict=True) if flag}

    def reap(self) -> dict[str, list[str]]:
        """Clear every dead node (one reaper wins per node); ``{node: users it had}``."""
        reaped: dict[str, list[str]] = {}
        nodes = sorted(self._run(self._redis.smembers, f"{self._p}:nodes"))
        for node in nodes:
            if self._run(self._redis.exists, self._node(node, "alive")):
                continue
            if not self._run(lambda n=node: self._redis.set(self._node(n, "reaping"), "1", nx=True, ex=30)):
                continue
            reaped[node] = self.drop_node(node)
        return reaped

    def close(self) -> None:
        self._redis.close()
