"""The amqtt defects that broker/server.py works around, shown against the real node."""

from __future__ import annotations

from tests.harness import RunningNode
from tests.plain import PlainClient


def test_retained_presence_reaches_only_clients_that_subscribed(node: RunningNode) -> None:
    # Given someone watching all presence, and bob online (so a retained presence exists)
    watcher_id, watcher_token = node.add_user("watcher")
    bob_id, bob_token = node.add_user("bob")
    watcher = PlainClient(node.port, watcher_id, watcher_token)
    watcher.subscribe("presence/+")
    bob = PlainClient(node.port, bob_id, bob_token)

    # When carol connects and subscribes only to her inbox
    carol_id, carol_token = node.add_user("carol")
    carol = PlainClient(node.port, carol_id, carol_token)
    carol.inbox()

    # Then she gets no presence (stock amqtt sent her every retained message matching anyone's filter)
    assert [t for t, _ in carol.drain(0.5) if t.startswith("presence/")] == []
    for client in (watcher, bob, carol):
        client.close()


def test_client_wills_are_not_published(node: RunningNode) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from tests.harness import wait_until

    alice_id, alice_token = node.add_user("alice")
    bob_id, bob_token = node.add_user("bob")
    bob = PlainClient(node.port, bob_id, bob_token)
    bob.inbox()
    # a will aimed at bob's inbox, which alice may not publish to
    evil = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{alice_id}/evil")
    evil.username_pw_set(alice_id, alice_token)
    evil.will_set(f"chat/{bob_id}/in", b'{"v":1,"type":"message","cursor":1,"message":{"text":"forged"}}', 1)
    connected: list[object] = []
    evil.on_connect = lambda c, u, f, rc, p: connected.append(rc)
    evil.connect("127.0.0.1", node.port)
    evil.loop_start()
    assert wait_until(lambda: bool(connected))
    evil.loop_stop()
    evil.socket().close()  # dies without DISCONNECT: stock amqtt would publish the will

    assert [p for _, p in bob.drain(1.0)] == []
    bob.close()
