"""Request and response bodies of the HTTP API.

Request bodies refuse unknown fields, so a typo (``tenant_type`` for ``tenantType``) is a 422
naming the field instead of a silently ignored value. The create body is camelCase because the
runbook's ``curl`` writes it so; the other bodies keep the runbook's snake_case
(``approval_notes``, the scenario keys). Every string that reaches PostgreSQL is checked for
NUL characters here: the database refuses them, and that must be a 422, not a 500.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)

from simcore import safe_text
from simcore.approvals import MAX_NOTES, Approval
from simcore.journal import Entry, Verification
from simcore.model import (
    MAX_PATCH_CODE,
    PATCH_SLUG_PATTERN,
    Patch,
    PatchSeverity,
    Run,
    Scenario,
    SdkLanguage,
    Simulation,
    TenantType,
)
from simcore.service import RUNNABLE_LANGUAGES

TENANT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
SLUG_PATTERN = PATCH_SLUG_PATTERN
PATCH_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
MAX_CODE = MAX_PATCH_CODE


def _storable(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    problem = safe_text.control_character(value)
    if problem is not None:
        raise ValueError(problem)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (a lone surrogate was found)") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
"""A string PostgreSQL can store. The JSON Schema does not say "no NUL": a pattern on every
free-text field costs every client's validator more than a NUL, refused with a 422, is worth."""


