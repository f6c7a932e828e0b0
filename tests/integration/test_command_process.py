"""A single node with its commands in a child process (``workers.commands_process``): the same chat,
errors and notifications as with the commands on a thread of the node, a child that dies is replaced
without losing a command, and a stop waits for every command the broker acknowledged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from broker.node import NodeError
from client_sdk import Client, CommandRejected
from config.settings import Settings
from tests.harness import RunningNode, connect, node_settings, unique, wait_until
from tests.integration.test_chat_sdk import (  # noqa: F401 - run again here, on the child
    next_message,
    test_alice_and_bob_chat_both_ways_with_sent_delivered_read,
    test_offline_bob_gets_missed_messages_in_order_once_and_alice_gets_receipts_later,
)
from tests.plain import PlainClient
from workers.errors import RunnerError
from workers.routing import NodeItem
from workers.runners import commands_in_child, shares_store
from workers.runners.child import ChildRunner
from workers.stores import open_store


@pytest.fixture
def child_node(tmp_path: Path) -> Iterator[RunningNode]:
    running = RunningNode(node_settings(tmp_path, **{"workers.commands_process": True})).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def node(child_node: RunningNode) -> RunningNode:
    """The chat tests imported below run here against a node with its commands in a child."""
    return child_node


def _unknown_user_errors() -> float:
    return REGISTRY.get_sample_value("mqchat_command_errors_total", {"code": "unknown_user"}) or 0.0


def _restarts(reason: str) -> float:
    sample = REGISTRY.get_sample_value("mqchat_commands_process_restarts_total", {"reason": reason})
    return sample or 0.0


def _commands(node: RunningNode) -> ChildRunner:
    commands = node.node.runner
    assert isinstance(commands, ChildRunner)
    return commands


def test_commands_run_in_a_child_process(child_node: RunningNode) -> None:
    commands = _commands(child_node)
    assert commands.pid is not None and commands.pid != os.getpid()
    # the event loop talks to it itself: no ingest or reader thread in between
    names = {thread.name for thread in threading.enumerate()}
    assert not names & {"mqchat-ingest", "mqchat-commands-reader"}


def test_a_refused_command_is_answered_and_the_others_go_on(child_node: RunningNode) -> None:
    alice_id, alice_token = child_node.add_user("alice")
    bob_id, bob_token = child_node.add_user("bob")
    alice = PlainClient(child_node.port, alice_id, alice_token)
    bob = PlainClient(child_node.port, bob_id, bob_token)
    try:
        alice.inbox()
        bob.inbox()
        errors_before = _unknown_user_errors()
        alice.send(unique("nobody"), "hello?", cid="to-nobody")
        alice.send(bob_id, "still here", cid="to-bob")
        assert alice.expect_type("error", ref="to-nobody")["code"] == "unknown_user"
        assert alice.expect_type("sent", ref="to-bob")["message"]["text"] == "still here"
        assert bob.expect_type("message")["message"]["text"] == "still here"
        assert _unknown_user_errors() == errors_before + 1  # counted in the child, shown by the node
    finally:
        alice.close()
        bob.close()


def test_a_message_for_an_offline_user_reaches_the_notifier_of_the_node(child_node: RunningNode) -> None:
    alice_id, _ = child_node.add_user("alice")
    bob_id, _ = child_node.add_user("bob")  # never connects
    with connect(child_node, alice_id) as alice:
        out = alice.send(bob_id, "are you there?")
        out.wait("sent", timeout=10)
    store = child_node.node.store
    assert store is not None
    # noted by the node, which knows who is online, once the child says the batch is done (the
    # sender's "sent" may come first)
    pending: list[str] = []
    assert wait_until(lambda: pending.extend(store.take_pending(bob_id)) or pending)
    assert pending == [out.message_id]


def test_a_child_that_dies_is_replaced_and_no_command_is_lost(child_node: RunningNode) -> None:
    commands = _commands(child_node)
    alice_id, _ = child_node.add_user("alice")
    bob_id, _ = child_node.add_user("bob")
    with connect(child_node, alice_id) as alice, connect(child_node, bob_id) as bob:
        alice.send(bob_id, "before").wait("sent", timeout=10)
        assert next_message(bob).text == "before"
        first = commands.pid
        assert first is not None
        died = _restarts("died")
        os.kill(first, signal.SIGKILL)
        after = alice.send(bob_id, "after")
        after.wait("sent", timeout=30)
        assert next_message(bob, timeout=30).text == "after"
        assert commands.restarts == 1
        assert _restarts("died") == died + 1  # for the operator, on /metrics
        assert commands.pid not in (None, first)


@contextlib.contextmanager
def _chatting(settings: Settings) -> Iterator[tuple[ChildRunner, Client, Client, str]]:
    """A node with its commands in a child, alice and bob connected, one message already through:
    (the commands process, alice, bob, bob's id)."""
    running = RunningNode(settings).start()
    try:
        alice_id, _ = running.add_user("alice")
        bob_id, _ = running.add_user("bob")
        with connect(running, alice_id) as alice, connect(running, bob_id) as bob:
            alice.send(bob_id, "before").wait("sent", timeout=10)
            assert next_message(bob).text == "before"
            yield _commands(running), alice, bob, bob_id
    finally:
        running.close()


def test_a_hung_child_is_killed_and_replaced_and_no_command_is_lost(tmp_path: Path) -> None:
    settings = node_settings(tmp_path, **{"workers.commands_process": True, "workers.commands_stall": 1.0})
    with _chatting(settings) as (commands, alice, bob, bob_id):
        time.sleep(2.0)  # idle for twice the stall: a child with nothing to do is not hung
        assert commands.hung == 0
        first = commands.pid
        assert first is not None
        hung, died = _restarts("hung"), _restarts("died")
        os.kill(first, signal.SIGSTOP)  # alive, and answering nothing
        after = alice.send(bob_id, "after")
        after.wait("sent", timeout=30)
        assert next_message(bob, timeout=30).text == "after"
        assert (commands.hung, commands.restarts) == (1, 1)
        assert (_restarts("hung"), _restarts("died")) == (hung + 1, died)
        assert commands.pid not in (None, first)


@pytest.fixture
def own_postgres(postgres_url: str) -> Iterator[tuple[str, Engine, str]]:
    """A database of this test's own (URL, an admin engine, its name), dropped afterwards."""
    name = f"mqchat_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(False), admin, name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_a_child_waiting_for_its_store_to_come_back_is_not_taken_as_hung(
    tmp_path: Path, own_postgres: tuple[str, Engine, str]
) -> None:
    url, admin, name = own_postgres
    settings = node_settings(
        tmp_path,
        **{"store.url": url, "workers.commands_process": True, "workers.commands_stall": 1.0},
    )
    with _chatting(settings) as (commands, alice, bob, bob_id):
        with admin.connect() as conn:  # the database goes away for a while
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
        try:
            during = alice.send(bob_id, "during")
            # retries wait 0.2, 0.4, 0.8, 1.6, 3.2 s...: past the 1 s stall, but announced
            time.sleep(5.0)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        during.wait("sent", timeout=30)
        assert next_message(bob, timeout=30).text == "during"
        assert (commands.hung, commands.restarts) == (0, 0)


