from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import RunningNode, node_settings
from tests.parallel import group_for_parallel_run, worker_database

POSTGRES_URL = os.environ.get("MQCHAT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RunningNode]:
    """A real single node (broker, ingest, workers, SQLite) on free ports."""
    running = RunningNode(node_settings(tmp_path)).start()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(params=["3.1.1", "5"], ids=["mqtt311", "mqtt5"])
def mqtt_version(request: pytest.FixtureRequest) -> str:
    """The MQTT version the SDK speaks: a test taking this runs once per version."""
    return str(request.param)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    from tests.harness import need

    need(_reachable("127.0.0.1", 5432), "PostgreSQL is not running on 127.0.0.1:5432")
    return worker_database(POSTGRES_URL)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups to schedule by
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    group_for_parallel_run(items)
