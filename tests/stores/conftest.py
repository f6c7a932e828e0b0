"""The store fixture: every store test runs on SQLite and on the PostgreSQL server of this machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import unique
from workers.stores import Store, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    opened = open_store(url)
    opened.create_schema()
    try:
        yield opened
    finally:
        opened.close()


def users(store: Store, *names: str) -> list[str]:
    made = []
    for name in names:
        user = unique(name)
        store.create_user(user, now=1.0)
        made.append(user)
    return made
