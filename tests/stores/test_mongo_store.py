"""What is the MongoDB store's own risk: the server, its indexes and its transactions under concurrency.

The store contract itself runs on MongoDB through the parametrised ``store`` fixture (the other files).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pymongo import MongoClient

from client_sdk.contract import ErrorCode, Status
from tests.harness import need
from tests.stores.conftest import MongoServer, start_mongo_server, users
from workers.errors import CommandError, StoreError, StoreUnavailable
from workers.stores import open_store
from workers.stores.mongo import MongoStore

T = TypeVar("T")


@pytest.fixture
def mongo_store(mongo_url: str) -> Iterator[MongoStore]:
    store = MongoStore(mongo_url)
    store.create_schema()
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[..., MongoServer]]:
    """Start a server of the test's own (one that the test may stop), with extra flags."""
    started: list[MongoServer] = []

    def start(*extra: str) -> MongoServer:
        server = start_mongo_server(tmp_path / f"server{len(started)}", *extra)
        need(server is not None, "the MongoDB-compatible test server (secantusdb) did not start")
        assert server is not None
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def together(*actions: Callable[[], T]) -> list[T]:
    """Run the actions in threads released at the same moment; their results in order."""
    barrier = threading.Barrier(len(actions))
    results: list[Any] = [None] * len(actions)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = actions[i]()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ----------------------------------------------------------------------------- choosing and opening
def test_open_store_picks_mongo_by_scheme_without_connecting() -> None:
    port = free_port()  # nothing listens there: opening must not need the server

    plain = open_store(f"mongodb://app:secret@127.0.0.1:{port}/chat")
    srv = open_store("mongodb+srv://app:secret@cluster.example.invalid/chat")

    try:
        assert isinstance(plain, MongoStore) and isinstance(srv, MongoStore)
        assert plain.database == "chat"
        assert "secret" not in repr(plain) and "secret" not in repr(srv)
    finally:
        plain.close()
        srv.close()


def test_create_schema_is_idempotent_and_keeps_the_data(mongo_store: MongoStore, mongo_url: str) -> None:
    (alice,) = users(mongo_store, "alice")
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    with client:
        db = client.get_default_database()
        before = {name: db[name].index_information() for name in db.list_collection_names()}

        mongo_store.create_schema()
        other = MongoStore(mongo_url)  # a second node starting on the same database
        other.create_schema()
        other.close()

        after = {name: db[name].index_information() for name in db.list_collection_names()}
    assert after == before
    assert before["messages"]["sender_command"]["unique"]
    assert before["inbox"]["user_cursor"]["unique"]
    assert mongo_store.user_exists(alice)


# ----------------------------------------------------------------------------- the server
def test_an_unreachable_server_is_store_unavailable() -> None:
    store = MongoStore(f"mongodb://127.0.0.1:{free_port()}/chat?serverSelectionTimeoutMS=200")
    try:
        with pytest.raises(StoreUnavailable):
            store.create_schema()
        with pytest.raises(StoreUnavailable):
            store.accept_message(sender="alice", command_id="c", recipient="bob", text="hi", now=1.0)
    finally:
        store.close()


def test_a_server_that_goes_away_is_store_unavailable(own_server: Callable[..., MongoServer]) -> None:
    server = own_server()
    store = MongoStore(server.url("chat", serverSelectionTimeoutMS=300))
    try:
        store.create_schema()
        alice, bob = users(store, "alice", "bob")
        store.accept_message(sender=alice, command_id="c1", recipient=bob, text="hi", now=1.0)

        server.stop()

        with pytest.raises(StoreUnavailable):
            store.accept_message(sender=alice, command_id="c2", recipient=bob, text="still there?", now=2.0)
    finally:
        store.close()


def test_a_standalone_server_is_refused_at_start(own_server: Callable[..., MongoServer]) -> None:
    server = own_server("--standalone")  # no replica set: a real mongod would refuse transactions
    store = MongoStore(server.url("chat"))
    try:
        with pytest.raises(StoreError, match="replica set"):
            store.create_schema()
    finally:
        store.close()


