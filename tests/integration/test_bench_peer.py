"""The chat peer in the load generator: ejabberd over XMPP, and mqchat, each on a fresh PostgreSQL
database, on the same workload in one run.

ejabberd is a benchmark peer, not a service mqchat needs: where Debian's package is not installed
the test says so and skips (in CI too), as the benchmark itself says what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.cli import main
from benchmarks.ejabberd import MISSING, installed

pytestmark = pytest.mark.skipif(not installed(), reason=MISSING)

SHORT = ["--warmup", "0.5", "--duration", "3", "--drain", "10", "--procs", "1", "--quiet"]


def _admin_url(url: str) -> str:
    """The same server's ``postgres`` database: the benchmark makes its own databases there."""
    _, _, rest = url.partition("://")
    return "postgresql://" + rest.rsplit("/", 1)[0] + "/postgres"


def test_mqchat_and_ejabberd_run_the_same_chat_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    # Given both targets, each given a fresh database on the machine's PostgreSQL, when 2 pairs
    # chat at 20 messages/s with delivery receipts
    out = tmp_path / "result.json"
    args = ["chat", "--broker", "mqchat,ejabberd", "--database", _admin_url(postgres_url)]
    args += ["--users", "6", "--pairs", "2", "--rate", "20", *SHORT, "--json", str(out)]
    assert main([*args, "--workdir", str(tmp_path / "work")]) == 0
    runs: list[dict[str, Any]] = json.loads(out.read_text())

    # Then both ran it whole: every message acknowledged by the server, delivered, and its receipt
    # back, with the database's CPU measured beside each server's
    assert [run["broker"] for run in runs] == ["mqchat", "ejabberd"]
    for run in runs:
        assert run["connections"] == 6
        [step] = run["steps"]
        assert step["sent"] >= 40
        assert step["delivered"] == step["expected"] == step["sent"]
        assert step["errors"] == {}
        for kind in ("sent", "delivered", "receipt"):
            assert step["latencies"][kind]["count"] == step["sent"]
        assert step["broker_cpu"] > 0
        assert step["store_cpu"] is not None and step["store_cpu"] >= 0
