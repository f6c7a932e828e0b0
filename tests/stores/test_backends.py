"""How the backends are laid out and chosen: the same modules in each, and a backend (and its
optional driver) imported only when a URL chooses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import workers.stores
from workers.stores import open_store

_STORES = Path(workers.stores.__file__).parent
_CONCERNS = {
    *("base", "schema", "store"),
    *(
        "users",
        "messages",
        "receipts",
        "groups",
        "push",
        "media",
        "contacts",
        "profiles",
        "devices",
        "deletion",
        "carriers",
        "reactions",
        "replies",
        "forwards",
    ),
    *("facts", "edits", "hides"),  # changes users make to sent messages
    "group_settings",  # group settings, invite links and join requests
    "timers",  # disappearing messages
    *("chats", "chat_rows"),  # the chat list and read state
    "search",  # full-text search
    "views",  # messages as a user sees them now (history, search, chat list)
    *("history", "retention"),  # history per conversation, retention
    *("privacy", "privacy_data"),  # privacy settings and group invitations
    *("blocks", "reports"),  # blocking users, reporting them to the operators
    "mqtt_sessions",  # persistent MQTT sessions (cursors acknowledged per device)
}


def _modules(package: str) -> set[str]:
    return {path.stem for path in (_STORES / package).glob("*.py") if path.stem != "__init__"}


def test_each_backend_has_a_module_of_the_same_name_for_each_concern() -> None:
    assert _modules("sql") & _modules("mongo") == _CONCERNS
    assert _modules("sql") - _CONCERNS == {
        "driver",
        "merged",
        "sqlite_checkpoint",
        "sqlite_layout",
        "search_index",
        "statistics",
    }
    assert _modules("mongo") == _CONCERNS


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_a_sqlite_store_imports_neither_pymongo_nor_psycopg(tmp_path: Path) -> None:
    # Given a fresh interpreter (the optional extras may be installed: what matters is that
    # nothing on the default path imports them)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code = (
        "import sys\n"
        "from workers.stores import open_store\n"
        f"store = open_store({url!r})\n"
        "store.create_schema()\n"
        "store.close()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'pymongo', 'bson', 'psycopg'}))\n"
        "print(sorted(m for m in sys.modules if m.startswith('workers.stores.mongo')))\n"
    )

    done = _run(code)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]"]


def test_a_mongodb_url_without_pymongo_says_which_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['pymongo'] = None\n"  # as if the extra were not installed
        "from workers.stores import open_store\n"
        "try:\n"
        "    open_store('mongodb://127.0.0.1:1/none')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )

    done = _run(code)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "the MongoDB store needs pymongo: pip install 'mqchat[mongo]'"


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="no store for URL scheme 'redis'"):
        open_store("redis://127.0.0.1/0")
