"""Devices in the SQL store: first and last seen, the node each is connected to, its platform,
and sign-outs (with the device's own tokens, in ``device_tokens``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import (
    Float,
    String,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from workers.errors import UnknownDevice, UnknownUser
from workers.stores.records import DeviceInfo, DeviceSeen
from workers.stores.rules.devices import listed
from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import device_tokens, devices, users

__all__ = ["SqlDevices"]


def _key(user: str, device: str) -> ColumnElement[bool]:
    return and_(devices.c.user_id == user, devices.c.device == device)


class SqlDevices(SqlBase):
    def record_devices(self, changes: Sequence[DeviceSeen]) -> None:
        with self._tx() as conn:
            connects: dict[tuple[str, str], DeviceSeen] = {}
            for change in changes:
                key = (change.user, change.device)
                connect = change.online and change.platform is None
                if not connect or key in connects:
                    _connected(conn, connects.values())  # what came before, in order
                    connects.clear()
                if connect:
                    connects[key] = change
                else:
                    _record(conn, change)
            _connected(conn, connects.values())

    def devices_of(self, user: str) -> list[DeviceInfo]:
        query = (
            select(
                devices.c.device,
                devices.c.first_seen,
                devices.c.last_seen,
                devices.c.platform,
                devices.c.node,
                devices.c.connected_at,
                devices.c.signed_out_at,
            )
            .where(devices.c.user_id == user)
            .order_by(devices.c.first_seen, devices.c.device)
        )
        with self._tx() as conn:
            rows = conn.execute(query).all()
        return [
            DeviceInfo(r[0], float(r[1]), float(r[2]), r[3], r[4] is not None)
            for r in rows
            if listed(signed_out_at=r[6], connected_at=r[5])
        ]

    def sign_out_device(self, user: str, *, device: str, now: float) -> int:
        with self._tx() as conn:
            if conn.execute(select(users.c.id).where(users.c.id == user)).first() is None:
                raise UnknownUser(user)
            removed = int(
                conn.execute(
                    delete(device_tokens).where(
                        device_tokens.c.user_id == user, device_tokens.c.device == device
                    )
                ).rowcount
            )
            known = conn.execute(update(devices).where(_key(user, device)).values(signed_out_at=now)).rowcount
            if not known:
                if not removed:
                    raise UnknownDevice(user, device)
                conn.execute(
                    insert(devices).values(
                        user_id=user, device=device, first_seen=now, last_seen=now, signed_out_at=now
                    )
                )
            return removed

    def device_signed_out_at(self, user: str, device: str) -> float | None:
        with self._tx() as conn:
            row = conn.execute(select(devices.c.signed_out_at).where(_key(user, device))).first()
        return None if row is None or row[0] is None else float(row[0])

    def signed_out_since(self, since: float) -> list[tuple[str, str, float]]:
        query = select(devices.c.user_id, devices.c.device, devices.c.signed_out_at).where(
            devices.c.signed_out_at >= since
        )
        with self._tx() as conn:
            return [(r[0], r[1], float(r[2])) for r in conn.execute(query)]

    def devices_offline_on(self, node: str) -> None:
        with self._tx() as conn:
            conn.execute(update(devices).where(devices.c.node == node).values(node=None))


# Every connect and disconnect of every device comes through here (batched by the presence
# plugin): the statements are compiled once and run on the cursor (``driver.Statement``), and a
# device seen for the first time is inserted by a statement that does nothing when it exists, so
# no round trip asks first. Casts give PostgreSQL the types of parameters in a SELECT list.
_KEY = and_(devices.c.user_id == bindparam("b_user"), devices.c.device == bindparam("b_device"))
_INSERT_NEW = Statement(
    insert(devices).from_select(
        ["user_id", "device", "first_seen", "last_seen", "connected_at", "node", "platform"],
        select(
            cast(bindparam("b_user"), String),
            cast(bindparam("b_device"), String),
            cast(bindparam("b_ts"), Float),
            cast(bindparam("b_ts"), Float),
            cast(bindparam("b_connected"), Float),
            cast(bindparam("b_node"), String),
            cast(bindparam("b_platform"), String),
        ).where(~exists().where(_KEY)),
    )
)
_PLATFORM = Statement(update(devices).where(_KEY).values(platform=bindparam("b_platform")))
_LAST_SEEN = Statement(update(devices).where(_KEY).values(last_seen=bindparam("b_ts")))
_LEFT = Statement(update(devices).where(_KEY, devices.c.node == bindparam("b_node")).values(node=None))


# A connect storm's devices, a batch at a time: each connect of the batch inserts its device or
# updates it, one upsert for them all: on PostgreSQL one statement of arrays (the driver's
# ``execute_many`` of an insert, ``ON CONFLICT`` with it: one SQL text whatever the number of rows),
# on SQLite one prepared statement run for each row (``executemany``: no round trips to save, and
# no Python per row). A statement may not update one row twice (PostgreSQL refuses it), so a device
# seen twice starts a new run.
_CONNECT_KEYS = ("user_id", "device", "first_seen", "last_seen", "connected_at", "node")


def _upsert_connected(rows: postgresql.Insert | sqlite.Insert) -> Statement:
    """``rows`` inserted as devices first seen now, or a known device's connect updated."""
    return Statement(
        rows.on_conflict_do_update(
            index_elements=[devices.c.user_id, devices.c.device],
            set_={
                "last_seen": rows.excluded.last_seen,
                "connected_at": rows.excluded.connected_at,
                "node": rows.excluded.node,
            },
        ),
        column_keys=_CONNECT_KEYS,
    )


_CONNECTED = {
    "postgresql": _upsert_connected(postgresql.insert(devices)),
    "sqlite": _upsert_connected(sqlite.insert(devices)),
}


def _connected(conn: Connection, connects: Collection[DeviceSeen]) -> None:
    """Record devices connected, each at most once."""
    if not connects:
        return
    rows = [
        {
            "user_id": c.user,
            "device": c.device,
            "first_seen": c.ts,
            "last_seen": c.ts,
            "connected_at": c.ts,
            "node": c.node,
        }
        for c in connects
    ]
    _CONNECTED[conn.dialect.name].execute_many(conn, rows)


def _record(conn: Connection, change: DeviceSeen) -> None:
    """A disconnect, or a device's platform (a connect is ``_connected``'s)."""
    key = {"b_user": change.user, "b_device": change.device}
    if change.platform is None:
        # a disconnect: offline only if no other node took the device over meanwhile
        _LAST_SEEN.execute(conn, {**key, "b_ts": change.ts})
        _LEFT.execute(conn, {**key, "b_node": change.node})
        return
    _INSERT_NEW.execute(
        conn,
        {
            **key,
            "b_ts": change.ts,
            "b_connected": change.ts if change.online else None,
            "b_node": None,
            "b_platform": change.platform,
        },
    )
    _PLATFORM.execute(conn, {**key, "b_platform": change.platform})
