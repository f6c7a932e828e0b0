"""``python -m benchmarks history`` at a tiny size, so it can't rot: it seeds a store, measures
history pages in the store and through a node it starts, and reports both (plausible figures,
never timing thresholds)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.cli import main


def test_history_mode_measures_pages_in_the_store_and_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    args = ["history", "--conversations", "12", "--groups", "2", "--messages", "240", "--queries", "30"]

    assert main([*args, "--quiet", "--json", str(out), "--workdir", str(tmp_path / "work")]) == 0

    store, node = json.loads(out.read_text())
    assert (store["where"], node["where"]) == ("store", "node")
    for report in (store, node):
        latency = report["latency"]
        assert latency["count"] == 30
        assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"] < 10_000
        assert 0 < report["messages_per_page"] <= 50
