"""Settings: defaults need no file, the example files are valid, errors name the field."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from config.settings import Settings, SettingsError, load_settings

CONFIG = Path(__file__).resolve().parents[2] / "config"


def test_the_single_node_example_documents_exactly_the_defaults() -> None:
    example = load_settings(CONFIG / "single-node.toml").model_dump(exclude={"node_id", "data_dir"})
    defaults = Settings().model_dump(exclude={"node_id", "data_dir"})
    assert example == defaults
    assert load_settings(CONFIG / "single-node.toml").data_dir == Settings().data_dir


def test_the_production_example_is_valid_but_for_its_certificate_paths() -> None:
    data = tomllib.loads((CONFIG / "production.toml").read_text())
    with pytest.raises(SettingsError, match=r"broker\.certfile"):
        load_settings(CONFIG / "production.toml")
    del data["broker"]["certfile"], data["broker"]["keyfile"]
    settings = Settings.model_validate(data)
    assert settings.store_url.startswith("postgresql://")


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[broker]\nmqtt_port = 70000\n", "broker.mqtt_port"),
        ("[broker]\nunknown = 1\n", "broker.unknown"),
        ("[groups]\nmax_members = 1\n", "groups.max_members"),
        ("node_id = 'has space'\n", "node_id"),
        ("[broker]\ncertfile = '/nonexistent.pem'\n", "broker"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=field.replace(".", r"\.")):
        load_settings(path)


def test_a_file_with_the_old_sessions_section_is_told_its_new_name(tmp_path: Path) -> None:
    # Given a settings file written before [sessions] became [locator]
    path = tmp_path / "old.toml"
    path.write_text('[sessions]\nurl = "redis://127.0.0.1:6379/0"\n')

    # When it is loaded, Then one line names the new section
    with pytest.raises(SettingsError) as error:
        load_settings(path)
    assert str(error.value) == (
        "invalid settings: sessions: this section is now [locator] (which node each user is on)"
    )


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[broker\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(bad)


def test_the_event_loop_setting_picks_the_loop_of_mqchat_run(tmp_path: Path) -> None:
    import asyncio

    import uvloop

    from broker.cli import loop_factory

    assert loop_factory("asyncio") is None  # asyncio.Runner's default: the standard library's
    factory = loop_factory("uvloop")
    assert factory is uvloop.new_event_loop
    loop = factory()
    try:
        assert isinstance(loop, asyncio.AbstractEventLoop)
    finally:
        loop.close()
    bad = tmp_path / "loop.toml"
    bad.write_text('[broker]\nevent_loop = "trio"\n')
    with pytest.raises(SettingsError, match=r"broker\.event_loop"):
        load_settings(bad)
