"""A plain MQTT client (paho without the SDK) chats using only the JSON contract."""

from __future__ import annotations

from tests.harness import RunningNode
from tests.plain import PlainClient


def test_plain_clients_chat_with_sent_delivered_read(node: RunningNode) -> None:
    # Given alice and bob connected with plain MQTT, subscribed to their inboxes
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice, bob = PlainClient(node.port, alice_id, alice_token), PlainClient(node.port, bob_id, bob_token)
    assert alice.inbox() == [1] and bob.inbox() == [1]

    # When alice sends a message
    cid = alice.send(bob_id, "hello bob")

    # Then alice gets sent, bob gets the message with a server id and seq 1
    sent = alice.expect_type("sent", ref=cid)
    message = bob.expect_type("message")["message"]
    assert message == sent["message"]
    assert (message["from"], message["to"], message["text"], message["seq"]) == (
        alice_id,
        bob_id,
        "hello bob",
        1,
    )

    # When bob says delivered, then read, alice sees both, in order
    for status in ("delivered", "read"):
        bob.publish(
            {"v": 1, "type": "receipt", "id": f"r-{status}", "status": status, "messages": [message["id"]]}
        )
        receipt = alice.expect_type("receipt", status=status)
        assert (receipt["message_id"], receipt["by"]) == (message["id"], bob_id)
        bob.expect_type("ok", ref=f"r-{status}")

    # Messages and receipts come at QoS 1; the live-only ok at QoS 0 (no PUBACK owed for it)
    assert set(alice.qos_of) == {("sent", 1), ("receipt", 1)}
    # (and bob's own devices learn he read it: a `read` event with a cursor)
    bob.expect_type("read", conversation=message["conversation"], read_seq=message["seq"])
    assert set(bob.qos_of) == {("message", 1), ("ok", 0), ("read", 1)}

    # And bob's reply is seq 2 in the same conversation
    bob.send(alice_id, "hi alice")
    reply = alice.expect_type("message")["message"]
    assert (reply["seq"], reply["conversation"]) == (2, message["conversation"])
    alice.close()
    bob.close()


def test_a_resend_with_the_same_id_is_stored_once(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice, bob = PlainClient(node.port, alice_id, alice_token), PlainClient(node.port, bob_id, bob_token)
    alice.inbox()
    bob.inbox()

    alice.send(bob_id, "once", cid="fixed-id")
    first = alice.expect_type("sent", ref="fixed-id")
    alice.send(bob_id, "once", cid="fixed-id")
    second = alice.expect_type("sent", ref="fixed-id")

    assert first == second
    bob.expect_type("message")
    assert [p for _, p in bob.drain(0.5) if isinstance(p, dict) and p.get("type") == "message"] == []
    bob.publish({"v": 1, "type": "sync", "id": "s", "after": 0})
    assert len(bob.expect_type("sync_page", ref="s")["entries"]) == 1
    alice.close()
    bob.close()


def test_sync_returns_missed_events_in_pages(node: RunningNode) -> None:
    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    alice = PlainClient(node.port, alice_id, alice_token)
    alice.inbox()
    for i in range(5):
        alice.send(bob_id, f"m{i}")
        alice.expect_type("sent")

    bob = PlainClient(node.port, bob_id, bob_token)
    bob.inbox()
    texts, after, more = [], 0, True
    while more:
        bob.publish({"v": 1, "type": "sync", "id": f"s{after}", "after": after, "limit": 2})
        page = bob.expect_type("sync_page", ref=f"s{after}")
        texts += [e["message"]["text"] for e in page["entries"]]
        after, more = page["cursor"], page["more"]

    assert texts == [f"m{i}" for i in range(5)]
    alice.close()
    bob.close()
