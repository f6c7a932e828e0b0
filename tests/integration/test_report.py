"""Reports against a real node: a user reports another with messages they can see (plain MQTT and
the SDK); operators read them in the admin API (paged, as its OpenAPI document says) and with
``mqchat reports list``; a message the reporter cannot see is ``not_found`` and nothing is
stored; "block and report" blocks too; a resent report is stored once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from client_sdk import Blocking, CommandRejected
from tests.harness import RunningNode, connect
from tests.integration.test_admin_api import Admin, admin_node
from tests.plain import PlainClient


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[Admin]:
    node = admin_node(tmp_path)
    yield Admin(node)
    node.close()


def plain(node: RunningNode, user: str) -> PlainClient:
    client = PlainClient(node.port, user, node.tokens[user])
    client.inbox()
    return client


def test_a_report_reaches_the_admin_api_with_the_messages_as_the_reporter_saw_them(admin: Admin) -> None:
    node = admin.node
    alice, bob, carol = (node.add_user(name)[0] for name in ("alice", "bob", "carol"))
    alice_mqtt, bob_mqtt = plain(node, alice), plain(node, bob)
    try:
        bob_mqtt.send(alice, "buy my crypto", cid="s1")
        spam = alice_mqtt.expect_type("message")["message"]
        bob_mqtt.send(carol, "not for alice", cid="s2")
        hidden_from_alice = bob_mqtt.expect_type("sent", ref="s2")["message"]["id"]

        # A message alice cannot see: not_found, and nothing is stored
        alice_mqtt.publish(
            {"v": 1, "type": "report", "id": "r0", "user": bob, "messages": [hidden_from_alice]}
        )
        assert alice_mqtt.expect_type("error", ref="r0")["code"] == "not_found"
        assert admin("GET", "/reports")[1] == {"reports": [], "next": None}

        # When alice reports bob with the message she got, twice with the same id
        report = {
            "v": 1,
            "type": "report",
            "id": "r1",
            "user": bob,
            "messages": [spam["id"]],
            "reason": "spam",
        }
        alice_mqtt.publish(report)
        alice_mqtt.expect_type("ok", ref="r1")
        alice_mqtt.publish(report)
        alice_mqtt.expect_type("ok", ref="r1")

        # Then operators see it once, with a copy of the message as alice saw it
        status, page = admin("GET", "/reports")
        assert status == 200 and page["next"] is None
        (stored,) = page["reports"]
        assert (stored["reporter"], stored["user"], stored["reason"]) == (alice, bob, "spam")
        assert stored["messages"] == [spam]
    finally:
        alice_mqtt.close()
        bob_mqtt.close()


def test_reports_are_paged_and_listed_by_the_cli(admin: Admin, tmp_path: Path) -> None:
    node = admin.node
    alice, bob = node.add_user("alice")[0], node.add_user("bob")[0]
    with connect(node, alice) as client:
        for reason in ("one", "two", "three"):
            client.report(bob, reason=reason)

    first = admin("GET", "/reports?limit=2")[1]
    assert [r["reason"] for r in first["reports"]] == ["one", "two"] and first["next"] is not None
    rest = admin("GET", f"/reports?limit=2&after={first['next']}")[1]
    assert [r["reason"] for r in rest["reports"]] == ["three"] and rest["next"] is None
    paths = admin.document["paths"]
    assert "get" in paths["/admin/v1/reports"]

    node.stop()  # the CLI opens the same store (SQLite in the data dir)
    listed = subprocess.run(
        [sys.executable, "-m", "broker.cli", "--data-dir", str(tmp_path), "reports", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["reporter"], r["user"], r["reason"]) for r in lines] == [
        (alice, bob, "one"),
        (alice, bob, "two"),
        (alice, bob, "three"),
    ]


def test_block_and_report_in_one(node: RunningNode) -> None:
    alice, bob = node.add_user("alice")[0], node.add_user("bob")[0]
    with connect(node, alice) as phone, connect(node, alice, device="laptop") as laptop:
        with pytest.raises(CommandRejected) as refused:
            phone.report(alice, reason="me")
        assert refused.value.code == "bad_request"

        phone.report(bob, reason="harassment", block=True)

        assert phone.blocked() == [bob]
        event = next(e for e in laptop.events(timeout=10) if isinstance(e, Blocking))
        assert (event.user, event.blocked) == (bob, True)
        store = node.node.store
        assert store is not None
        (stored,) = store.reports_page(after=None, limit=10)
        assert (stored.reporter, stored.user, stored.reason, stored.messages) == (
            alice,
            bob,
            "harassment",
            [],
        )
