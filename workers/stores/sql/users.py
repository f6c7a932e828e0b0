"""Users in the SQL store: accounts, their credentials, and when each was last seen."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    String,
    Subquery,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from workers.errors import UnknownUser, UserExists
from workers.stores.records import UserInfo
from workers.stores.rules.credentials import credentials_by_login
from workers.stores.sql.base import SqlBase
from workers.stores.sql.driver import Statement
from workers.stores.sql.schema import credentials, device_tokens, devices, users

__all__ = ["SqlUsers"]

# run for every JWT login and typing indicator (see base)
_USER = Statement(select(users.c.id).where(users.c.id == bindparam("b_user")))

# every login; a connect storm's logins a batch at a time (broker.throttle.CredentialChecks): the credentials
# of every user of the batch and their devices' tokens in one statement, instead of a transaction
# and two statements per login. A user-wide credential has no device; the batch's logins pick
# the device tokens that are theirs.
_USERS: BindParameter[str] = bindparam("b_users", expanding=True)
_CREDENTIALS_OF_MANY = Statement(
    union_all(
        select(credentials.c.user_id, null().label("device"), credentials.c.kind, credentials.c.secret_hash)
        .join(users, users.c.id == credentials.c.user_id)
        .where(credentials.c.user_id.in_(_USERS), users.c.disabled.is_(False)),
        select(
            device_tokens.c.user_id,
            device_tokens.c.device,
            literal_column("'token'", String),
            device_tokens.c.secret_hash,
        )
        .join(users, users.c.id == device_tokens.c.user_id)
        .where(device_tokens.c.user_id.in_(_USERS), users.c.disabled.is_(False)),
    )
)


class SqlUsers(SqlBase):
    def create_user(self, user: str, *, now: float) -> None:
        try:
            with self._tx() as conn:
                conn.execute(insert(users).values(id=user, created_at=now, inbox_seq=0, disabled=False))
        except IntegrityError:
            raise UserExists(user) from None

    def delete_user(self, user: str) -> None:
        with self._tx() as conn:
            conn.execute(delete(credentials).where(credentials.c.user_id == user))
            conn.execute(delete(device_tokens).where(device_tokens.c.user_id == user))
            conn.execute(delete(devices).where(devices.c.user_id == user))
            if conn.execute(delete(users).where(users.c.id == user)).rowcount == 0:
                raise UnknownUser(user)

    def user_exists(self, user: str) -> bool:
        with self._tx() as conn:
            return _USER.first(conn, {"b_user": user}) is not None

    def list_users(self) -> list[UserInfo]:
        counts = (
            select(credentials.c.user_id, func.count().label("n")).group_by(credentials.c.user_id).subquery()
        )
        query = (
            select(users.c.id, users.c.created_at, users.c.last_seen, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.user_id == users.c.id)
            .order_by(users.c.id)
        )
        with self._tx() as conn:
            return [UserInfo(row[0], row[1], row[2], int(row[3])) for row in conn.execute(query)]

    def users_page(self, *, after: str | None, limit: int) -> list[UserInfo]:
        page = select(users.c.id).order_by(users.c.id).limit(limit)
        if after is not None:
            page = page.where(users.c.id > after)
        return self._infos(page.subquery())

    def user_info(self, user: str) -> UserInfo | None:
        found = self._infos(select(users.c.id).where(users.c.id == user).subquery())
        return found[0] if found else None

    def _infos(self, ids: Subquery) -> list[UserInfo]:
        """The users whose ids ``ids`` selects, in id order, with their number of credentials."""
        count = (
            select(func.count()).where(credentials.c.user_id == users.c.id).correlate(users).scalar_subquery()
        )
        query = (
            select(users.c.id, users.c.created_at, users.c.last_seen, count)
            .join(ids, ids.c.id == users.c.id)
            .order_by(users.c.id)
        )
        with self._tx() as conn:
            return [UserInfo(row[0], row[1], row[2], int(row[3])) for row in conn.execute(query)]

    def add_credential(
        self, user: str, *, kind: str, secret_hash: str, now: float, device: str | None = None
    ) -> int:
        with self._tx() as conn:
            if conn.execute(select(users.c.id).where(users.c.id == user)).first() is None:
                raise UnknownUser(user)
            if device is not None:
                if kind != "token":
                    raise ValueError("only tokens can be bound to a device")
                result = conn.execute(
                    insert(device_tokens).values(
                        user_id=user, device=device, secret_hash=secret_hash, created_at=now
                    )
                )
                key = result.inserted_primary_key
                return int(key[0]) if key else 0
            result = conn.execute(
                insert(credentials).values(user_id=user, kind=kind, secret_hash=secret_hash, created_at=now)
            )
            key = result.inserted_primary_key
            return int(key[0]) if key else 0

    def remove_credentials(self, user: str) -> int:
        with self._tx() as conn:
            bound = conn.execute(delete(device_tokens).where(device_tokens.c.user_id == user)).rowcount
            return int(bound) + int(
                conn.execute(delete(credentials).where(credentials.c.user_id == user)).rowcount
            )

    def credential_hashes(self, user: str, device: str | None = None) -> list[tuple[str, str]]:
        return self.credential_hashes_many([(user, device)])[0]

    def credential_hashes_many(self, logins: Sequence[tuple[str, str | None]]) -> list[list[tuple[str, str]]]:
        if not logins:
            return []
        wanted = sorted({user for user, _ in logins})
        with self._tx() as conn:
            rows = _CREDENTIALS_OF_MANY.all(conn, {"b_users": wanted})
        return credentials_by_login(logins, rows)

    def set_last_seen(self, user: str, ts: float) -> None:
        with self._tx() as conn:
            conn.execute(update(users).where(users.c.id == user).values(last_seen=ts))

    def last_seen_all(self) -> dict[str, float]:
        with self._tx() as conn:
            rows = conn.execute(select(users.c.id, users.c.last_seen).where(users.c.last_seen.is_not(None)))
            return {row[0]: float(row[1]) for row in rows}
