"""The retry loop of batches run outside the job queue (workers/retry.py), as the inline runner's
thread and the commands process run them: each batch goes through the real pipeline, is retried as
the job queue would retry it, and never raises.

The real pipeline and router on each store; the node's delivery queue is Dramatiq's in-memory one,
read back as in test_pipeline_batch.
"""

from __future__ import annotations

import threading
from typing import Any

from dramatiq.brokers.stub import StubBroker

from tests.stores.conftest import users
from tests.stores.test_pipeline_batch import (
    NODE,
    LocatorWithAFault,
    brief,
    pipeline,
    published,
    queue,  # noqa: F401 - the fixture
    send,
)
from workers.errors import StoreUnavailable
from workers.locator import MemoryLocator
from workers.retry import Retrying
from workers.stores import Store


def test_a_batch_that_met_an_unavailable_store_is_retried_and_stored_once(
    store: Store,
    queue: StubBroker,  # noqa: F811
) -> None:
    alice, bob = users(store, "alice", "bob")

    def locator_down() -> None:
        raise StoreUnavailable("locator unavailable: connection refused")

    work = pipeline(store, queue, LocatorWithAFault(3, locator_down), alice, bob)
    direct = Retrying(work.process_batch, min_backoff=0.01)

    direct(NODE, [send(alice, f"c{i}", bob) for i in range(1, 5)])
    direct(NODE, [send(alice, "c5", bob)])

    assert direct.retries == 1
    got = published(queue)
    assert [brief(e) for user, e in got if user == alice] == [("sent", f"c{i}", i) for i in range(1, 6)]
    inbox, _ = store.sync(user=bob, after=0, limit=10)
    assert [(e.cursor, e.payload["message"]["text"]) for e in inbox] == [(i, f"c{i}") for i in range(1, 6)]


def test_a_batch_that_fails_for_good_is_dropped_and_the_next_one_goes_on(
    store: Store,
    queue: StubBroker,  # noqa: F811
) -> None:
    alice, bob = users(store, "alice", "bob")
    work = pipeline(store, queue, MemoryLocator(), alice, bob)

    def process(node: str, batch: list[dict[str, Any]]) -> None:
        if batch[0]["cmd"]["id"] == "broken":
            raise LookupError("a bug, not a passing failure")
        work.process_batch(node, batch)

    direct = Retrying(process, min_backoff=0.01)
    direct(NODE, [send(alice, "broken", bob)])  # does not raise: ingest must not hold it forever
    direct(NODE, [send(alice, "c1", bob)])

    assert direct.retries == 0
    assert [brief(e) for user, e in published(queue) if user == alice] == [("sent", "c1", 1)]


def test_close_ends_the_retries_of_a_batch_while_the_store_stays_down() -> None:
    attempts: list[int] = []

    def store_down(node: str, batch: list[dict[str, Any]]) -> None:
        attempts.append(len(batch))
        raise StoreUnavailable("database unavailable")

    direct = Retrying(store_down, min_backoff=3600)
    worker = threading.Thread(target=direct, args=(NODE, [{"user": "u", "cmd": {}}]))
    worker.start()
    while not attempts:
        threading.Event().wait(0.01)
    direct.close()
    worker.join(60)

    assert not worker.is_alive()
    assert attempts == [1]
