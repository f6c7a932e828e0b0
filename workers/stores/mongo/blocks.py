"""Blocking in the MongoDB store (the rule: ``rules.blocks``).

The lookups other concerns make are functions on the ``blocks`` collection (``blocked_pairs``,
``blocked_by``), used in their own transactions; ``blocker_blocked`` is the index of each.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from workers.errors import UnknownUser
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.records import BlockChange
from workers.stores.rules.blocks import blocked_pairs as pairs_found
from workers.stores.rules.blocks import blocking_event, check_block

__all__ = ["MongoBlocks", "blocked_by", "blocked_pairs"]


def blocked_pairs(
    blocks: Collection[Doc], pairs: Iterable[tuple[str, str]], session: ClientSession | None = None
) -> set[tuple[str, str]]:
    """Which ``(blocker, blocked)`` of ``pairs`` are blocks: one query for all of them."""
    wanted = set(pairs)
    if not wanted:
        return set()
    query = {
        "blocker": {"$in": sorted({a for a, _ in wanted})},
        "blocked": {"$in": sorted({b for _, b in wanted})},
    }
    rows = blocks.find(query, {"blocker": True, "blocked": True, "_id": False}, session=session)
    return pairs_found(wanted, [(row["blocker"], row["blocked"]) for row in rows])


def blocked_by(blocks: Collection[Doc], blocker: str, session: ClientSession | None = None) -> set[str]:
    """Everyone ``blocker`` blocks."""
    return {row["blocked"] for row in blocks.find({"blocker": blocker}, {"blocked": True}, session=session)}


class MongoBlocks(MongoBase):
    def set_block(self, *, user: str, target: str, blocked: bool, ref: str, now: float) -> BlockChange:
        check_block(user, target)

        def work(session: ClientSession) -> BlockChange:
            if self._users.find_one({"_id": target}, {"_id": True}, session=session) is None:
                raise UnknownUser(target)
            if bool(blocked_pairs(self._blocks, [(user, target)], session)) == blocked:
                return BlockChange(changed=False)
            seen = {"_id": f"{user}/{ref}"}  # a command resent after a later change: done already
            if self._block_commands.find_one(seen, {"_id": True}, session=session) is not None:
                return BlockChange(changed=False)
            self._block_commands.insert_one(seen, session=session)
            if blocked:
                doc = {"blocker": user, "blocked": target, "created_at": float(now)}
                self._blocks.insert_one(doc, session=session)
            else:
                self._blocks.delete_one({"blocker": user, "blocked": target}, session=session)
            event = blocking_event(user, target, blocked=blocked, ref=ref, now=now)
            return BlockChange(changed=True, entries=self._append_many(session, [event], now))

        try:
            return self._tx(work)
        except DuplicateKeyError:  # the same block made at once by another device: done
            return BlockChange(changed=False)

    def blocked_users(self, user: str) -> list[str]:
        with self._guard():
            rows = self._blocks.find({"blocker": user}, {"blocked": True}).sort(
                [("created_at", ASCENDING), ("blocked", ASCENDING)]
            )
            return [row["blocked"] for row in rows]

    def is_blocked(self, blocker: str, blocked: str) -> bool:
        with self._guard():
            return bool(blocked_pairs(self._blocks, [(blocker, blocked)]))
