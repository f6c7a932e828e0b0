"""PostgreSQL for the targets that store in it: a fresh database per target.

``--database`` names a PostgreSQL server (an admin URL). Each target that stores there (an mqchat
node with ``store.url``, ejabberd with ``mod_mam``) gets a new empty database, dropped after the
run, so that the two start alike and a run never measures a previous run's tables. The target
names its database (``Target.database``) so that the CPU of its backends is measured with the
target's own (``procstat.StoreWatch``): on PostgreSQL much of a chat message's cost is there.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

__all__ = ["fresh_database", "plain_url"]


def plain_url(url: str) -> str:
    """``postgresql://...`` without a SQLAlchemy driver suffix (psycopg and libpq read this)."""
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest


@contextlib.contextmanager
def fresh_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new empty database on ``admin_url``'s server (its URL, same credentials), dropped after."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = plain_url(admin_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
