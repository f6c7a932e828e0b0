"""A single node with its commands on a thread of its own (``workers.commands_process = false``,
``workers/runners/inline.py``): the same chat, errors and notifications as with the commands process,
and a stop stores every command the broker acknowledged."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import RunningNode, connect, node_settings, wait_until
from tests.integration.test_chat_sdk import (  # noqa: F401 - run again here, on the thread
    test_alice_and_bob_chat_both_ways_with_sent_delivered_read,
    test_offline_bob_gets_missed_messages_in_order_once_and_alice_gets_receipts_later,
)
from tests.integration.test_plain_mqtt import (  # noqa: F401 - run again here, on the thread
    test_a_resend_with_the_same_id_is_stored_once,
    test_sync_returns_missed_events_in_pages,
)
from tests.plain import PlainClient
from workers.runners.inline import InlineRunner

INLINE = {"workers.commands_process": False}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningNode]:
    """The tests imported above run here against a node with its commands on a thread."""
    running = RunningNode(node_settings(tmp_path, **INLINE)).start()
    try:
        yield running
    finally:
        running.close()


def test_the_commands_run_on_a_thread_of_the_node(node: RunningNode) -> None:
    assert isinstance(node.node.runner, InlineRunner)
    assert "mqchat-commands" in {thread.name for thread in threading.enumerate()}


def test_a_refused_command_is_answered_and_the_others_go_on(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token)
    try:
        alice.inbox()
        alice.send("nobody-at-all", "hello?", cid="to-nobody")
        alice.send(bob_id, "still here", cid="to-bob")
        assert alice.expect_type("error", ref="to-nobody")["code"] == "unknown_user"
        assert alice.expect_type("sent", ref="to-bob")["message"]["text"] == "still here"
    finally:
        alice.close()


def test_a_message_for_an_offline_user_reaches_the_notifier(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")  # never connects
    with connect(node, alice_id) as alice:
        out = alice.send(bob_id, "are you there?")
        out.wait("sent", timeout=10)
    store = node.node.store
    assert store is not None
    pending: list[str] = []
    assert wait_until(lambda: pending.extend(store.take_pending(bob_id)) or pending)
    assert pending == [out.message_id]


def test_a_stop_stores_every_command_the_broker_acknowledged(tmp_path: Path) -> None:
    running = RunningNode(node_settings(tmp_path, **INLINE)).start()
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
