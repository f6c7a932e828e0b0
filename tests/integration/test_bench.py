"""The load generator (``python -m benchmarks``) at tiny sizes against real brokers, so it can't rot.

Figures are checked for being reported and plausible, never against timing thresholds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli import main
from tests.harness import RunningNode

SHORT = ["--warmup", "0.5", "--duration", "2", "--drain", "10", "--procs", "2", "--quiet"]


def _run(tmp_path: Path, *args: str) -> Any:
    out = tmp_path / "result.json"
    assert main([*args, "--json", str(out), "--workdir", str(tmp_path / "work")]) == 0
    return json.loads(out.read_text())


def _plausible_latency(figures: dict[str, float], count: int) -> None:
    assert figures["count"] == count
    assert 0 < figures["p50"] <= figures["p90"] <= figures["p99"] <= figures["max"] < 10_000


@pytest.mark.parametrize("broker", ["mqchat", "amqtt", "mqchat-broker"])
def test_raw_mode_reports_throughput_latency_and_broker_figures(tmp_path: Path, broker: str) -> None:
    # Given a broker started by the tool, when 2 pairs and 2 idle users run at 1,000 messages/s
    # (enough work that the broker's CPU, counted in 10 ms clock ticks, can't read as none at all)
    [run] = _run(
        tmp_path, "raw", "--broker", broker, "--users", "6", "--pairs", "2", "--rate", "1000", *SHORT
    )

    # Then everyone connected and every message sent in the window arrived, with its latency
    assert run["broker"] == broker
    assert run["connections"] == 6
    assert run["connect_failed"] == 0
    assert run["connect_seconds"] > 0
    assert run["rss_after"] > 0
    assert run["rss_per_connection"] is not None
    [step] = run["steps"]
    assert 1000 <= step["sent"] <= 3000
    assert step["delivered"] == step["expected"] == step["sent"]
    _plausible_latency(step["latencies"]["delivered"], step["delivered"])
    assert step["broker_cpu"] is not None and step["broker_cpu"] > 0
    assert step["broker_rss"] > 0
    assert len(step["worker_cpu"]) == 2


@pytest.mark.parametrize("broker", ["mqchat-broker", "mosquitto"])
def test_raw_mode_loads_each_broker_over_mqtt_3_1_1_and_5_in_one_run(tmp_path: Path, broker: str) -> None:
    # Given one run asking for both MQTT versions
    runs = _run(
        tmp_path,
        "raw",
        *("--broker", broker, "--mqtt", "3.1.1,5", "--users", "4", "--pairs", "2", "--rate", "200"),
        *SHORT,
    )

    # Then the broker was loaded once per version, each named with it, and over MQTT 5 too every
    # message arrived (a CONNECT, SUBSCRIBE or PUBLISH framed wrongly for the version would be
    # refused or cut the connection)
    assert [run["broker"] for run in runs] == [f"{broker} v3.1.1", f"{broker} v5"]
    for run in runs:
        assert run["connections"] == 4 and run["connect_failed"] == 0
        [step] = run["steps"]
        assert step["sent"] > 0 and step["delivered"] == step["expected"] == step["sent"]
        assert step["errors"] == {}


def test_chat_mode_measures_sent_delivered_and_receipts(tmp_path: Path, node: RunningNode) -> None:
    # Given a running node, when 2 pairs and a group of 3 chat at 20 messages/s with receipts
    [run] = _run(
        tmp_path,
        "chat",
        *("--port", str(node.port), "--mqchat", "--pid", str(os.getpid())),
        *("--store-url", node.settings.store_url),
        *("--users", "9", "--pairs", "2", "--groups", "1", "--group-size", "3", "--rate", "20"),
        *("--watch", "pytest=pytest"),  # a component watched besides the node (this process, among others)
        *SHORT,
    )

    # Then each message was stored (sent), delivered to every recipient, and its two ticks came back
    assert run["connections"] == 9
    [step] = run["steps"]
    assert step["sent"] >= 20
    assert step["expected"] > step["sent"]  # a group message has two recipients
    assert step["delivered"] == step["expected"]
    assert step["errors"] == {}
    _plausible_latency(step["latencies"]["delivered"], step["delivered"])
    _plausible_latency(step["latencies"]["sent"], step["sent"])
    _plausible_latency(step["latencies"]["receipt"], step["sent"])
    # and each group message's copy to its last member (a third of the messages went to the group)
    last = step["latencies"]["last"]
    assert 0 < last["count"] < step["sent"] and last["max"] >= last["p50"] > 0
    # and the watched component's CPU, in the window and through the drain
    assert step["components"]["pytest"] >= 0 and step["components_drained"]["pytest"] > 0


def test_offline_sync_reaches_the_last_cursor(
    tmp_path: Path, node: RunningNode, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given 300 messages stored for a user who is offline
    # When it connects and follows sync pages of 100
    [sync] = _run(
        tmp_path,
        "sync",
        *("--port", str(node.port), "--mqchat", "--store-url", node.settings.store_url),
        *("--messages", "300", "--page-size", "100", "--repeat", "1", "--quiet"),
    )

    # Then it got every message, in three pages, up to cursor 300
    assert sync["entries"] == 300
    assert sync["pages"] == 3
    assert sync["last_cursor"] == 300
    assert sync["preload_seconds"] > 0
    assert sync["connect_seconds"] > 0
    assert sync["sync_seconds"] > 0
    assert sync["client_rss_peak"] >= sync["client_rss_before"] > 0
    # and the report names the machine it measured, with its reference speed
    machine = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("machine: "))
    assert f"{os.cpu_count()} cores; Python reference " in machine


@pytest.mark.postgres
def test_the_store_cpu_is_that_of_the_databases_backends(postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    from benchmarks.procstat import StoreWatch

    watch = StoreWatch.for_url(postgres_url)
    assert watch is not None and StoreWatch.for_url("sqlite:///x.db") is None
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            before = watch.cpu()
            conn.execute(text("SELECT count(*) FROM generate_series(1, 3000000)")).scalar_one()
            after = watch.cpu()
    finally:
        engine.dispose()
    assert after.cpu - before.cpu > 0.05  # the backend's work, seen from outside
