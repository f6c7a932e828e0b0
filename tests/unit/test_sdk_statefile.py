"""The cursor file lets a restarted app resume where it stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client_sdk._statefile import StateFile


def test_a_missing_file_means_start_from_the_beginning(tmp_path: Path) -> None:
    # Given no state file yet, When it is loaded, Then the cursor is 0
    assert StateFile(tmp_path / "state.json").load() == 0


def test_a_saved_cursor_is_loaded_by_the_next_run(tmp_path: Path) -> None:
    # Given a run that saved cursor 42
    path = tmp_path / "state.json"
    StateFile(path).save(42)

    # When the next run loads it
    cursor = StateFile(path).load()

    # Then it resumes at 42, and no temporary file is left behind
    assert cursor == 42
    assert json.loads(path.read_text()) == {"cursor": 42}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_the_cursor_never_moves_back(tmp_path: Path) -> None:
    # Given cursor 10 saved
    path = tmp_path / "state.json"
    state = StateFile(path)
    state.save(10)

    # When an older cursor is saved afterwards
    state.save(7)

    # Then the file still says 10
    assert StateFile(path).load() == 10


@pytest.mark.parametrize(
    "content", ["not json", "[]", '{"cursor": -1}', '{"cursor": "5"}', '{"cursor": true}']
)
def test_an_unreadable_file_is_an_error_not_a_silent_restart(tmp_path: Path, content: str) -> None:
    # Given a corrupt state file
    path = tmp_path / "state.json"
    path.write_text(content)

    # When it is loaded, Then ValueError names the file (starting over would replay every event)
    with pytest.raises(ValueError, match="state file"):
        StateFile(path).load()