def _visible(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain visible text, not only blanks")
    return value


NonBlankText = Annotated[
    str,
    Field(min_length=1, description="Must contain visible text."),
    AfterValidator(_storable),
    AfterValidator(_visible),
]
"""What the service means by ``text.strip()`` being true. Said in words, not as a pattern:
a pattern on a 64 KiB field costs every client's validator far more than it is worth."""

JSON_SAFE_MAX = 2**53 - 1
"""The largest integer every JSON parser reads exactly (JavaScript's Number.MAX_SAFE_INTEGER)."""


def _runnable(language: SdkLanguage) -> SdkLanguage:
    if language not in RUNNABLE_LANGUAGES:
        raise ValueError(
            f"no SDK runner for {language.value!r} yet (available: {', '.join(RUNNABLE_LANGUAGES)})"
        )
    return language


RunnableLanguage = Annotated[
    SdkLanguage,
    AfterValidator(_runnable),
    WithJsonSchema({"type": "string", "enum": [lang.value for lang in RUNNABLE_LANGUAGES]}),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# -- requests ---------------------------------------------------------------------------------


class SimulationCreateBody(_Body):
    """``POST /api/simulator``, exactly as the runbook's ``curl`` sends it."""

    tenant_type: TenantType | None = Field(
        default=None,
        alias="tenantType",
        description="Default: the token's tenant type, else internal.",
    )
    tenant_id: str | None = Field(
        default=None,
        alias="tenantId",
        min_length=1,
        max_length=200,
        pattern=TENANT_ID_PATTERN,
        description="Default: the token's tenant id, else 'default'.",
    )
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=2000)
    sdk_language: RunnableLanguage = Field(alias="sdkLanguage")
    scenario: Scenario
    patch_reference: UUID | None = Field(
        default=None,
        alias="patchReference",
        description="A patch id from GET /api/simulator/patches; null runs the baseline only.",
    )


CAMEL_FIELDS = {
    "tenant_type": "tenantType",
    "tenant_id": "tenantId",
    "sdk_language": "sdkLanguage",
    "patch_reference": "patchReference",
}
"""snake_case names people type by habit, with the camelCase name the create body uses."""


def _whole_number(value: Any) -> Any:
    # JSON says 12345.0 is the integer 12345; "12345" and true are not numbers.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class RunBody(_Body):
    seed: Annotated[int | None, BeforeValidator(_whole_number)] = Field(
        default=None,
        ge=0,
        # The engine takes seeds up to 2**63 - 1, but a JSON number past 2**53 - 1 is rounded
        # by most parsers on the way: such a seed would silently become another one.
        le=JSON_SAFE_MAX,
        strict=True,
        description=(
            "Same seed, same run, byte for byte. Left out, the server draws one (the run "
            "shows it); a retry with the same Idempotency-Key and no seed returns the first run."
        ),
    )


class DecisionBody(_Body):
    approval_notes: Text | None = Field(default=None, max_length=MAX_NOTES)


class RejectionBody(_Body):
    approval_notes: NonBlankText = Field(
        max_length=MAX_NOTES, description="Why, in visible text: a rejection always says it."
    )


class PatchCreateBody(_Body):
    sdk_language: SdkLanguage
    error_signature: Text = Field(min_length=1, max_length=200)
    patch_code: NonBlankText = Field(
        max_length=MAX_CODE,
        description="The body of a function of `ctx`; python and node bodies must compile.",
    )
    rollback_code: Text = Field(
        default="",
        max_length=MAX_CODE,
        description="The body of a function of `ctx` that restores the client; must compile.",
    )
    slug: str | None = Field(default=None, pattern=SLUG_PATTERN)
    description: Text = Field(default="", max_length=2000)
    version: Text = Field(default="1.0.0", min_length=1, max_length=50)
    severity: PatchSeverity = PatchSeverity.MEDIUM
    source: Literal["ops", "sira", "crowd"] = "ops"


# -- responses --------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_input.")
    message: str
    field: str | None = Field(default=None, description="The offending field or parameter.")
    hook: dict[str, Any] | None = Field(
        default=None,
        description="hook_failed only: the rollout hook's argv, exit status and output.",
    )


class ErrorBody(BaseModel):
    error: ErrorDetail


class JournalEntryOut(BaseModel):
    id: int
    run_id: UUID | None
    simulation_id: UUID | None
    approval_id: UUID | None
    action: str
    actor: str
    details: dict[str, Any]
    prev_hash: str
    hash: str
    created_at: datetime

    @classmethod
    def of(cls, entry: Entry) -> JournalEntryOut:
        return cls(
            id=entry.id,
            run_id=entry.run_id,
            simulation_id=entry.simulation_id,
            approval_id=entry.approval_id,
            action=entry.action,
            actor=entry.actor,
            details=entry.details,
            prev_hash=entry.prev_hash,
            hash=entry.hash,
            created_at=entry.created_at,
        )

    def to_entry(self) -> Entry:
        return Entry(
            self.id,
            self.run_id,
            self.simulation_id,
            self.approval_id,
            self.action,
            self.actor,
            self.details,
            self.prev_hash,
            self.hash,
            self.created_at,
        )


class SimulationOut(BaseModel):
    simulation: Simulation


class SimulationList(BaseModel):
    simulations: list[Simulation]


class RunOut(BaseModel):
    run: Run


class RunDetailOut(BaseModel):
    """The runbook's "Poll status" answer: ``{"run": {...}}``, with the journal beside it."""

    run: Run
    simulation: Simulation
    journal: list[JournalEntryOut]


class RunList(BaseModel):
    runs: list[Run]


class LogLine(BaseModel):
    seq: int
    line: str


class LogPage(BaseModel):
    lines: list[LogLine]
    next_after: int = Field(description="Pass as ?after= to get the lines that follow.")


class PatchOut(BaseModel):
    patch: Patch


class PatchList(BaseModel):
    patches: list[Patch]


class ApprovalOut(BaseModel):
    approval: Approval


class ApprovalList(BaseModel):
    approvals: list[Approval]


class VerificationOut(BaseModel):
    ok: bool
    checked: int
    first_break: int | None
    reason: str
    message: str

    @classmethod
    def of(cls, v: Verification) -> VerificationOut:
        return cls(
            ok=v.ok,
            checked=v.checked,
            first_break=v.first_break,
            reason=v.reason,
            message=v.describe(),
        )


class PrincipalOut(BaseModel):
    identity: str
    role: str
    tenant_type: TenantType | None
    tenant_id: str | None
    actor: str


class WhoAmI(BaseModel):
    principal: PrincipalOut


class Health(BaseModel):
    status: Literal["ok", "ready"]
    migrations: int | None = None


class ReasonBody(_Body):
    reason: NonBlankText = Field(max_length=4000, description="Why: kept in the journal.")


class ObservationBody(_Body):
    success_rate: float = Field(ge=0.0, le=1.0, description="patch_success_rate, 0..1")
    requests: int | None = Field(default=None, ge=0, le=10**12)
