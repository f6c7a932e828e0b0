"""The SubscriptionIndex (broker/mqtt/subscriptions.py): exact filters by lookup, wildcards by
match, and each session's filters forgotten with it."""

from __future__ import annotations

from typing import Any

from broker.mqtt.subscriptions import SubscriptionIndex


def _matches(topic: str, a_filter: str) -> bool:
    return a_filter.endswith("/+") and topic.rsplit("/", 1)[0] == a_filter[:-2]


def _subscribe(by_filter: dict[str, list[tuple[Any, int]]], index: SubscriptionIndex, f: str, s: Any) -> None:
    by_filter.setdefault(f, []).append((s, 1))  # what amqtt's add_subscription does
    index.added(f, s)


def test_exact_and_wildcard_subscribers_are_found() -> None:
    by_filter: dict[str, list[tuple[Any, int]]] = {}
    index = SubscriptionIndex(by_filter, matches=_matches)
    alice, bob = object(), object()
    _subscribe(by_filter, index, "presence/bob", alice)
    _subscribe(by_filter, index, "presence/+", bob)
    assert index.subscribers("presence/bob") == [(alice, 1), (bob, 1)]
    assert index.subscribers("presence/carol") == [(bob, 1)]
    assert index.subscribers("chat/x/in") == []


def test_a_filter_nobody_is_left_on_is_dropped() -> None:
    by_filter: dict[str, list[tuple[Any, int]]] = {}
    index = SubscriptionIndex(by_filter, matches=_matches)
    alice = object()
    _subscribe(by_filter, index, "presence/+", alice)
    by_filter["presence/+"].clear()  # what amqtt's _del_subscription does
    index.removed("presence/+", alice)
    assert by_filter == {}
    assert index.subscribers("presence/bob") == []


def test_a_session_is_forgotten_with_exactly_its_filters() -> None:
    by_filter: dict[str, list[tuple[Any, int]]] = {}
    index = SubscriptionIndex(by_filter, matches=_matches)
    alice, bob = object(), object()
    _subscribe(by_filter, index, "chat/alice/in", alice)
    _subscribe(by_filter, index, "presence/bob", alice)
    _subscribe(by_filter, index, "chat/bob/in", bob)
    assert index.forget(alice) == {"chat/alice/in", "presence/bob"}
    assert index.forget(alice) == set()
