"""PostgreSQL for the targets that store in it: a fresh database per target, and its CPU.

``--database`` names a PostgreSQL server (an admin URL). Each target that stores there (an mqchat
node with ``store.url``, ejabberd with ``mod_mam``) gets a new empty database, dropped after the
run, so that the two start alike and a run never measures a previous run's tables. The CPU of
that database's backend processes is measured with the target's own, because on PostgreSQL the
database is where much of a chat message's cost goes.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import psutil  # type: ignore[import-untyped]

from benchmarks.procstat import CpuWindow

__all__ = ["DatabaseWatch", "fresh_database", "plain_url"]


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


class DatabaseWatch:
    """The backend processes of one PostgreSQL database on this machine, together (by their
    process titles, ``postgres: <user> <database> <client> ...``)."""

    def __init__(self, database: str) -> None:
        self.database = database

    def _backends(self) -> Iterator[psutil.Process]:
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = proc.info.get("cmdline") or []
            title = cmdline[0] if len(cmdline) == 1 else " ".join(cmdline)
            if title.startswith("postgres: ") and f" {self.database} " in title:
                yield proc

    def cpu(self) -> CpuWindow:
        used = 0.0
        for proc in self._backends():
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                used += times.user + times.system
        return CpuWindow(time.monotonic(), used)
