"""Authentication: deny by default, client ids bound to the user, takeover without denial of service."""

from __future__ import annotations

import pytest

from tests.harness import RunningNode, unique
from tests.plain import PlainClient


def test_bad_credentials_are_refused(node: RunningNode) -> None:
    user, token = node.add_user("alice")

    for name, secret in ((user, "mqc_wrong"), (user, ""), (unique("nobody"), token), ("bad name", token)):
        with pytest.raises(ConnectionRefusedError):
            PlainClient(node.port, name, secret)


def test_client_id_must_belong_to_the_user(node: RunningNode) -> None:
    alice, alice_token = node.add_user("alice")
    bob, _ = node.add_user("bob")

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    for client_id in (f"{bob}/phone", alice, f"{alice}/", f"{alice}/bad device", ""):
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        client.username_pw_set(alice, alice_token)
        results: list[object] = []
        client.on_connect = lambda c, u, f, rc, p, results=results: results.append(rc)
        client.connect("127.0.0.1", node.port)
        client.loop_start()
        from tests.harness import wait_until

        assert wait_until(lambda results=results: bool(results), 5)
        client.loop_stop()
        assert results[0].is_failure, client_id  # type: ignore[attr-defined]


def test_a_password_works_as_well_as_a_token(node: RunningNode) -> None:
    user, _ = node.add_user("alice", password="correct horse battery")

    client = PlainClient(node.port, user, "correct horse battery")
    assert client.inbox() == [1]
    client.close()
    with pytest.raises(ConnectionRefusedError):
        PlainClient(node.port, user, "wrong horse")


def test_a_failed_login_with_someones_client_id_does_not_cut_them_off(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    bob = PlainClient(node.port, bob_id, bob_token, device="phone")
    bob.inbox()
    alice = PlainClient(node.port, alice_id, alice_token)
    alice.inbox()

    with pytest.raises(ConnectionRefusedError):
        PlainClient(node.port, bob_id, "mqc_guessed", device="phone")

    alice.send(bob_id, "you are still there")
    assert bob.expect_type("message")["message"]["text"] == "you are still there"
    alice.close()
    bob.close()


def test_the_same_client_id_takes_over_the_old_connection(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    old = PlainClient(node.port, bob_id, bob_token, device="phone")
    old.inbox()
    new = PlainClient(node.port, bob_id, bob_token, device="phone")
    new.inbox()
    alice = PlainClient(node.port, alice_id, alice_token)
    alice.inbox()

    alice.send(bob_id, "to the new one")

    assert new.expect_type("message")["message"]["text"] == "to the new one"
    assert [p for _, p in old.drain(0.3) if isinstance(p, dict) and p.get("type") == "message"] == []
    alice.close()
    new.close()
