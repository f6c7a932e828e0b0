"""The shared core of the MongoDB store: client, transactions, error conversion and the inbox log.

Every change that touches more than one document runs in a multi-document transaction (snapshot
reads, majority writes, run again after a write conflict), so a counter bumped by ``$inc`` is
rolled back with the rest when a transaction aborts and cursors and seqs stay gapless.
Transactions need a replica set (a single-node one is enough) or mongos; ``create_schema`` checks
that at start.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pymongo import MongoClient, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    CollectionInvalid,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    WTimeoutError,
)
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from workers.errors import StoreError, StoreUnavailable, UnknownUser
from workers.stores.mongo.schema import COLLECTIONS, INDEXES
from workers.stores.records import InboxEntry, InboxItem, StoredMessage
from workers.stores.rules.inbox import events_per_user, number_entries

__all__ = ["Doc", "MongoBase", "message_from_doc"]

log = logging.getLogger(__name__)

Doc = dict[str, Any]
T = TypeVar("T")

DEFAULT_DATABASE: Final = "mqchat"
_DEFAULT_TIMEOUT_MS: Final = 5000
"""How long an operation waits for a server before StoreUnavailable, unless the URL says otherwise."""
_CONFLICT_RETRY_SECONDS: Final = 10.0
"""How long a transaction is run again while it keeps conflicting with concurrent ones."""
_TRANSIENT_LABELS: Final = ("TransientTransactionError", "UnknownTransactionCommitResult")


def _client_options(url: str) -> dict[str, Any]:
    given = {key.lower() for key, _ in parse_qsl(urlsplit(url).query)}
    options: dict[str, Any] = {"connect": False}  # connect on first use: safe across a worker's fork
    for name in ("serverSelectionTimeoutMS", "connectTimeoutMS"):
        if name.lower() not in given:
            options[name] = _DEFAULT_TIMEOUT_MS
    return options


class MongoBase:
    """One ``MongoClient`` (thread-safe, pooled) per store; each call takes its own session."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
        self._client: MongoClient[Doc] = MongoClient(url, **_client_options(url))
        self._db: Database[Doc] = self._client.get_default_database(DEFAULT_DATABASE)
        self._users = self._db["users"]
        self._credentials = self._db["credentials"]
        self._counters = self._db["counters"]
        self._conversations = self._db["conversations"]
        self._messages = self._db["messages"]
        self._receipts = self._db["receipts"]
        self._inbox = self._db["inbox"]
        self._groups = self._db["groups"]
        self._push_tokens = self._db["push_tokens"]
        self._phones = self._db["phones"]
        self._notify = self._db["notify_state"]
        self._sms = self._db["sms_outbox"]
        self._profiles = self._db["profiles"]
        self._devices = self._db["devices"]
        self._reactions = self._db["reactions"]
        self._blocks = self._db["blocks"]
        self._block_commands = self._db["block_commands"]
        self._reports = self._db["reports"]
        self._chat_members = self._db["chat_members"]  # see chat_rows

    def __repr__(self) -> str:
        return f"MongoStore({self._shown!r})"

    @property
    def database(self) -> str:
        return self._db.name

    def create_schema(self) -> None:
        """Create the collections and their indexes (idempotent: safe on every start of every node)."""
        with self._guard():
            hello = self._db.command("hello")
            if not hello.get("setName") and hello.get("msg") != "isdbgrid":
                raise StoreError(
                    "the MongoDB store writes with multi-document transactions: run MongoDB as a "
                    "replica set (a single-node one is enough) or through mongos, not standalone"
                )
            existing = set(self._db.list_collection_names())
            for name in COLLECTIONS:
                if name not in existing:
                    with suppress(CollectionInvalid):  # another node created it just now
                        self._db.create_collection(name)
            for name, indexes in INDEXES.items():
                self._db[name].create_indexes(indexes)

    def close(self) -> None:
        self._client.close()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Each call stays a transaction of its own: MongoDB has no savepoints, so one transaction
        for the batch could not keep a refused command from undoing the others."""
        yield

    # ------------------------------------------------------------------ errors and transactions
    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Convert pymongo's failures of the server (not of the request) into StoreUnavailable."""
        try:
            yield
        except ConnectionFailure as exc:
            raise StoreUnavailable(f"MongoDB unavailable: {_short(exc)}") from exc
        except WTimeoutError as exc:
            raise StoreUnavailable(f"MongoDB write concern timed out: {_short(exc)}") from exc
        except OperationFailure as exc:
            if any(exc.has_error_label(label) for label in _TRANSIENT_LABELS):
                # the conflict or the failover outlasted the retries
                raise StoreUnavailable(f"MongoDB transaction did not commit: {_short(exc)}") from exc
            raise

    def _tx(self, work: Callable[[ClientSession], T]) -> T:
        """Run ``work`` in a transaction, from the start again after a write conflict.

        Not ``with_transaction``: that also retries a lost server for two minutes, where a worker
        should rather fail fast with StoreUnavailable and have its job retried later (everything the
        store writes is idempotent or answered from what was stored).
        """
        deadline = time.monotonic() + _CONFLICT_RETRY_SECONDS
        with self._guard(), self._client.start_session() as session:
            for attempt in itertools.count():
                if attempt:
                    time.sleep(random.uniform(0, min(0.005 * 1.5**attempt, 0.5)))
                session.start_transaction(
                    read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
                )
                try:
                    result = work(session)
                except BaseException as exc:
                    if session.in_transaction and not isinstance(exc, ConnectionFailure):
                        session.abort_transaction()
                    if _conflict(exc) and time.monotonic() < deadline:
                        continue
                    raise
                if self._commit(session, deadline):
                    return result
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _commit(session: ClientSession, deadline: float) -> bool:
        """Commit; False when the transaction must be run again (a conflict at commit)."""
        while True:
            try:
                session.commit_transaction()
            except OperationFailure as exc:  # a ConnectionFailure is no OperationFailure: it propagates
                late = time.monotonic() >= deadline
                if exc.has_error_label("UnknownTransactionCommitResult") and not late:
                    continue  # committing again is safe: the server answers with the first outcome
                if exc.has_error_label("TransientTransactionError") and not late:
                    return False
                raise
            return True

    # ------------------------------------------------------------------ counters and the inbox log
    @staticmethod
    def _bump(
        collection: Collection[Doc], key: str, field: str, session: ClientSession, *, upsert: bool
    ) -> int | None:
        """Add one to ``field`` of document ``key`` and return the new value (None: no such document)."""
        doc = collection.find_one_and_update(
            {"_id": key},
            {"$inc": {field: 1}},
            projection={field: True},
            upsert=upsert,
            return_document=ReturnDocument.AFTER,
            session=session,
        )
        return None if doc is None else int(doc[field])

    def _next_id(self, session: ClientSession, name: str) -> int:
        value = self._bump(self._counters, name, "n", session, upsert=True)
        assert value is not None
        return value

    def _append_many(
        self, session: ClientSession, items: Sequence[InboxItem], now: float
    ) -> list[InboxEntry]:
        """Append ``(user, kind, message_id, body)`` events to inbox logs, in order: one cursor bump
        per user and one ``insert_many``. UnknownUser if a user does not exist."""
        counts = events_per_user(items)
        last: dict[str, int] = {}
        for user in sorted(counts):
            doc = self._users.find_one_and_update(
                {"_id": user},
                {"$inc": {"inbox_seq": counts[user]}},
                projection={"inbox_seq": True},
                return_document=ReturnDocument.AFTER,
                session=session,
            )
            if doc is None:
                raise UnknownUser(user)
            last[user] = int(doc["inbox_seq"])
        entries = number_entries(items, last)
        docs: list[Doc] = [
            {
                "user": entry.user,
                "cursor": entry.cursor,
                "kind": kind,
                "message_id": message_id,
                "payload": entry.payload,
                "created_at": float(now),
            }
            for entry, (_user, kind, message_id, _body) in zip(entries, items, strict=True)
        ]
        self._inbox.insert_many(docs, session=session)
        return entries


def _conflict(exc: BaseException) -> bool:
    """A transaction lost to a concurrent one (not a lost server): running it again will do."""
    return (
        isinstance(exc, PyMongoError)
        and not isinstance(exc, ConnectionFailure)
        and exc.has_error_label("TransientTransactionError")
    )


def _short(exc: Exception) -> str:
    """The first part of a pymongo message (a server selection error appends the whole topology)."""
    text = str(exc)
    return text.split(", Timeout:", 1)[0][:300]


def message_from_doc(doc: Doc) -> StoredMessage:
    return StoredMessage(
        id=doc["_id"],
        conversation=doc["conversation"],
        seq=int(doc["seq"]),
        sender=doc["sender"],
        recipient=doc["recipient"],
        text=doc["text"],
        ts=float(doc["created_at"]),
        media=doc.get("media"),
        reply=doc.get("reply"),
        forwarded=bool(doc.get("forwarded")),
        expires_at=doc.get("expires_at"),
    )