_HANG_ON_POISON = (
    "CREATE FUNCTION hang_on_poison() RETURNS trigger AS $$ BEGIN"
    " IF NEW.body LIKE '%poison%' THEN PERFORM pg_sleep(600); END IF; RETURN NEW;"
    " END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER hang BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION hang_on_poison()",
)


@pytest.mark.postgres
def test_a_command_that_hangs_every_child_is_refused_and_the_others_go_on(
    tmp_path: Path, own_postgres: tuple[str, Engine, str]
) -> None:
    url, admin, name = own_postgres
    with admin.connect() as conn:  # a killed child's statement ends with it, and frees its locks
        conn.execute(text(f'ALTER DATABASE "{name}" SET client_connection_check_interval = 100'))
    settings = node_settings(
        tmp_path,
        **{"store.url": url, "workers.commands_process": True, "workers.commands_stall": 1.0},
    )
    with _chatting(settings) as (commands, alice, bob, bob_id):
        database = create_engine(url)
        with database.begin() as conn:  # from now on, storing this text never ends
            for statement in _HANG_ON_POISON:
                conn.execute(text(statement))
        database.dispose()
        poison = alice.send(bob_id, "poison")
        fine = alice.send(bob_id, "fine")
        with pytest.raises(CommandRejected) as refused:
            poison.wait("sent", timeout=60)
        assert refused.value.code == "internal"
        fine.wait("sent", timeout=60)
        assert next_message(bob, timeout=30).text == "fine"
        # two children ended with both on their way, then two with the poison alone
        assert commands.hung >= 4


@pytest.mark.parametrize("linger_ms", [0.0, 50.0])  # with group commit, batches wait in ingest
def test_a_stop_stores_every_command_the_broker_acknowledged(tmp_path: Path, linger_ms: float) -> None:
    settings = node_settings(
        tmp_path, **{"workers.commands_process": True, "workers.ingest_linger_ms": linger_ms}
    )
    running = RunningNode(settings).start()
    try:
        alice_id, alice_token = running.add_user("alice")
        bob_id, _ = running.add_user("bob")
        alice = PlainClient(running.port, alice_id, alice_token)
        for i in range(200):
            alice.send(bob_id, f"m{i}", cid=f"c{i}")  # QoS 1: returns once acknowledged
        running.stop()
        alice.close()
    finally:
        running.close()
    with sqlite3.connect(tmp_path / "mqchat.db") as db:
        [(stored,)] = db.execute("SELECT count(*) FROM messages WHERE sender_id = ?", (alice_id,))
    assert stored == 200


