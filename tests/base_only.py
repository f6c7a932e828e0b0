"""Run the ``mqchat`` command as a fresh install has it: only the base dependencies importable.

The test venv has every extra installed, so an optional backend imported on the default path
would go unnoticed there. ``python -m tests.base_only ARGS…`` runs ``mqchat ARGS…`` with every
installed module that the base dependencies of ``pyproject.toml`` do not pull in (the extras, the
dev tools) hidden from import, as if it were not installed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata as md
import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OURS = {"broker", "workers", "client_sdk", "config", "tests"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def base_distributions() -> set[str]:
    """The distributions the base dependencies pull in, following the extras they ask for."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names: set[str] = {_norm(project["name"])}
    seen: set[tuple[str, str]] = set()
    todo = [(Requirement(r), "") for r in project["dependencies"]]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = _norm(req.name)
        for wanted in ["", *sorted(req.extras)]:
            if (name, wanted) in seen:
                continue
            seen.add((name, wanted))
            names.add(name)
            try:
                todo.extend((Requirement(r), wanted) for r in md.requires(name) or [])
            except md.PackageNotFoundError:
                continue
    return names


def hidden_modules() -> set[str]:
    """Top-level modules installed here that a fresh install of mqchat would not have."""
    base = base_distributions()
    hidden = set()
    for module, dists in md.packages_distributions().items():
        if module.startswith("_") or module in sys.stdlib_module_names or module in OURS:
            continue
        if not any(_norm(d) in base for d in dists):
            hidden.add(module)
    return hidden


class _Hide(importlib.abc.MetaPathFinder):
    def __init__(self, hidden: set[str]) -> None:
        self.hidden = hidden

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.partition(".")[0] in self.hidden:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def main(argv: list[str]) -> int:
    hidden = hidden_modules()
    sys.meta_path.insert(0, _Hide(hidden))
    for name in [name for name in sys.modules if name.partition(".")[0] in hidden]:
        del sys.modules[name]  # packaging, imported above: mqchat must not find it loaded either
    from broker.cli import main as mqchat

    return mqchat(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
