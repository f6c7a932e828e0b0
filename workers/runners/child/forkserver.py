"""Starting commands processes fast: from a fork server, without the node's ``__main__``."""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

__all__ = ["context", "kill", "main_not_inherited"]

CHILD_MODULES = [
    "config.settings",
    "workers.runners.child.main",
    "workers.pipeline",
    "workers.stores.sql",
]
"""What the fork server imports before its first fork (what a child needs to start)."""


def context() -> multiprocessing.context.ForkServerContext:
    """Children come from a fork server that has imported the child's modules once: a new child
    (a node starting, or a child replaced after it died) is a fork of that single-threaded process,
    ready in milliseconds instead of a second of imports. A process with threads is never forked."""
    forkserver = multiprocessing.get_context("forkserver")
    forkserver.set_forkserver_preload(CHILD_MODULES)
    return forkserver


@contextlib.contextmanager
def main_not_inherited() -> Iterator[None]:
    """Start a child without the parent's ``__main__``: multiprocessing would run the main script
    again in it (all of the node's imports, a second or so, for nothing: the child's code is here).
    ``Process.start`` reads it synchronously, so it is hidden for that call only."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def kill(process: BaseProcess) -> None:
    if process.is_alive():
        process.kill()
    process.join(5)
