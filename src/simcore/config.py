"""Configuration: environment variables first, then an optional TOML file, then defaults.

``SIMTUI_CONFIG`` names the TOML file (default ``$XDG_CONFIG_HOME/simtui/config.toml``); its
keys are the field names below (``database_url = "..."``). ``MAX_RUN_TIME_MS`` keeps the
runbook's name, without the ``SIMTUI_`` prefix.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

from simcore.errors import ConfigError

APP_NAME = "simtui"

_ENV_NAMES = {
    "max_run_time_ms": "MAX_RUN_TIME_MS",
}
ENV_PREFIX = "SIMTUI_"


# The runbook's canary: 5 % of the traffic, then 100 % ("Déployer en staging").
DEFAULT_ROLLOUT_STEPS = (5, 100)
DEFAULT_ROLLOUT_HOOK = "kubectl set env deployment/sdk-service PATCH_ROLLOUT_PERCENTAGE={percent}"
ROLLOUT_HOOK_PLACEHOLDERS = frozenset({"percent", "patch_id", "run_id", "approval_id", "language"})
HOOK_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def default_data_dir() -> Path:
    import platformdirs  # only when SIMTUI_DATA_DIR is not set

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def default_config_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def _from_environment() -> dict[str, Any]:
    """The settings that the environment gives, as pydantic-settings read them before.

    ``SIMTUI_<FIELD>`` (``MAX_RUN_TIME_MS`` for the run time), names in any case; values are
    validated like the arguments. Read here rather than by pydantic-settings, whose import
    alone cost the dashboard's start some 40 ms of CPU, for a dozen variables.
    """
    environ = {key.lower(): value for key, value in os.environ.items()}
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        value = environ.get(_env_name(name).lower())
        if value is not None:
            values[name] = value
    return values


class Settings(BaseModel):
    """The settings: arguments first, then the environment (``SIMTUI_*``), then defaults.

    Constructing one reads the environment, as a pydantic-settings ``BaseSettings`` does.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def __init__(self, **values: Any) -> None:
        given = set(values)
        if "MAX_RUN_TIME_MS" in given:  # the field's other name, as an argument
            given.add("max_run_time_ms")
        env = {k: v for k, v in _from_environment().items() if k not in given}
        super().__init__(**env, **values)

    database_url: str | None = None
    """PostgreSQL URL; unset means the embedded server under ``data_dir``."""
    data_dir: Path = Field(default_factory=default_data_dir)
    """Embedded database, local artifacts and other state."""
    sandbox: Literal["auto", "docker", "process"] = "auto"
    artifacts: str | None = None
    """A folder or ``s3://bucket/prefix``; unset means ``<data_dir>/artifacts``."""
    max_run_time_ms: int = Field(
        default=180_000,
        ge=1_000,
        le=3_600_000,
        validation_alias=AliasChoices("MAX_RUN_TIME_MS", "max_run_time_ms"),
    )
    api_url: str | None = None
    token: str | None = None
    require_distinct_approver: bool = True
    """Four eyes: the person who launched a run may not approve its patch."""
    db_pool_max: int = Field(default=8, ge=1, le=200)
    db_connect_timeout_s: int = Field(default=5, ge=1, le=120)
    # The environment gives "5,25,100"; the validator below splits it.
    rollout_steps: tuple[int, ...] = DEFAULT_ROLLOUT_STEPS
    """Canary rollout percentages in order, ending at 100 (``SIMTUI_ROLLOUT_STEPS=5,25,100``)."""
    rollout_hook: str = DEFAULT_ROLLOUT_HOOK
    """Command run at each rollout step, split like a shell line but run without a shell;
    placeholders: {percent} {patch_id} {run_id} {approval_id} {language}."""
    rollout_hook_dry_run: bool = True
    """Print the hook's command instead of running it (the safe default on a laptop)."""
    rollout_hook_timeout_s: float = Field(default=60.0, gt=0, le=3600)
    canary_metrics_url: str | None = None
    """Prometheus text endpoint exposing ``patch_success_rate`` for the canary."""

    @field_validator("rollout_steps", mode="before")
    @classmethod
    def _split_steps(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if not all(p.isdigit() for p in parts):
                raise ValueError("expected comma-separated whole percentages, e.g. 5,25,100")
            return tuple(int(p) for p in parts)
        return value

    @field_validator("rollout_steps")
    @classmethod
    def _check_steps(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps:
            raise ValueError("at least one step (100) is needed")
        if any(not 1 <= s <= 100 for s in steps):
            raise ValueError("each step must be from 1 to 100")
        if any(b <= a for a, b in itertools.pairwise(steps)):
            raise ValueError("steps must increase")
        if steps[-1] != 100:
            raise ValueError("the last step must be 100")
        return steps

    @field_validator("rollout_hook")
    @classmethod
    def _check_hook(cls, template: str) -> str:
        try:
            argv = shlex.split(template)
        except ValueError as exc:
            raise ValueError(f"cannot split the command: {exc}") from None
        if not argv:
            raise ValueError("the command is empty")
        unknown = {m for a in argv for m in HOOK_PLACEHOLDER.findall(a)} - ROLLOUT_HOOK_PLACEHOLDERS
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{sorted(unknown)[0]}}} (known: "
                + ", ".join(f"{{{p}}}" for p in sorted(ROLLOUT_HOOK_PLACEHOLDERS))
                + ")"
            )
        return template

    @field_validator(
        "database_url", "artifacts", "api_url", "token", "canary_metrics_url", mode="before"
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @property
    def artifacts_location(self) -> str:
        return self.artifacts or str(self.data_dir / "artifacts")


def _env_name(field: str) -> str:
    return _ENV_NAMES.get(field, f"SIMTUI_{field.upper()}")


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # only when there is a file

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; a bad value raises ConfigError naming the variable and the reason."""
    explicit = os.environ.get("SIMTUI_CONFIG")
    path = Path(explicit) if explicit else default_config_file()
    file_values: dict[str, Any] = {}
    if explicit or path.exists():
        file_values = _read_toml(path)
        unknown = sorted(set(file_values) - set(Settings.model_fields))
        if unknown:
            raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    # Environment wins over the file: only pass file values the environment does not set.
    init = {k: v for k, v in file_values.items() if _env_name(k) not in os.environ}
    init.update(overrides)
    try:
        return Settings(**init)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = str(err["loc"][0]) if err["loc"] else "settings"
        source = _env_name(field) if _env_name(field) in os.environ else field
        raise ConfigError(f"{source}: {err['msg']}") from None