# ----------------------------------------------------------------------------- transactions racing
def test_concurrent_resends_store_the_message_once(mongo_store: MongoStore) -> None:
    alice, bob = users(mongo_store, "alice", "bob")

    results = together(
        *[
            lambda: mongo_store.accept_message(
                sender=alice, command_id="same", recipient=bob, text="once", now=1.0
            )
            for _ in range(4)
        ]
    )

    assert len({r.message.id for r in results}) == 1
    assert [r.duplicate for r in results].count(False) == 1
    assert all(r.sent == results[0].sent for r in results)
    assert len(mongo_store.sync(user=bob, after=0, limit=10)[0]) == 1


def test_the_first_messages_of_a_conversation_racing_get_seqs_1_and_2(mongo_store: MongoStore) -> None:
    send = partial(mongo_store.accept_message, text="x", now=1.0)
    for _ in range(5):
        alice, bob = users(mongo_store, "alice", "bob")

        results = together(
            partial(send, sender=alice, command_id="a", recipient=bob),
            partial(send, sender=bob, command_id="b", recipient=alice),
        )

        assert sorted(r.message.seq for r in results) == [1, 2]


def test_members_reading_at_once_complete_the_group_exactly_once(mongo_store: MongoStore) -> None:
    people = users(mongo_store, *[f"u{i}" for i in range(4)])
    group = mongo_store.create_group(
        creator=people[0], name="g", members=people[1:], now=1.0, ref="c", max_members=10
    ).group
    for round_ in range(3):
        message = mongo_store.accept_message(
            sender=people[0], command_id=f"m{round_}", recipient=group.id, text="t", now=2.0
        ).message

        read = partial(mongo_store.apply_receipts, status=Status.READ, message_ids=[message.id], now=3.0)
        results = together(*[partial(read, user=reader) for reader in people[1:]])

        completed = [
            e.payload["status"]
            for r in results
            for e in r.entries
            if e.payload["type"] == "receipt" and e.payload["all"]
        ]
        assert completed == ["read"]


def test_two_devices_acknowledging_at_once_tell_the_sender_once(mongo_store: MongoStore) -> None:
    alice, bob = users(mongo_store, "alice", "bob")
    message = mongo_store.accept_message(
        sender=alice, command_id="m", recipient=bob, text="t", now=1.0
    ).message

    results = together(
        *[
            lambda: mongo_store.apply_receipts(
                user=bob, status=Status.DELIVERED, message_ids=[message.id], now=2.0
            )
            for _ in range(3)
        ]
    )

    assert [e.payload["status"] for r in results for e in r.entries] == ["delivered"]


def test_a_message_sent_while_a_member_is_removed_reaches_whoever_the_group_had(
    mongo_store: MongoStore,
) -> None:
    people = users(mongo_store, *[f"u{i}" for i in range(3)])
    admin, member, leaving = people
    group = mongo_store.create_group(
        creator=admin, name="g", members=[member, leaving], now=1.0, ref="c", max_members=10
    ).group

    together(
        partial(
            mongo_store.accept_message, sender=member, command_id="m", recipient=group.id, text="t", now=2.0
        ),
        partial(mongo_store.remove_members, group=group.id, actor=admin, members=[leaving], now=2.0, ref="r"),
    )

    # either order is fine, but the leaving member's inbox agrees with it: the message before the removal
    events = [e.payload for e in mongo_store.sync(user=leaving, after=0, limit=10)[0]]
    kinds = [p["type"] if p["type"] == "message" else p["action"] for p in events]
    assert kinds in (["created", "removed"], ["created", "message", "removed"])
    with pytest.raises(CommandError) as excinfo:
        mongo_store.accept_message(sender=leaving, command_id="x", recipient=group.id, text="?", now=3.0)
    assert excinfo.value.code == ErrorCode.NOT_MEMBER
