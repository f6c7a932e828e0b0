"""Devices in the MongoDB store: first and last seen, the node each is connected to, its platform,
and sign-outs (a device's own tokens are the ``credentials`` with its ``device``)."""

from __future__ import annotations

from collections.abc import Sequence

from pymongo import ASCENDING, UpdateOne
from pymongo.client_session import ClientSession

from workers.errors import UnknownDevice, UnknownUser
from workers.stores.mongo.base import Doc, MongoBase
from workers.stores.records import DeviceInfo, DeviceSeen
from workers.stores.rules.devices import listed

__all__ = ["MongoDevices"]


def _id(user: str, device: str) -> str:
    return f"{user}/{device}"


def _writes(change: DeviceSeen) -> list[UpdateOne]:
    key = _id(change.user, change.device)
    new = {"user": change.user, "device": change.device, "first_seen": change.ts}
    if change.platform is not None:
        return [
            UpdateOne(
                {"_id": key},
                {"$set": {"platform": change.platform}, "$setOnInsert": {**new, "last_seen": change.ts}},
                upsert=True,
            )
        ]
    if change.online:
        state = {"last_seen": change.ts, "connected_at": change.ts, "node": change.node}
        return [UpdateOne({"_id": key}, {"$set": state, "$setOnInsert": new}, upsert=True)]
    # a disconnect: offline only if no other node took the device over meanwhile
    return [
        UpdateOne({"_id": key}, {"$set": {"last_seen": change.ts}}),
        UpdateOne({"_id": key, "node": change.node}, {"$set": {"node": None}}),
    ]


class MongoDevices(MongoBase):
    def record_devices(self, changes: Sequence[DeviceSeen]) -> None:
        writes = [write for change in changes for write in _writes(change)]
        if writes:
            with self._guard():
                self._devices.bulk_write(writes, ordered=True)

    def devices_of(self, user: str) -> list[DeviceInfo]:
        with self._guard():
            docs: list[Doc] = list(
                self._devices.find({"user": user}).sort([("first_seen", ASCENDING), ("device", ASCENDING)])
            )
        return [
            DeviceInfo(
                d["device"],
                float(d["first_seen"]),
                float(d["last_seen"]),
                d.get("platform"),
                d.get("node") is not None,
            )
            for d in docs
            if listed(signed_out_at=d.get("signed_out_at"), connected_at=d.get("connected_at"))
        ]

    def sign_out_device(self, user: str, *, device: str, now: float) -> int:
        def work(session: ClientSession) -> int:
            if self._users.find_one({"_id": user}, {"_id": True}, session=session) is None:
                raise UnknownUser(user)
            removed = int(
                self._credentials.delete_many({"user": user, "device": device}, session=session).deleted_count
            )
            key = _id(user, device)
            known = self._devices.update_one(
                {"_id": key}, {"$set": {"signed_out_at": float(now)}}, session=session
            )
            if not known.matched_count:
                if not removed:
                    raise UnknownDevice(user, device)
                self._devices.insert_one(
                    {
                        "_id": key,
                        "user": user,
                        "device": device,
                        "first_seen": float(now),
                        "last_seen": float(now),
                        "signed_out_at": float(now),
                    },
                    session=session,
                )
            return removed

        return self._tx(work)

    def device_signed_out_at(self, user: str, device: str) -> float | None:
        with self._guard():
            doc = self._devices.find_one({"_id": _id(user, device)}, {"signed_out_at": True})
        return None if doc is None or doc.get("signed_out_at") is None else float(doc["signed_out_at"])

    def signed_out_since(self, since: float) -> list[tuple[str, str, float]]:
        with self._guard():
            rows = self._devices.find(
                {"signed_out_at": {"$gte": float(since)}},
                {"user": True, "device": True, "signed_out_at": True},
            )
            return [(r["user"], r["device"], float(r["signed_out_at"])) for r in rows]

    def devices_offline_on(self, node: str) -> None:
        with self._guard():
            self._devices.update_many({"node": node}, {"$set": {"node": None}})
