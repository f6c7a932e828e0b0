"""The planner's statistics of the store's tables on PostgreSQL, kept current by the store itself.

PostgreSQL plans from the statistics that ``ANALYZE`` gathers, and autovacuum runs it as tables
grow. A fresh database before autovacuum first runs, or one where it is off, has none: the planner
then takes each value of a column for a fixed share of its table, and the chat path's statements that name
a hundred messages by a column that is not unique on its own (``receipts.message_id``) were
planned as scans of the whole table, cost growing with every message. Each connection also keeps
the generic plans of its prepared statements, made when the tables were small, until the
statistics of a table change.

So the store analyzes a table when it has grown by a factor since it was last analyzed (or is
not tiny and never was): a handful of ``ANALYZE`` runs over a table's life (one per doubling), each
reading a bounded sample of rows, and a change of statistics that drops the cached plans of every
connection, as autovacuum's would. Where autovacuum runs, it gets there
first and nothing is due. The statements' shapes are chosen to use their indexes without
statistics where the planner allows (see receipts); this covers the rest.

Every process that writes batches looks, at most once a ``every`` seconds, on a thread of its own
(no batch should wait for an ``ANALYZE``). One process at a time
analyzes: the look and the ``ANALYZE`` run under a PostgreSQL advisory lock (a lease the database
itself gives back if the process dies), and the others find nothing due once it is done.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import Engine

__all__ = ["StatisticsKeeper"]

log = logging.getLogger(__name__)

GROWTH: Final = 2.0
"""A table is analyzed again when its file is this many times the size it had at its last ANALYZE."""
LEAST_PAGES: Final = 8
"""Smaller tables (in pages): never analyzed (a scan of so small a table costs nothing)."""
_LOCK_KEY: Final = 0x6D71_6368_6174_5354  # "mqchat ST": one key for the whole database
# The size of the table's file, not the activity counters of pg_stat_user_tables: those start at
# zero in a database restored or copied from a template, and after a crash, and a table that was
# never analyzed would then never be. ``relpages`` is the size the last ANALYZE saw; ``reltuples``
# is -1 for a table never analyzed.
_DUE = text(
    "SELECT relname FROM ("
    " SELECT c.relname, c.relpages, c.reltuples,"
    " pg_relation_size(c.oid) / current_setting('block_size')::int AS pages"
    " FROM pg_class c WHERE c.relkind = 'r'"
    " AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())) t"
    " WHERE pages >= :least AND (reltuples < 0 OR pages >= :growth * relpages)"
    " ORDER BY relname"
)


class StatisticsKeeper:
    """Analyzes the tables of the store's schema that are due (see the module's text)."""

    def __init__(self, engine: Engine, *, every: float = 1.0) -> None:
        self._engine = engine
        self._every = every
        self._next = 0.0
        self._thread: threading.Thread | None = None
        self._closed = False

    def tick(self) -> None:
        """After a write: look on a thread if the last look was ``every`` seconds ago (cheap)."""
        now = time.monotonic()
        if now < self._next or self._closed:
            return
        self._next = now + self._every
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._refresh_logged, name="mqchat-statistics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10.0)

    def _refresh_logged(self) -> None:
        try:
            analyzed = self.refresh()
        except Exception:  # the database is away: the next look tries again
            log.warning("could not refresh the planner's statistics", exc_info=True)
            return
        if analyzed:
            log.info("analyzed %s", ", ".join(analyzed))

    def refresh(self) -> list[str]:
        """Analyze the tables that are due, unless another process is at it; the ones analyzed."""
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": _LOCK_KEY}):
                return []
            try:
                due = list(conn.scalars(_DUE, {"least": LEAST_PAGES, "growth": GROWTH}))
                for table in due:
                    conn.exec_driver_sql(f'ANALYZE "{table}"')
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
        return due
