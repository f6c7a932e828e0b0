"""Fixtures of the end-to-end tests: real browsers (Selenium and Debian's Chromium)."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness import need

if TYPE_CHECKING:
    from tests.e2e.browser import Page


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[[str], Page]]:
    """Opens a browser per person (``browser("alice")``); all are closed after the test."""
    need(
        bool(shutil.which("chromedriver") and shutil.which("chromium")),
        "Debian's chromium and chromium-driver are not installed",
    )
    need(importlib.util.find_spec("selenium") is not None, "selenium is not installed (the dev extra)")
    from tests.e2e.browser import Page

    prefix = "_".join(request.node.name.removeprefix("test_").split("_")[:3])
    pages: list[Page] = []

    def launch(name: str) -> Page:
        page = Page(name, tmp_path, prefix=prefix)
        pages.append(page)
        return page

    yield launch
    for page in pages:
        page.close()
