"""The store on MongoDB through pymongo (the ``mongo`` extra), with the same contract as the SQL store.

Writes that span documents (a message with its receipts and inbox entries, a receipt with the
sender's entries, a group change with every member's entry) are one transaction each (see base).
``schema`` lists the collections and their indexes; the other modules are the parts of
:class:`MongoStore`, one per concern, with the same names as in ``workers.stores.sql``.
"""

from __future__ import annotations

from workers.stores.mongo.store import MongoStore

__all__ = ["MongoStore"]
