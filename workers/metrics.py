"""Prometheus metrics of an mqchat process (node or worker), on the default registry.

Scraped at ``/metrics`` (the node's HTTP port, or the worker's health port). Gauges that describe
live state are read when scraped, through ``watch_*``.
"""

from __future__ import annotations

import re
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, cast

import dramatiq
from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.utils import floatToGoString

__all__ = [
    "COMMANDS",
    "COMMANDS_PROCESS_RESTARTS",
    "COMMAND_ERRORS",
    "COMMAND_ERROR_TOTALS",
    "DELIVERIES",
    "DELIVERY_LATENCY",
    "REFUSED",
    "BatchHistogram",
    "command_error",
    "observe_deliveries",
    "observe_delivery",
    "queue_depth",
    "stored_at",
    "watch_job_queues",
    "watch_node",
]

COMMANDS = Counter("mqchat_commands_total", "Client commands accepted by this node's ingest", ["type"])
REFUSED = Counter("mqchat_commands_refused_total", "Client commands refused by ingest", ["code"])
COMMAND_ERRORS = Counter(
    "mqchat_command_errors_total", "Commands the workers answered with an error", ["code"]
)
COMMAND_ERROR_TOTALS: dict[str, int] = {}
"""What ``command_error`` added to ``COMMAND_ERRORS`` in this process, by code: the commands
process hands its totals to the node after every batch, and ``COMMAND_ERRORS.collect()`` builds
the metric's samples under locks, tens of µs a batch once any code has a count."""


def command_error(code: str) -> None:
    """A command answered with the error ``code``: counted in ``COMMAND_ERRORS`` and its totals."""
    COMMAND_ERRORS.labels(code=code).inc()
    COMMAND_ERROR_TOTALS[code] = COMMAND_ERROR_TOTALS.get(code, 0) + 1


COMMANDS_PROCESS_RESTARTS = Counter(
    "mqchat_commands_process_restarts_total",
    "Commands processes started again after one died or was killed as hung",
    ["reason"],
)
DELIVERIES = Counter("mqchat_deliveries_total", "Events this node published to its clients' inboxes")

_le = cast("Callable[[float], str]", floatToGoString)
"""A bucket's ``le`` label as ``prometheus_client`` writes it (``0.001``, ``10.0``, ``+Inf``)."""


class BatchHistogram:
    """A histogram observed a batch of values at a time, from one thread (the node's event loop).

    ``prometheus_client.Histogram.observe`` takes two locks and walks the buckets in Python for
    every value, and the node observes one value per message it publishes. Here a value is a
    ``bisect`` and a list increment; a scrape (another thread) reads the counts as they are, as
    Prometheus reads any counter. Exposed as the same histogram: ``_bucket``, ``_count``, ``_sum``.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = (*sorted(buckets), float("inf"))
        self._counts = [0] * len(self._bounds)
        self.sum = 0.0
        REGISTRY.register(self)

    def observe_many(self, values: list[float]) -> None:
        counts, bounds = self._counts, self._bounds
        for value in values:
            counts[bisect_left(bounds, value)] += 1
        self.sum += sum(values)

    def counts(self) -> list[tuple[float, int]]:
        """``(upper bound, observations up to it)`` for every bucket, ``+Inf`` last: the count."""
        total, cumulative = 0, []
        for bound, count in zip(self._bounds, self._counts, strict=True):
            total += count
            cumulative.append((bound, total))
        return cumulative

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], [(_le(b), c) for b, c in self.counts()], self.sum)
        yield family


DELIVERY_LATENCY = BatchHistogram(
    "mqchat_delivery_latency_seconds",
    "From a message being stored to this node publishing it to a recipient",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
_CONNECTIONS = Gauge("mqchat_connections", "MQTT connections open on this node")
_ONLINE = Gauge("mqchat_connected_users", "Users with at least one connection on this node")
_INGEST = Gauge("mqchat_ingest_pending", "Commands accepted but not yet enqueued")
_QUEUE = Gauge("mqchat_job_queue_depth", "Jobs waiting in a job queue", ["queue"])

_MESSAGE_PREFIX = '{"v":1,"type":"message"'
_TS = ',"ts":'


_NUMBER = re.compile(r"-?[0-9][0-9.eE+-]*(?=[,}])")
"""A JSON number and the ``,`` or ``}`` after it."""


def stored_at(payload: str) -> float | None:
    """The ``ts`` of the message in a ``message`` event's JSON, without parsing it all.

    The first ``,"ts":`` is the message's own: every value before it is a number or a string,
    and a JSON string cannot hold ``"`` unescaped. None when it is not there or not a number.
    """
    start = payload.find(_TS)
    if start < 0:
        return None
    number = _NUMBER.match(payload, start + len(_TS))
    if number is None:
        return None
    try:
        return float(number[0])
    except ValueError:  # digits, dots and exponents in an order no number has
        return None


def observe_delivery(payload: str, now: float | None = None) -> None:
    observe_deliveries([payload], now)


def observe_deliveries(payloads: list[str], now: float | None = None) -> None:
    """Count events published at ``now``, and how long each message took since it was stored."""
    DELIVERIES.inc(len(payloads))
    latencies = []
    for payload in payloads:
        if payload.startswith(_MESSAGE_PREFIX):
            stored = stored_at(payload)
            if stored is not None:
                if now is None:
                    now = time.time()
                latencies.append(now - stored if now > stored else 0.0)
    if latencies:
        DELIVERY_LATENCY.observe_many(latencies)


def watch_node(
    *, connections: Callable[[], int], online: Callable[[], int], ingest: Callable[[], int]
) -> None:
    _CONNECTIONS.set_function(connections)
    _ONLINE.set_function(online)
    _INGEST.set_function(ingest)


def queue_depth(broker: dramatiq.Broker, queue: str) -> int:
    """Jobs waiting in ``queue`` (0 when the broker cannot tell)."""
    try:
        counts: Any = getattr(broker, "get_queue_message_counts", None)
        if counts is not None:  # RabbitMQ: (ready, delayed, dead-lettered)
            return int(sum(counts(queue)[:2]))
        queues = getattr(broker, "queues", None)
        if isinstance(queues, dict) and queue in queues:  # the in-process queue
            return int(queues[queue].qsize())
        client = getattr(broker, "client", None)
        if client is not None:  # Redis
            namespace = getattr(broker, "namespace", "dramatiq")
            return int(client.hlen(f"{namespace}:{queue}.msgs"))
    except Exception:  # noqa: BLE001 - a metric must never break a scrape
        return 0
    return 0


def watch_job_queues(broker: dramatiq.Broker, queues: list[str]) -> None:
    for queue in queues:
        _QUEUE.labels(queue=queue).set_function(partial(queue_depth, broker, queue))
