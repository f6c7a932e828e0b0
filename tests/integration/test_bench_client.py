"""The load generator's MQTT connection (``benchmarks/mqtt.py``) against a real mqchat node: it
connects, subscribes, publishes and acknowledges as MQTT 3.1.1 says, reports refusals, and keeps
an idle connection alive."""

from __future__ import annotations

import asyncio
import json

import pytest

from benchmarks.mqtt import Connection, ConnectionFailed
from tests.harness import RunningNode


def _inbox(user: str) -> str:
    return f"chat/{user}/in"


def _send(to: str, text: str) -> bytes:
    return json.dumps({"v": 1, "type": "send", "id": f"c-{text}", "to": to, "text": text}).encode()


async def _received(queue: asyncio.Queue[dict[str, object]], kind: str) -> dict[str, object]:
    while True:
        event = await asyncio.wait_for(queue.get(), 10)
        if event["type"] == kind:
            return event


def _collect(conn: Connection) -> asyncio.Queue[dict[str, object]]:
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    conn.on_message = lambda topic, payload: queue.put_nowait(json.loads(payload))
    return queue


def _watched(user: str, token: str, device: str, lost: list[bool]) -> Connection:
    """A connection that notes in ``lost`` each time it is lost without being closed."""
    return Connection(f"{user}/{device}", username=user, password=token, on_lost=lambda: lost.append(True))


def test_two_connections_chat_at_qos_1_and_each_delivery_is_acknowledged(node: RunningNode) -> None:
    alice, alice_token = node.add_user("alice")
    bob, bob_token = node.add_user("bob")

    async def chat() -> tuple[list[str], list[str], dict[int, int]]:
        a = Connection(f"{alice}/bench", username=alice, password=alice_token)
        b = Connection(f"{bob}/bench", username=bob, password=bob_token)
        a_events, b_events = _collect(a), _collect(b)
        for conn, user in ((a, alice), (b, bob)):
            await conn.connect("127.0.0.1", node.port)
            await conn.subscribe(_inbox(user))
        for i in range(3):
            a.publish(f"chat/{alice}/out", _send(bob, f"m{i}"))
        texts = [(await _received(b_events, "message"))["message"]["text"] for _ in range(3)]  # type: ignore[index]
        refs = [str((await _received(a_events, "sent"))["ref"]) for _ in range(3)]
        await asyncio.sleep(0.3)
        unacknowledged = dict(broker._inflight)  # deliveries each session has not acknowledged
        await a.close()
        await b.close()
        return texts, refs, unacknowledged

    broker = node.node.broker
    assert broker is not None
    texts, refs, unacknowledged = node.call(chat())
    assert texts == ["m0", "m1", "m2"]
    assert refs == ["c-m0", "c-m1", "c-m2"]
    assert unacknowledged and all(count == 0 for count in unacknowledged.values())


def test_a_wrong_token_and_a_forbidden_subscription_are_refused(node: RunningNode) -> None:
    alice, alice_token = node.add_user("alice")
    bob, _ = node.add_user("bob")

    async def refused() -> tuple[str, str]:
        wrong = Connection(f"{alice}/x", username=alice, password="not-the-token")
        with pytest.raises(ConnectionFailed) as bad_login:
            await wrong.connect("127.0.0.1", node.port, timeout=10)
        conn = Connection(f"{alice}/y", username=alice, password=alice_token)
        await conn.connect("127.0.0.1", node.port)
        with pytest.raises(ConnectionFailed) as bad_topic:
            await conn.subscribe(_inbox(bob), timeout=10)
        await conn.close()
        return str(bad_login.value), str(bad_topic.value)

    login, topic = node.call(refused())
    assert "CONNECT refused" in login
    assert f"SUBSCRIBE {_inbox(bob)} refused" in topic


def test_an_idle_connection_pings_and_stays_connected_past_its_keepalive(node: RunningNode) -> None:
    alice, token = node.add_user("alice")
    lost: list[bool] = []

    async def idle() -> bool:
        conn = _watched(alice, token, "idle", lost)
        await conn.connect("127.0.0.1", node.port, keepalive=1)
        await asyncio.sleep(3.5)  # the node closes a connection silent for 1.5 keepalives
        still = conn.connected
        await conn.close()
        return still

    assert node.call(idle()) is True
    assert lost == []


def test_a_connection_the_broker_drops_is_reported_lost(node: RunningNode) -> None:
    alice, token = node.add_user("alice")
    lost: list[bool] = []

    async def dropped() -> bool:
        conn = _watched(alice, token, "a", lost)
        await conn.connect("127.0.0.1", node.port, keepalive=0)
        # the same client id connects again: the broker ends the first connection (takeover)
        other = Connection(f"{alice}/a", username=alice, password=token)
        await other.connect("127.0.0.1", node.port, keepalive=0)
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.05)
        await other.close()
        return conn.connected

    assert node.call(dropped()) is False
    assert lost == [True]
