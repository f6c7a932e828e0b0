"""Who may watch whose presence, against the real node with the real SDK and plain MQTT clients.

By default (``presence.visibility = "contacts"``) a user sees the presence of itself, of the users
it has a 1-on-1 chat with and of its group mates; ``"everyone"`` lets any user watch anyone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from client_sdk import Client, PresenceForbidden, PresenceRefused
from tests.harness import RunningNode, connect, node_settings
from tests.plain import PlainClient


def own_presence_then_rest(client: PlainClient) -> list[tuple[str, object]]:
    """Subscribe to the client's own presence and wait for it: the broker answers one SUBSCRIBE of a
    connection at a time, so whatever an earlier subscription was to deliver has arrived by then."""
    assert client.subscribe(f"presence/{client.user}") == [1]
    client.expect(lambda t, p: t == f"presence/{client.user}")
    return client.drain(0)


def test_a_stranger_cannot_watch_presence_nor_get_the_retained_one(node: RunningNode) -> None:
    # Given bob online (his presence is retained) and mallory, who never talked to him
    bob_id, bob_token = node.add_user("bob")
    mallory_id, mallory_token = node.add_user("mallory")
    bob = PlainClient(node.port, bob_id, bob_token)
    mallory = PlainClient(node.port, mallory_id, mallory_token)

    # When mallory subscribes to bob's presence, Then SUBACK says refused and nothing of bob arrives
    assert mallory.subscribe(f"presence/{bob_id}") == [0x80]
    assert [t for t, _ in own_presence_then_rest(mallory) if t == f"presence/{bob_id}"] == []

    # And through the SDK the refusal is a clear error, with no presence known
    with connect(node, mallory_id) as sdk:
        with pytest.raises(PresenceForbidden, match=bob_id) as refused:
            sdk.watch_presence(bob_id)
        assert refused.value.user == bob_id
        with pytest.raises(PresenceForbidden):
            sdk.wait_presence(bob_id, "online", timeout=10)
        assert sdk.presence(bob_id) is None
    bob.close()
    mallory.close()


def test_a_contact_can_watch_after_the_first_message_without_reconnecting(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    with connect(node, alice_id) as alice, connect(node, bob_id) as bob:
        # Given alice was refused bob's presence while they were strangers
        with pytest.raises(PresenceForbidden):
            alice.watch_presence(bob_id)

        # When she sends him a message
        alice.send(bob_id, "hi, it's alice").wait("sent", timeout=10)

        # Then she may watch him, on the same connection, and he may watch her
        alice.watch_presence(bob_id)
        assert alice.wait_presence(bob_id, "online", timeout=10).online
        assert bob.wait_presence(alice_id, "online", timeout=10).online


def test_group_mates_can_watch_each_other(node: RunningNode) -> None:
    alice_id, _ = node.add_user("alice")
    bob_id, _ = node.add_user("bob")
    carol_id, _ = node.add_user("carol")
    with connect(node, alice_id) as alice, connect(node, carol_id) as carol:
        # Given alice made a group with bob and carol (bob and carol never wrote to each other)
        alice.create_group("climbing", [bob_id, carol_id], timeout=10)

        # When bob comes online, Then carol sees it, and so does alice
        carol.watch_presence(bob_id)
        alice.watch_presence(bob_id)
        with connect(node, bob_id):
            assert carol.wait_presence(bob_id, "online", timeout=10).online
            assert alice.wait_presence(bob_id, "online", timeout=10).online
        assert carol.wait_presence(bob_id, "offline", timeout=10).status == "offline"


def test_the_wildcard_is_refused_and_the_connection_keeps_working(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token)
    bob = PlainClient(node.port, bob_id, bob_token)
    alice.inbox()
    bob.inbox()

    # When alice asks for everyone's presence, in one SUBSCRIBE with her inbox
    assert alice.subscribe("presence/+") == [0x80]
    assert [t for t, _ in own_presence_then_rest(alice) if t == f"presence/{bob_id}"] == []

    # Then her connection, and bob's, carry on: she chats, and may then watch bob
    cid = alice.send(bob_id, "still here")
    alice.expect_type("sent", ref=cid)
    assert bob.expect_type("message")["message"]["text"] == "still here"
    assert alice.subscribe(f"presence/{bob_id}") == [1]
    assert alice.expect(lambda t, p: t == f"presence/{bob_id}")["status"] == "online"
    alice.close()
    bob.close()


def test_a_refusal_made_on_connect_is_an_event(node: RunningNode) -> None:
    # Given alice asks for a stranger's presence before connecting
    alice_id, alice_token = node.add_user("alice")
    stranger_id, _ = node.add_user("stranger")
    client = Client("127.0.0.1", node.port, user=alice_id, token=alice_token)
    client.watch_presence(stranger_id)

    # When she connects, Then the refusal is an event, and the inbox works as ever
    with client:
        refused = next(e for e in client.events(timeout=10) if isinstance(e, PresenceRefused))
        assert refused == PresenceRefused(user=stranger_id)
        client.wait_synced(timeout=10)
        client.send(alice_id, "note to self").wait("sent", timeout=10)
        assert client.presence(stranger_id) is None


def test_everyone_mode_lets_anyone_watch_anyone_but_not_by_wildcard(tmp_path: Path) -> None:
    node = RunningNode(node_settings(tmp_path, **{"presence.visibility": "everyone"})).start()
    try:
        bob_id, bob_token = node.add_user("bob")
        watcher_id, watcher_token = node.add_user("watcher")
        bob = PlainClient(node.port, bob_id, bob_token)
        watcher = PlainClient(node.port, watcher_id, watcher_token)

        # the wildcard would pass over each user's own privacy settings (test_privacy.py): refused
        assert watcher.subscribe("presence/+") == [0x80]
        assert watcher.subscribe(f"presence/{bob_id}") == [1]
        assert watcher.expect(lambda t, p: t == f"presence/{bob_id}")["status"] == "online"
        with connect(node, watcher_id) as sdk:
            assert sdk.wait_presence(bob_id, "online", timeout=10).online
        bob.close()
        watcher.close()
    finally:
        node.close()
