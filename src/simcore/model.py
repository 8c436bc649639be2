"""Pydantic models shared by the engine, the API, the CLI and the dashboard.

The names follow the runbook (``sdk_simulations``, ``sdk_simulation_runs``...) so that a row
read with psql and an object printed by the CLI speak the same language.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from simcore import safe_text
from simcore.enums import (
    ApprovalStatus as ApprovalStatus,
    ErrorKind as ErrorKind,
    JournalAction as JournalAction,
    PatchSeverity as PatchSeverity,
    PatchSource as PatchSource,
    Role as Role,
    RunStatus as RunStatus,
    SdkLanguage as SdkLanguage,
    TenantType as TenantType,
)
from simcore.errors import InvalidInput

# defer_build: pydantic builds a model's validator on its first use rather than at import.
# Scenario, Simulation, Run and SimulationCreate are not used by every process that imports
# this module (the dashboard's first screen uses none of them), and building the four costs a
# start-up some 15 ms. Validation is the same either way.


class Scenario(BaseModel):
    """A fault-injection scenario exactly as the runbook writes it.

    Unknown keys are refused (a typo such as ``error_frequence`` must not silently fall back to
    a default), and every bound is checked so a run cannot be launched with nonsense.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False, defer_build=True)

    error: ErrorKind
    error_frequency: float = Field(ge=0.0, le=1.0)
    latency_ms: int = Field(ge=0, le=600_000)
    total_requests: int = Field(ge=1, le=100_000)
    success_threshold: float = Field(ge=0.0, le=1.0)
    latency_jitter_ms: int = Field(default=0, ge=0, le=600_000)
    timeout_ms: int | None = Field(default=None, ge=1, le=600_000)
    max_attempts: int | None = Field(default=None, ge=1, le=10)

    @field_validator("error_frequency", "success_threshold", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        # JSON true/false would otherwise be read as 1.0/0.0.
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        return value

    @classmethod
    def parse(cls, data: Any) -> Scenario:
        """Validate a scenario from a dict or JSON text; raise InvalidInput naming the field."""
        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    "scenario", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
                ) from None
        if not isinstance(data, dict):
            raise InvalidInput("scenario", "must be a JSON object")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidInput.from_validation("scenario", exc) from None

    def to_json(self) -> dict[str, Any]:
        """The scenario as stored in ``sdk_simulations.scenario`` (defaults left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


PATCH_SLUG_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,79}$"
MAX_PATCH_CODE = 65536
"""Characters of ``patch_code`` or ``rollback_code`` (the registry's CHECK constraints)."""


class Patch(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: UUID
    slug: str | None = None
    description: str = ""
    sdk_language: SdkLanguage
    error_signature: str
    patch_code: str
    rollback_code: str = ""
    version: str = "1.0.0"
    severity: PatchSeverity = PatchSeverity.MEDIUM
    source: PatchSource = PatchSource.OPS
    active: bool = True
    sandbox_tested: bool = False
    created_at: datetime | None = None


class Simulation(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    id: UUID
    tenant_type: TenantType
    tenant_id: str
    name: str
    description: str = ""
    sdk_language: SdkLanguage
    scenario: Scenario
    patch_reference: UUID | None = None
    created_by: str = "system"
    created_at: datetime | None = None


class Run(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)

    id: UUID
    simulation_id: UUID
    tenant_type: TenantType
    tenant_id: str
    idempotency_key: str | None = None
    seed: int
    status: RunStatus
    patch_id: UUID | None = None
    metrics: dict[str, Any] | None = None
    reasons: list[str] = Field(default_factory=list)
    artifact_s3_key: str | None = None
    run_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    worker_id: str | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    max_attempts: int = 3
    cancel_requested: bool = False
    error_message: str | None = None
    sandbox_backend: str | None = None
    simulator_version: str | None = None
    launched_by: str = "system"
    log_lines: int = 0
    log_bytes: int = 0
    log_truncated: bool = False
    artifact_error: str | None = None

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return int((self.completed_at - self.started_at).total_seconds() * 1000)


class SimulationCreate(BaseModel):
    """What a user gives to create a simulation (API body, CLI flags, TUI form)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    tenant_type: TenantType = TenantType.INTERNAL
    tenant_id: str = Field(
        default="default", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
    )
    sdk_language: SdkLanguage
    scenario: Scenario
    patch_reference: UUID | None = None

    @field_validator("name", "description")
    @classmethod
    def _no_control_characters(cls, value: str) -> str:
        # Shown in terminals: an escape sequence in a name would drive the reader's screen.
        problem = safe_text.control_character(value)
        if problem is not None:
            raise ValueError(problem)
        return value
