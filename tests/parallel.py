"""What the parallel run (pytest-xdist, ``-n`` in scripts/test) needs to stay correct.

Tests are spread over worker processes one by one (``--dist loadgroup``), except:

- the tests marked ``exclusive``, which scripts/test runs afterwards, alone: those that stop a
  service the others use (the fault suite stops the machine's PostgreSQL and Redis), and every
  test of a cluster of processes (``tests.cluster``): they flush Redis db 13, share the machine's
  RabbitMQ queues, and their timings (a node's time to live of 2 s) do not survive a machine
  busy with other tests;
- the browser tests, which go to one worker, one after the other: each page is a Chromium, and
  several at once on a small machine starve the node they talk to;
- the tests of a module with a module-scoped fixture (a wheel built into a venv, a SeaweedFS or
  a node started once for the module), which go to one worker so that it is made once.

Each worker gets a PostgreSQL database of its own (``test_gw0``, ...), so that tests in different
workers never meet in the same tables. Without xdist only the ``exclusive`` marks are added.
"""

from __future__ import annotations

import os

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
"""``gw0``, ``gw1``, ... in a worker of a parallel run; empty otherwise."""

BROWSERS = "browsers"


def group_for_parallel_run(items: list[pytest.Item]) -> None:
    for item in items:
        if _uses_a_cluster(item):
            item.add_marker(pytest.mark.exclusive)
        elif WORKER:
            group = _group(item)
            if group:
                _join_group(item, group)


def _join_group(item: pytest.Item, group: str) -> None:
    """End the test's id in ``@<group>``: all that ``--dist loadgroup`` schedules by. (The
    ``xdist_group`` mark has pytest-xdist 3.8 do it by setting ``Item._nodeid``, which pytest 9 no
    longer reads: the groups were silently ignored, each test went out alone, browsers ran side
    by side and a module's fixture was made again in every worker.)"""
    named = item.nodeid + "@" + group
    if isinstance(getattr(item, "_id", None), str | None):  # pytest 8
        setattr(item, "_nodeid", named)  # noqa: B010
    else:  # pytest 9
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(named)


def _uses_a_cluster(item: pytest.Item) -> bool:
    module = getattr(item, "module", None)
    return module is not None and any(
        getattr(value, "__module__", None) == "tests.cluster" for value in vars(module).values()
    )


def _group(item: pytest.Item) -> str | None:
    if item.path.parent.name == "e2e":
        return BROWSERS
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is not None and any(
        definitions[-1].scope == "module" for definitions in fixtures.name2fixturedefs.values()
    ):
        return item.nodeid.split("::")[0]
    return None


def worker_database(url: str) -> str:
    """``url`` itself, or in a worker the same server's database ``<name>_<worker>``, created when
    missing (it is kept, as the main one is, for the next run)."""
    if not WORKER:
        return url
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    base = make_url(url)
    name = f"{base.database}_{WORKER}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if exists is None:
                try:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                except DBAPIError:  # another run on this machine created it meanwhile
                    created = conn.execute(
                        text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                    ).first()
                    if created is None:
                        raise
    finally:
        admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)
