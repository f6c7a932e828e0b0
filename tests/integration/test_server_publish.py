"""``MqchatBroker.publish_nowait`` starts each delivery at once (no broadcast queue): deliveries of
one connection arrive in call order, QoS 1 ones end when acknowledged, and nothing is left behind."""

from __future__ import annotations

import json

import pytest

import broker.mqtt.handler as handler_module
from tests.harness import wait_until
from tests.integration.test_amqtt_fixes import _BareBroker, bare  # noqa: F401 - the fixture
from tests.plain import PlainClient
from tests.raw_mqtt import login, read_exactly, suback, subscribe_packet


def test_server_publishes_arrive_in_call_order_and_leave_no_task_behind(
    bare: _BareBroker,  # noqa: F811
) -> None:
    # Given a client subscribed at QoS 1
    client = PlainClient(bare.port, "reader", "x")
    assert client.subscribe("inbox/reader") == [1]

    # When the server publishes 200 messages to it in one pass of the event loop
    def publish_all() -> None:
        for i in range(200):
            bare.broker.publish_nowait("inbox/reader", json.dumps(i).encode(), 1)

    bare.loop.call_soon_threadsafe(publish_all)

    # Then they arrive in that order, and once acknowledged no delivery task or count is left
    assert client.expect(lambda t, p: p == 199) == 199
    assert [p for t, p in client.drain(0)] == list(range(199))  # the ones read before 199, kept
    assert wait_until(lambda: not any(bare.broker._inflight.values()))
    assert not bare.broker._publishing
    ((session, handler),) = bare.broker._sessions.values()
    assert not handler._puback_waiters
    assert not session.inflight_out
    assert not session.quick_out
    client.close()


def test_deliveries_never_acknowledged_are_dropped_after_the_puback_timeout(
    bare: _BareBroker,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handler_module, "PUBACK_TIMEOUT", 0.2)

    # Given a client that subscribes at QoS 1 and then never acknowledges anything
    mute = login(bare.port, "mute")
    mute.sendall(subscribe_packet(1, "inbox/mute"))
    assert read_exactly(mute, 5) == suback(1, 1)

    # When the server publishes to it
    for i in range(3):
        bare.loop.call_soon_threadsafe(bare.broker.publish_nowait, "inbox/mute", json.dumps(i).encode(), 1)

    # Then the PUBLISHes arrive, and once unacknowledged past the timeout nothing is kept for them
    received = b""
    while received.count(b"inbox/mute") < 3:
        chunk = mute.recv(4096)
        assert chunk
        received += chunk
    session, handler = bare.broker._sessions["mute"]
    assert wait_until(lambda: not session.quick_out and not session.inflight_out)
    assert wait_until(lambda: not any(bare.broker._inflight.values()))
    assert handler._sweeper is None  # nothing left to time out
    mute.close()
