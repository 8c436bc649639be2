from __future__ import annotations

from pathlib import Path

import pytest

from simcore.config import load_settings
from simcore.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SIMTUI_") or key == "MAX_RUN_TIME_MS":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))


def test_defaults_use_the_embedded_database_and_runbook_timeout() -> None:
    settings = load_settings()
    assert settings.database_url is None
    assert settings.max_run_time_ms == 180_000
    assert settings.sandbox == "auto"


def test_runbook_variable_name_for_the_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_RUN_TIME_MS", "300000")
    assert load_settings().max_run_time_ms == 300_000


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("MAX_RUN_TIME_MS", "soon", "MAX_RUN_TIME_MS: Input should be a valid integer"),
        ("MAX_RUN_TIME_MS", "10", "MAX_RUN_TIME_MS: Input should be greater than or equal"),
        ("SIMTUI_SANDBOX", "vm", "SIMTUI_SANDBOX: Input should be 'auto', 'docker' or"),
    ],
)
def test_bad_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(message)


def test_toml_file_is_read_and_environment_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cfg = tmp_path / "simtui.toml"
    cfg.write_text('sandbox = "process"\nmax_run_time_ms = 60000\n')
    monkeypatch.setenv("SIMTUI_CONFIG", str(cfg))
    assert load_settings().sandbox == "process"
    assert load_settings().max_run_time_ms == 60_000
    monkeypatch.setenv("SIMTUI_SANDBOX", "docker")
    assert load_settings().sandbox == "docker"


def test_toml_file_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "simtui.toml"
    monkeypatch.setenv("SIMTUI_CONFIG", str(cfg))
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings()
    cfg.write_text("sandbox = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()
    cfg.write_text('sandbx = "process"\n')
    with pytest.raises(ConfigError, match="unknown setting 'sandbx'"):
        load_settings()


def test_settings_read_the_environment_and_arguments_win(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from simcore.config import Settings

    monkeypatch.setenv("simtui_sandbox", "process")  # any case, as pydantic-settings read it
    monkeypatch.setenv("SIMTUI_ROLLOUT_STEPS", "5,25,100")
    monkeypatch.setenv("MAX_RUN_TIME_MS", "60000")
    monkeypatch.setenv("SIMTUI_DATABASE_URL", "")
    settings = Settings(data_dir=tmp_path)
    assert settings.sandbox == "process"
    assert settings.rollout_steps == (5, 25, 100)
    assert settings.max_run_time_ms == 60_000
    assert settings.database_url is None
    assert Settings(sandbox="docker", max_run_time_ms=5_000).sandbox == "docker"
    assert Settings(max_run_time_ms=5_000).max_run_time_ms == 5_000
    assert Settings(MAX_RUN_TIME_MS=7_000).max_run_time_ms == 7_000
