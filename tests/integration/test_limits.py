"""Hostile clients meet limits: rates, connections per user, brute-force logins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import RunningNode, connect, node_settings, wait_until
from tests.plain import PlainClient
from tests.raw_mqtt import login, subscribe_packet


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[RunningNode]:
    settings = node_settings(
        tmp_path,
        **{
            "limits.commands_per_second": 2.0,
            "limits.commands_burst": 5,
            "limits.max_connections_per_user": 2,
            "limits.login_failures_free": 2,
            "limits.login_max_delay": 1.0,
            "limits.address_failures_max": 6,
            "limits.address_lockout": 2.0,
        },
    )
    node = RunningNode(settings).start()
    yield node
    node.close()


def test_a_flooding_user_is_rate_limited_with_a_clear_error_and_others_carry_on(strict: RunningNode) -> None:
    alice_id, alice_token = strict.add_user("alice")
    bob_id, bob_token = strict.add_user("bob")
    alice, bob = PlainClient(strict.port, alice_id, alice_token), PlainClient(strict.port, bob_id, bob_token)
    alice.inbox()
    bob.inbox()

    for i in range(20):
        alice.send(bob_id, f"flood {i}", cid=f"f{i}")

    answers: list[Any] = []

    def all_answered() -> bool:
        answers.extend(
            p for _, p in alice.drain(0.05) if isinstance(p, dict) and str(p.get("ref", "")).startswith("f")
        )
        return len(answers) >= 20

    assert wait_until(all_answered, 10)
    limited = [p for p in answers if p.get("type") == "error" and p["code"] == "rate_limited"]
    sent = [p for p in answers if p.get("type") == "sent"]
    assert len(sent) >= 5 and len(limited) >= 10 and len(sent) + len(limited) == 20
    assert all(p["ref"].startswith("f") and p["message"] for p in limited)
    # bob is not limited by alice's flood
    bob.send(alice_id, "hi", cid="b1")
    bob.expect_type("sent", ref="b1")
    alice.close()
    bob.close()


def test_connections_per_user_are_limited(strict: RunningNode) -> None:
    bob_id, bob_token = strict.add_user("bob")
    phone = PlainClient(strict.port, bob_id, bob_token, device="phone")
    laptop = PlainClient(strict.port, bob_id, bob_token, device="laptop")

    with pytest.raises(ConnectionRefusedError, match="Server unavailable"):  # 3.1.1: try again later
        PlainClient(strict.port, bob_id, bob_token, device="tablet")
    again = PlainClient(
        strict.port, bob_id, bob_token, device="phone"
    )  # the same device reconnecting is fine
    phone.client.loop_stop()

    laptop.close()
    tablet = PlainClient(strict.port, bob_id, bob_token, device="tablet")
    assert tablet.inbox() == [1]
    for client in (again, tablet):
        client.close()


def test_an_address_guessing_passwords_is_locked_out_then_let_back(strict: RunningNode) -> None:
    bob_id, bob_token = strict.add_user("bob")

    for _ in range(6):
        with pytest.raises(ConnectionRefusedError, match="Bad user name or password"):
            PlainClient(strict.port, bob_id, "mqc_guess")

    # even the right token is refused from this address during the lockout, as "try again later"
    # (3.1.1's server unavailable), not as credentials that will never do...
    with pytest.raises(ConnectionRefusedError, match="Server unavailable"):
        PlainClient(strict.port, bob_id, bob_token)

    # ...and accepted once it is over
    def logs_in() -> bool:
        try:
            PlainClient(strict.port, bob_id, bob_token).close()
        except ConnectionRefusedError:
            return False
        return True

    assert wait_until(logs_in, 10, interval=0.5)


def test_an_sdk_client_refused_for_now_keeps_reconnecting_and_gets_what_it_missed(
    strict: RunningNode,
) -> None:
    # Given bob on the SDK, and alice on plain MQTT
    alice_id, alice_token = strict.add_user("alice")
    bob_id, _ = strict.add_user("bob")
    alice = PlainClient(strict.port, alice_id, alice_token)
    alice.inbox()
    with connect(strict, bob_id) as bob:
        # When their address is locked out (someone there guesses passwords), bob's connection
        # drops, and alice writes to him meanwhile
        for _ in range(6):
            with pytest.raises(ConnectionRefusedError):
                PlainClient(strict.port, "mallory", "mqc_guess")
        assert strict.node.broker is not None
        assert strict.call(strict.node.broker.disconnect(bob.client_id))
        alice.send(bob_id, "while you were away", cid="away")
        alice.expect_type("sent", ref="away")

        # Then the SDK takes the refusals as "try again later", not as revoked credentials: it
        # reconnects once the lockout is over and gets the message
        got = next(bob.messages(timeout=15), None)
        assert got is not None and got.text == "while you were away"
    alice.close()


def test_a_client_that_stops_reading_is_disconnected_not_buffered_forever(tmp_path: Path) -> None:

    node = RunningNode(node_settings(tmp_path, **{"limits.max_inflight_per_connection": 20})).start()
    try:
        alice_id, alice_token = node.add_user("alice")
        bob_id, bob_token = node.add_user("bob")
        watcher_id, watcher_token = node.add_user("watcher")
        node.make_contacts(bob_id, watcher_id)  # (bob's inbox gets the "sent" of it)
        watcher = PlainClient(node.port, watcher_id, watcher_token)
        watcher.subscribe(f"presence/{bob_id}")

        # bob connects by hand, subscribes to his inbox, then never reads again
        stuck = login(node.port, f"{bob_id}/stuck", bob_id, bob_token)
        stuck.sendall(subscribe_packet(1, f"chat/{bob_id}/in"))
        watcher.expect(lambda t, p: isinstance(p, dict) and p.get("status") == "online")

        # alice keeps sending: nothing is acknowledged by bob
        alice = PlainClient(node.port, alice_id, alice_token)
        alice.inbox()
        for i in range(40):
            alice.send(bob_id, f"m{i}", cid=f"m{i}")

        # the node gives up on bob's connection (and everyone else is fine)
        watcher.expect(lambda t, p: isinstance(p, dict) and p.get("status") == "offline", timeout=15)
        alice.send(watcher_id, "still working", cid="ok")
        alice.expect_type("sent", ref="ok")
        stuck.close()

        # bob catches up on every message when he comes back
        bob = PlainClient(node.port, bob_id, bob_token)
        bob.inbox()
        bob.publish({"v": 1, "type": "sync", "id": "s", "after": 0, "limit": 100})
        page = bob.expect_type("sync_page", ref="s")
        received = [e["message"]["text"] for e in page["entries"] if e["type"] == "message"]
        assert received == [f"m{i}" for i in range(40)]
        for client in (alice, bob, watcher):
            client.close()
    finally:
        node.close()


def test_the_sdk_resends_what_the_rate_limit_deferred(strict: RunningNode) -> None:
    from client_sdk import Client

    alice_id, _ = strict.add_user("alice")
    bob_id, _ = strict.add_user("bob")
    with connect(strict, alice_id) as alice:
        outs = [alice.send(bob_id, f"patient {i}") for i in range(12)]
        for out in outs:
            out.wait("sent", timeout=30)  # none is rejected: the deferred ones are sent again
    with Client("127.0.0.1", strict.port, user=bob_id, token=strict.tokens[bob_id]) as bob:
        assert sorted(m.text for m in bob.messages(timeout=2)) == sorted(f"patient {i}" for i in range(12))