def test_a_store_in_memory_cannot_be_shared_with_a_child(tmp_path: Path) -> None:
    assert not shares_store("sqlite://")
    assert not shares_store("sqlite:///:memory:")
    assert shares_store(f"sqlite:///{tmp_path / 'a.db'}")
    assert shares_store("postgresql://localhost/test")
    # unset, a node on such a store would run its commands in a thread; asked for, it can't
    assert commands_in_child(node_settings(tmp_path, **{"store.url": "sqlite://"})) is False
    with pytest.raises(RunnerError, match="commands_process"):
        commands_in_child(
            node_settings(tmp_path, **{"workers.commands_process": True, "store.url": "sqlite://"})
        )


def test_a_node_refuses_an_in_memory_sqlite_store_it_could_not_share_between_connections(
    tmp_path: Path,
) -> None:
    running = RunningNode(node_settings(tmp_path, **{"store.url": "sqlite://"}))
    try:
        with pytest.raises(NodeError, match="in-memory SQLite"):
            running.start()
    finally:
        running.close()


def test_by_default_a_node_with_a_database_file_runs_its_commands_in_a_child(tmp_path: Path) -> None:
    running = RunningNode(node_settings(tmp_path)).start()
    try:
        assert running.settings.workers.commands_process is None
        assert isinstance(running.node.runner, ChildRunner)
    finally:
        running.close()


def _users(settings: Settings, *names: str) -> list[str]:
    """The store of ``settings``, made, with these users in it (their ids)."""
    store = open_store(settings.store_url)
    store.create_schema()
    users = [unique(name) for name in names]
    for user in users:
        store.create_user(user, now=1.0)
    store.close()
    return users


def _send(sender: str, ref: str, to: str) -> dict[str, Any]:
    return {"user": sender, "cmd": {"v": 1, "type": "send", "id": ref, "to": to, "text": ref}}


def test_the_notifier_hears_only_of_messages_for_users_not_connected_here(tmp_path: Path) -> None:
    settings = node_settings(tmp_path)
    alice, bob, carol = _users(settings, "alice", "bob", "carol")
    noted: list[tuple[str, str]] = []
    commands = ChildRunner(
        settings,
        deliver=lambda node, items: None,
        waiting=lambda user, message_id, sender: noted.append((user, sender)),
        connected_here=lambda user: user == bob,
    )

    async def run() -> None:
        await commands.start()
        try:
            commands.submit("n1", [_send(alice, "to-bob", bob), _send(alice, "to-carol", carol)])
        finally:
            await commands.drain(60)  # waits for the batch
            await commands.close()  # then for the notifier

    asyncio.run(run())
    assert noted == [(carol, alice)]


def test_batches_waiting_for_a_busy_child_are_stored_together_in_order(tmp_path: Path) -> None:
    settings = node_settings(tmp_path)
    alice, bob = _users(settings, "alice", "bob")
    events: list[dict[str, Any]] = []

    def publish(node: str, items: list[NodeItem]) -> None:
        events.extend(json.loads(payload) for _, payload, _, _ in items)

    commands = ChildRunner(settings, deliver=publish)

    # a large batch keeps the child busy while three more wait in its socket
    def batch(first: int, n: int) -> list[dict[str, Any]]:
        return [_send(alice, f"c{i}", bob) for i in range(first, first + n)]

    async def run() -> None:
        await commands.start()
        try:
            commands.submit("n1", batch(0, 400))
            for first in (400, 401, 402):
                assert commands.room()
                commands.submit("n1", batch(first, 1))
            assert not commands.room()  # four on their way: ingest keeps the next ones
        finally:
            await commands.drain(60)
            await commands.close()

    asyncio.run(run())
    refs = [event["ref"] for event in events if event["type"] == "sent"]
    assert refs == [f"c{i}" for i in range(403)]
    assert commands.joined >= 1


def test_with_group_commit_a_chat_goes_through_the_child_and_back(tmp_path: Path) -> None:
    settings = node_settings(tmp_path, **{"workers.commands_process": True, "workers.ingest_linger_ms": 20.0})
    with _chatting(settings) as (commands, alice, bob, bob_id):
        sent = [alice.send(bob_id, f"m{i}") for i in range(5)]
        for message in sent:
            message.wait("delivered", timeout=10)  # stored, delivered, bob's receipt back
        assert [next_message(bob).text for _ in range(5)] == [f"m{i}" for i in range(5)]
        assert commands.pid is not None
