"""The delivery latency metric reads a message's stored ``ts`` from the event's JSON without
parsing it all (workers/metrics.py ``stored_at``): it must agree with a full parse for any text."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY, generate_latest

from workers.metrics import DELIVERIES, observe_deliveries, stored_at
from workers.stores import StoredMessage

TRICKY = [
    "hello",
    '","ts":1,"x":"',
    ',"ts":99}',
    "back\\slash\\",
    'quote " and \\" and }{,',
    "é 🙂 \u2028",
    "",
]


def message_event(text: str, ts: float, media: dict[str, object] | None = None) -> str:
    """A ``message`` event as the router serialises it."""
    message = StoredMessage("m1", "c:a:b", 7, "alice", "bob", text, ts, media)
    event = {"v": 1, "type": "message", "cursor": 12, "message": message.wire()}
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("text", TRICKY)
@pytest.mark.parametrize("ts", [1764136000.123456, 0.5, 1e-05, 1764136000])
def test_the_stored_ts_is_the_one_a_full_parse_finds(text: str, ts: float) -> None:
    payload = message_event(text, ts, {"link": "x", "ts": 5, "size": 3} if text == "hello" else None)

    assert stored_at(payload) == json.loads(payload)["message"]["ts"]


def latency(sample: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(f"mqchat_delivery_latency_seconds_{sample}", labels)
    assert value is not None
    return value


def test_deliveries_are_counted_and_only_messages_are_timed() -> None:
    counted = DELIVERIES._value.get()
    timed, seen = latency("sum"), latency("count")
    buckets = {le: latency("bucket", le=le) for le in ("0.001", "10.0", "+Inf")}
    other = json.dumps({"v": 1, "type": "receipt", "ts": 1.0}, separators=(",", ":"))

    observe_deliveries(
        [message_event(TRICKY[1], 100.0), other, message_event("x", 90.0), message_event("y", 110.0)],
        now=110.0,
    )

    assert DELIVERIES._value.get() == counted + 4
    assert latency("sum") == pytest.approx(timed + 10.0 + 20.0)
    assert latency("count") == seen + 3
    # 0 s in the first bucket and every bucket above it; 10 s up to "10.0"; 20 s only in "+Inf"
    assert latency("bucket", le="0.001") == buckets["0.001"] + 1
    assert latency("bucket", le="10.0") == buckets["10.0"] + 2
    assert latency("bucket", le="+Inf") == buckets["+Inf"] + 3


def test_the_latency_is_exposed_as_a_histogram() -> None:
    text = generate_latest().decode()

    assert "# TYPE mqchat_delivery_latency_seconds histogram" in text
    assert 'mqchat_delivery_latency_seconds_bucket{le="0.0025"}' in text
