"""The store on SQLAlchemy: SQLite for a single node, PostgreSQL (the ``postgres`` extra) in production.

``base`` holds the engine, transactions, batches and the inbox log; ``driver`` runs the hot
statements on the DBAPI cursor; ``schema`` the tables; ``sqlite_checkpoint`` keeps a SQLite log
short; the other modules are the parts of :class:`SqlStore`, one per concern.
"""

from __future__ import annotations

from workers.stores.sql.store import SqlStore

__all__ = ["SqlStore"]
