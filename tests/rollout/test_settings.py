"""The rollout's settings: the plan of steps and the hook's command template."""

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


def test_defaults_are_the_runbook_canary_as_a_dry_run() -> None:
    settings = load_settings()
    assert settings.rollout_steps == (5, 100)
    assert settings.rollout_hook == (
        "kubectl set env deployment/sdk-service PATCH_ROLLOUT_PERCENTAGE={percent}"
    )
    assert settings.rollout_hook_dry_run and settings.canary_metrics_url is None


def test_steps_from_the_environment_or_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SIMTUI_ROLLOUT_STEPS", " 5, 25,100")
    assert load_settings().rollout_steps == (5, 25, 100)
    monkeypatch.delenv("SIMTUI_ROLLOUT_STEPS")
    cfg = tmp_path / "simtui.toml"
    cfg.write_text("rollout_steps = [1, 10, 100]\n")
    monkeypatch.setenv("SIMTUI_CONFIG", str(cfg))
    assert load_settings().rollout_steps == (1, 10, 100)


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("SIMTUI_ROLLOUT_STEPS", "5,50", "the last step must be 100"),
        ("SIMTUI_ROLLOUT_STEPS", "50,5,100", "steps must increase"),
        ("SIMTUI_ROLLOUT_STEPS", "0,100", "each step must be from 1 to 100"),
        ("SIMTUI_ROLLOUT_STEPS", "5;100", "expected comma-separated whole percentages"),
        ("SIMTUI_ROLLOUT_HOOK", "kubectl set env X={percentage}", "unknown placeholder"),
        ("SIMTUI_ROLLOUT_HOOK", "kubectl 'unclosed", "cannot split the command"),
        ("SIMTUI_ROLLOUT_HOOK", "   ", "the command is empty"),
    ],
)
def test_a_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, message: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=f"^{var}: Value error, {message}"):
        load_settings()
