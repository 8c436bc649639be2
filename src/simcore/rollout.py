"""After approval: the staged canary rollout, as one state machine.

::

    pending --approve--> approved --stage--> staged --promote--> staged (next step)
       |                                       |  \\--promote--> deployed (the step 100 %)
       +--reject--> rejected                   |                   |
                                               +--rollback--> rolled_back <--rollback--+

``TRANSITIONS`` is the only table of what may follow what: ``approvals.decide`` checks
approve/reject against it, this module stage/promote/rollback, and migration 0005 keeps a
copy (``sdk_approval_transitions``) from which a trigger refuses an illegal change made by
hand in psql; tests/rollout asserts that the copy is equal.

The percentage only moves through the plan (``Settings.rollout_steps``, default the runbook's
5 then 100), which is written on the approval when it is staged, so that a change of
configuration mid-rollout never moves a patch to a step off its plan.

Each step runs the rollout hook (``Settings.rollout_hook``, e.g. the runbook's ``kubectl set
env deployment/sdk-service PATCH_ROLLOUT_PERCENTAGE={percent}``) before the new state is
committed: a failed hook leaves the state where it was and is journaled as an ``error``.

The canary rule reads observations of the patch's production success rate (scraped from a
Prometheus text endpoint, or posted) and answers promote, wait or roll back with the figures
behind the answer. Time is always passed in (``now``) so that tests run on virtual time.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from simcore import journal, safe_text
from simcore.auth import Principal
from simcore.enums import ApprovalStatus, JournalAction, Role
from simcore.errors import ConfigError, Conflict, Forbidden, InvalidInput, NotFound, SimError

if TYPE_CHECKING:  # the dashboard's first screen imports this module: no driver, no pydantic
    import httpx
    import psycopg
    from pydantic import TypeAdapter

    from simcore.config import Settings
    from simcore.store import Database

MAX_REASON = 4000
MAX_HOOK_OUTPUT = 2000
"""Characters of the hook's output kept in the journal (the start, where errors are)."""
MAX_METRICS_BYTES = 4 * 1024 * 1024
METRICS_TIMEOUT_S = 10.0
METRICS_CONNECT_TIMEOUT_S = 5.0
SUCCESS_RATE_METRIC = "patch_success_rate"
REQUESTS_METRIC = "patch_requests_total"
PATCH_LABELS = ("patch_id", "patch")


def utcnow() -> datetime:
    return datetime.now(UTC)


# -- the state machine ------------------------------------------------------------------------


class RolloutAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    STAGE = "stage"
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class Transition:
    source: ApprovalStatus
    target: ApprovalStatus
    action: RolloutAction


_S = ApprovalStatus
_A = RolloutAction

TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.PENDING, _S.APPROVED, _A.APPROVE),
    Transition(_S.PENDING, _S.REJECTED, _A.REJECT),
    Transition(_S.APPROVED, _S.STAGED, _A.STAGE),
    Transition(_S.STAGED, _S.STAGED, _A.PROMOTE),
    Transition(_S.STAGED, _S.DEPLOYED, _A.PROMOTE),
    Transition(_S.STAGED, _S.ROLLED_BACK, _A.ROLLBACK),
    Transition(_S.DEPLOYED, _S.ROLLED_BACK, _A.ROLLBACK),
)

IN_ROLLOUT = (ApprovalStatus.STAGED, ApprovalStatus.DEPLOYED)

_PAST = {
    _A.APPROVE: "approved",
    _A.REJECT: "rejected",
    _A.STAGE: "staged",
    _A.PROMOTE: "promoted",
    _A.ROLLBACK: "rolled back",
}


def actions_from(status: ApprovalStatus) -> tuple[RolloutAction, ...]:
    """What may be done from ``status``, in the table's order, without repeats."""
    seen: dict[RolloutAction, None] = {}
    for t in TRANSITIONS:
        if t.source is status:
            seen[t.action] = None
    return tuple(seen)


def allowed(source: ApprovalStatus, target: ApprovalStatus) -> bool:
    return any(t.source is source and t.target is target for t in TRANSITIONS)


def check(status: ApprovalStatus, action: RolloutAction, subject: str) -> None:
    """Raise Conflict, with the reason and what is possible instead, if the table refuses."""
    if action in actions_from(status):
        return
    possible = actions_from(status)
    tail = (
        f"from {status.value}: {', '.join(a.value for a in possible)}"
        if possible
        else f"{status.value} is final"
    )
    verb = "is" if status is ApprovalStatus.PENDING else "is already"
    raise Conflict(f"{subject} {verb} {status.value}: it cannot be {_PAST[action]} ({tail})")


def next_state(
    status: ApprovalStatus,
    percent: int,
    steps: Sequence[int],
    action: RolloutAction,
    subject: str = "the patch",
) -> tuple[ApprovalStatus, int]:
    """The state ``action`` leads to from (``status``, ``percent``) on the plan ``steps``."""
    check(status, action, subject)
    if action is RolloutAction.APPROVE:
        target, to_percent = ApprovalStatus.APPROVED, 0
    elif action is RolloutAction.REJECT:
        target, to_percent = ApprovalStatus.REJECTED, 0
    elif action is RolloutAction.STAGE:
        target, to_percent = ApprovalStatus.STAGED, steps[0]
    elif action is RolloutAction.PROMOTE:
        later = [s for s in steps if s > percent]
        # 100 % of the traffic is what "deployed" means; the plan's last step is always 100.
        if not later or later[0] == 100:
            target, to_percent = ApprovalStatus.DEPLOYED, 100
        else:
            target, to_percent = ApprovalStatus.STAGED, later[0]
    else:
        target, to_percent = ApprovalStatus.ROLLED_BACK, 0
    assert allowed(status, target), (status, target)
    return target, to_percent


def require_ops(principal: Principal, what: str) -> None:
    if principal.role is not Role.OPS:
        raise Forbidden(f"role {principal.role.value} may not {what}: the rollout needs ops")


_JOURNALED_STATES = frozenset(s.value for s in ApprovalStatus if s is not ApprovalStatus.PENDING)


def replay(entries: Iterable[journal.Entry]) -> tuple[ApprovalStatus, int]:
    """The (status, percentage) an approval's journal entries lead to, checked step by step.

    Entries of other kinds (an ``error`` for a failed hook) change nothing, as in the table.
    """
    status, percent = ApprovalStatus.PENDING, 0
    for entry in entries:
        if entry.action not in _JOURNALED_STATES:
            continue
        target = ApprovalStatus(entry.action)
        if not allowed(status, target):
            raise Conflict(
                f"journal entry {entry.id}: {status.value} -> {target.value} is not a transition"
            )
        if target is ApprovalStatus.STAGED:
            percent = int(entry.details["to_percent"])
        elif target is ApprovalStatus.DEPLOYED:
            percent = 100
        else:
            percent = 0
        status = target
    return status, percent


# -- the approval as the rollout sees it ------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Rollout:
    """A dataclass rather than a pydantic model: the dashboard's first screen imports this
    module, and no pydantic; the API's JSON goes through a pydantic adapter all the same."""

    approval_id: UUID
    run_id: UUID
    simulation_id: UUID
    patch_id: UUID
    patch_slug: str | None = None
    sdk_language: str
    tenant_type: str
    tenant_id: str
    status: ApprovalStatus
    rollout_percentage: int
    rollout_steps: tuple[int, ...]
    decided_by: str | None = None
    decided_at: datetime | None = None
    staged_at: datetime | None = None
    deployed_at: datetime | None = None
    rolled_back_at: datetime | None = None
    step_started_at: datetime | None = None
    last_transition_by: str | None = None
    last_transition_reason: str | None = None
    canary_status: str | None = None
    last_hook_status: str | None = None
    last_hook_at: datetime | None = None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rollout:
        """From a row of ``_SELECT`` (the driver gives the other columns their types)."""
        return cls(
            **{
                **row,
                "status": ApprovalStatus(row["status"]),
                "rollout_steps": tuple(row["rollout_steps"]),
            }
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _rollout_adapter().dump_python(self, mode="json")
        data["next_percentage"] = self.next_percentage
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rollout:
        """The inverse of ``to_json`` (``next_percentage`` is derived, so dropped); a value
        of the wrong type raises pydantic's ValidationError."""
        return _rollout_adapter().validate_python(
            {k: v for k, v in data.items() if k != "next_percentage"}
        )

    @property
    def next_percentage(self) -> int | None:
        """Where a promotion would go (None when nothing can be promoted)."""
        if self.status is not ApprovalStatus.STAGED:
            return None
        return next_state(
            self.status, self.rollout_percentage, self.rollout_steps, RolloutAction.PROMOTE
        )[1]


@functools.cache
def _rollout_adapter() -> TypeAdapter[Rollout]:
    from pydantic import TypeAdapter

    return TypeAdapter(Rollout)


_SELECT = (
    "SELECT a.id AS approval_id, a.simulation_run_id AS run_id, r.simulation_id, a.patch_id, "
    "p.slug AS patch_slug, p.sdk_language, a.tenant_type, a.tenant_id, a.status, "
    "a.rollout_percentage, a.rollout_steps, a.decided_by, a.decided_at, a.staged_at, "
    "a.deployed_at, a.rolled_back_at, a.step_started_at, a.last_transition_by, "
    "a.last_transition_reason, a.canary_status, a.last_hook_status, a.last_hook_at, "
    "a.updated_at "
    "FROM sdk_patch_approvals a JOIN sdk_simulation_runs r ON r.id = a.simulation_run_id "
    "JOIN sdk_self_healing_registry p ON p.id = a.patch_id"
)


def load(conn: psycopg.Connection[Any], run_id: UUID, *, lock: bool = False) -> Rollout:
    row = conn.execute(
        _SELECT + " WHERE a.simulation_run_id = %s" + (" FOR UPDATE OF a" if lock else ""),
        (run_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"run {run_id} has no approval request (only a successful patched run has)")
    return Rollout.from_row(row)


def in_rollout(
    conn: psycopg.Connection[Any], *, tenant_type: str | None, tenant_id: str | None
) -> list[Rollout]:
    rows = conn.execute(
        _SELECT + " WHERE a.status IN ('staged', 'deployed') "
        "AND (%(tt)s::text IS NULL OR a.tenant_type = %(tt)s) "
        "AND (%(ti)s::text IS NULL OR a.tenant_id = %(ti)s) "
        "ORDER BY a.staged_at NULLS LAST, a.id",
        {"tt": tenant_type, "ti": tenant_id},
    ).fetchall()
    return [Rollout.from_row(r) for r in rows]


# -- the rollout hook -------------------------------------------------------------------------


@dataclass(frozen=True)
class HookResult:
    argv: tuple[str, ...]
    dry_run: bool
    exit_status: int | None = None
    """None: dry run, or the command could not start or was killed at the timeout."""
    output: str = ""
    duration_ms: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.dry_run or (self.error is None and self.exit_status == 0)

    @property
    def status_text(self) -> str:
        if self.dry_run:
            return "dry-run"
        return "ok" if self.ok else f"failed: {self.error}"

    def to_json(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "dry_run": self.dry_run,
            "exit_status": self.exit_status,
            "output": self.output,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HookResult:
        return cls(
            argv=tuple(data["argv"]),
            dry_run=bool(data["dry_run"]),
            exit_status=data["exit_status"],
            output=data["output"],
            duration_ms=int(data["duration_ms"]),
            error=data["error"],
        )


class HookFailed(SimError):
    """The rollout hook failed: the transition was not made."""

    http_status = 502

    def __init__(self, message: str, hook: HookResult) -> None:
        super().__init__(message)
        self.hook = hook


def render_hook(template: str, values: Mapping[str, str]) -> list[str]:
    """Split the template like a shell line, then fill each argument on its own.

    Substituting after splitting is what makes a value with spaces, quotes or ``;`` one
    argument and never a new one: nothing is ever given to a shell.
    """
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise ConfigError(f"SIMTUI_ROLLOUT_HOOK: cannot split the command: {exc}") from None
    if not argv:
        raise ConfigError("SIMTUI_ROLLOUT_HOOK: the command is empty")

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise ConfigError(f"SIMTUI_ROLLOUT_HOOK: unknown placeholder {{{name}}}")
        return values[name]

    from simcore.config import HOOK_PLACEHOLDER  # with the settings, which a hook comes from

    return [HOOK_PLACEHOLDER.sub(fill, arg) for arg in argv]


def _hook_env() -> dict[str, str]:
    # The hook needs PATH, KUBECONFIG and the like, not simtui's database URL or API token.
    return {k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")}


def run_hook(argv: Sequence[str], *, dry_run: bool, timeout_s: float) -> HookResult:
    """Run the command without a shell; its output goes to a file so that a chatty command
    cannot fill memory, and it is killed (with its children) at the timeout."""
    args = tuple(argv)
    if dry_run:
        return HookResult(args, True, output=f"dry-run: {shlex.join(args)}")
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=_hook_env(),
                start_new_session=True,
            )
        except OSError as exc:
            return HookResult(args, False, error=f"cannot run {args[0]!r}: {exc.strerror}")
        exit_status: int | None
        try:
            exit_status = proc.wait(timeout=timeout_s)
            if exit_status == 0:
                error = None
            elif exit_status < 0:
                error = f"killed by signal {-exit_status}"
            else:
                error = f"exit status {exit_status}"
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            exit_status, error = None, f"timed out after {timeout_s:g} s"
        out.seek(0)
        data = out.read(MAX_HOOK_OUTPUT * 4 + 1)
    text = data.decode("utf-8", "replace")
    if len(text) > MAX_HOOK_OUTPUT or len(data) > MAX_HOOK_OUTPUT * 4:
        text = text[:MAX_HOOK_OUTPUT] + "\n[output truncated]"
    return HookResult(
        args,
        False,
        exit_status=exit_status,
        output=text,
        duration_ms=int((time.monotonic() - started) * 1000),
        error=error,
    )


# -- transitions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionResult:
    rollout: Rollout
    action: RolloutAction
    from_status: ApprovalStatus
    from_percent: int
    hook: HookResult
    journal_id: int

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "from_status": self.from_status.value,
            "from_percent": self.from_percent,
            "rollout": self.rollout.to_json(),
            "hook": self.hook.to_json(),
            "journal_id": self.journal_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TransitionResult:
        return cls(
            rollout=Rollout.from_json(data["rollout"]),
            action=RolloutAction(data["action"]),
            from_status=ApprovalStatus(data["from_status"]),
            from_percent=int(data["from_percent"]),
            hook=HookResult.from_json(data["hook"]),
            journal_id=int(data["journal_id"]),
        )


def check_source(source: str) -> None:
    """An observation recorded by hand comes from the API or the CLI (a scrape is recorded
    by the evaluation that reads it)."""
    if source not in ("api", "cli"):
        raise InvalidInput("source", "must be api or cli (scrapes are recorded by evaluate)")


def _reason(reason: str | None) -> str:
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("reason", "say why (it goes to the journal)")
    if len(text) > MAX_REASON:
        raise InvalidInput("reason", f"at most {MAX_REASON} characters")
    safe_text.check("reason", text)
    return text


class _HookRefused(Exception):
    """Carries a failed hook out of the transaction, so that the transaction rolls back."""

    def __init__(self, current: Rollout, target: tuple[ApprovalStatus, int], hook: HookResult):
        super().__init__(hook.status_text)
        self.current = current
        self.target = target
        self.hook = hook


def transition(
    db: Database,
    actor: str,
    run_id: UUID,
    action: RolloutAction,
    reason: str | None,
    *,
    settings: Settings,
    now: datetime,
    expect: tuple[ApprovalStatus, int] | None = None,
) -> TransitionResult:
    """Stage, promote or roll back the patch of a run, running the hook for the new step.

    The approval row stays locked while the hook runs, so two people acting at once are
    served one after the other, each against the state the other left. The hook runs before
    the commit: when it fails, nothing changes; when the commit fails after a hook that
    succeeded, running the same command again is harmless (it sets the same percentage).
    ``expect``: the (status, percentage) a decision was made on; refused if it moved since.
    """
    if action in (RolloutAction.APPROVE, RolloutAction.REJECT):
        raise ValueError("approve and reject go through simcore.approvals.decide")
    why = _reason(reason)
    subject = f"the patch of run {run_id}"
    try:
        with db.transaction() as conn:
            current = load(conn, run_id, lock=True)
            if expect is not None and expect != (current.status, current.rollout_percentage):
                raise Conflict(
                    f"{subject} moved to {current.status.value} at "
                    f"{current.rollout_percentage}% meanwhile: evaluate again"
                )
            # The plan is fixed when the patch is staged; promotions follow the stored plan.
            staging = action is RolloutAction.STAGE
            steps = settings.rollout_steps if staging else current.rollout_steps
            target, to_percent = next_state(
                current.status, current.rollout_percentage, steps, action, subject
            )
            argv = render_hook(
                settings.rollout_hook,
                {
                    "percent": str(to_percent),
                    "patch_id": str(current.patch_id),
                    "run_id": str(current.run_id),
                    "approval_id": str(current.approval_id),
                    "language": current.sdk_language,
                },
            )
            hook = run_hook(
                argv,
                dry_run=settings.rollout_hook_dry_run,
                timeout_s=settings.rollout_hook_timeout_s,
            )
            if not hook.ok:
                raise _HookRefused(current, (target, to_percent), hook)
            journal.mark_journaled(conn)
            rolled_back = target is ApprovalStatus.ROLLED_BACK
            conn.execute(
                "UPDATE sdk_patch_approvals SET status = %s, rollout_percentage = %s, "
                "rollout_steps = %s, staged_at = %s, deployed_at = %s, rolled_back_at = %s, "
                "step_started_at = %s, canary_status = %s, last_transition_by = %s, "
                "last_transition_reason = %s, last_hook_status = %s, last_hook_at = %s, "
                "updated_at = now() WHERE id = %s",
                (
                    target.value,
                    to_percent,
                    list(steps),
                    now if staging else current.staged_at,
                    now if target is ApprovalStatus.DEPLOYED else current.deployed_at,
                    now if rolled_back else current.rolled_back_at,
                    None if rolled_back else now,
                    None if rolled_back else Decision.WAIT.value,
                    actor,
                    why,
                    hook.status_text,
                    now,
                    current.approval_id,
                ),
            )
            entry = journal.append(
                conn,
                JournalAction(target.value),
                actor,
                run_id=current.run_id,
                simulation_id=current.simulation_id,
                approval_id=current.approval_id,
                details={
                    "action": action.value,
                    "from": current.status.value,
                    "to": target.value,
                    "from_percent": current.rollout_percentage,
                    "to_percent": to_percent,
                    "rollout_steps": list(steps),
                    "patch_id": str(current.patch_id),
                    "reason": why,
                    "hook": hook.to_json(),
                },
            )
            updated = load(conn, run_id)
    except _HookRefused as refused:
        _journal_hook_failure(db, actor, action, why, refused, now)
        cur, hook = refused.current, refused.hook
        shown = f": {hook.output.strip()[:300]}" if hook.output.strip() else ""
        raise HookFailed(
            f"rollout hook failed ({hook.error}); {subject} stays {cur.status.value} at "
            f"{cur.rollout_percentage}%{shown}",
            hook,
        ) from None
    return TransitionResult(
        updated, action, current.status, current.rollout_percentage, hook, entry
    )


def _journal_hook_failure(
    db: Database,
    actor: str,
    action: RolloutAction,
    reason: str,
    refused: _HookRefused,
    now: datetime,
) -> None:
    cur = refused.current
    with db.transaction() as conn:
        # Neither status nor percentage changes: the guard and the by-hand journal stay quiet.
        conn.execute(
            "UPDATE sdk_patch_approvals SET last_hook_status = %s, last_hook_at = %s WHERE id = %s",
            (refused.hook.status_text, now, cur.approval_id),
        )
        journal.append(
            conn,
            JournalAction.ERROR,
            actor,
            run_id=cur.run_id,
            simulation_id=cur.simulation_id,
            approval_id=cur.approval_id,
            details={
                "rollout_hook_failed": True,
                "action": action.value,
                "from": cur.status.value,
                "from_percent": cur.rollout_percentage,
                "to": refused.target[0].value,
                "to_percent": refused.target[1],
                "state_unchanged": True,
                "reason": reason,
                "hook": refused.hook.to_json(),
            },
        )


# -- canary observations and the promotion rule -----------------------------------------------


class Decision(StrEnum):
    PROMOTE = "promote"
    WAIT = "wait"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class CanaryRule:
    """The runbook's "If success > 95% after 1h, promote", made precise.

    Promote when the current step has run for ``window``, with at least ``min_observations``
    in the last ``window``, every one of them above ``min_success_rate`` and no gap longer
    than ``max_gap`` between them (or at either end of the window). Roll back when the last
    ``breach_observations`` are all at or below the rate: one bad scrape is noise, three in
    a row is the patch. Anything else is wait.
    """

    min_success_rate: float = 0.95
    window: timedelta = timedelta(hours=1)
    min_observations: int = 6
    breach_observations: int = 3
    max_gap: timedelta = timedelta(minutes=20)

    def to_json(self) -> dict[str, Any]:
        return {
            "min_success_rate": self.min_success_rate,
            "window_seconds": self.window.total_seconds(),
            "min_observations": self.min_observations,
            "breach_observations": self.breach_observations,
            "max_gap_seconds": self.max_gap.total_seconds(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryRule:
        return cls(
            min_success_rate=float(data["min_success_rate"]),
            window=timedelta(seconds=data["window_seconds"]),
            min_observations=int(data["min_observations"]),
            breach_observations=int(data["breach_observations"]),
            max_gap=timedelta(seconds=data["max_gap_seconds"]),
        )


DEFAULT_RULE = CanaryRule()


@dataclass(frozen=True)
class Observation:
    id: int
    approval_id: UUID
    observed_at: datetime
    success_rate: float
    requests: int | None
    rollout_percentage: int
    source: str
    recorded_by: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "approval_id": str(self.approval_id),
            "observed_at": self.observed_at.isoformat(),
            "success_rate": self.success_rate,
            "requests": self.requests,
            "rollout_percentage": self.rollout_percentage,
            "source": self.source,
            "recorded_by": self.recorded_by,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Observation:
        return cls(
            id=int(data["id"]),
            approval_id=UUID(data["approval_id"]),
            observed_at=datetime.fromisoformat(data["observed_at"]),
            success_rate=float(data["success_rate"]),
            requests=data["requests"],
            rollout_percentage=int(data["rollout_percentage"]),
            source=data["source"],
            recorded_by=data["recorded_by"],
        )


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    reason: str
    status: ApprovalStatus
    rollout_percentage: int
    next_percentage: int | None
    now: datetime
    step_started_at: datetime | None
    observations: int
    """Since the current step started."""
    in_window: int
    min_rate: float | None
    mean_rate: float | None
    latest: Observation | None
    consecutive_breaches: int
    stale: bool
    """True when the canary is blind: no observation for longer than the rule's max gap."""
    rule: CanaryRule = field(default_factory=CanaryRule)

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reason": self.reason,
            "status": self.status.value,
            "rollout_percentage": self.rollout_percentage,
            "next_percentage": self.next_percentage,
            "now": self.now.isoformat(),
            "step_started_at": self.step_started_at.isoformat() if self.step_started_at else None,
            "observations": self.observations,
            "in_window": self.in_window,
            "min_rate": self.min_rate,
            "mean_rate": self.mean_rate,
            "latest": self.latest.to_json() if self.latest else None,
            "consecutive_breaches": self.consecutive_breaches,
            "stale": self.stale,
            "rule": self.rule.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Evaluation:
        started, latest = data["step_started_at"], data["latest"]
        return cls(
            decision=Decision(data["decision"]),
            reason=data["reason"],
            status=ApprovalStatus(data["status"]),
            rollout_percentage=int(data["rollout_percentage"]),
            next_percentage=data["next_percentage"],
            now=datetime.fromisoformat(data["now"]),
            step_started_at=datetime.fromisoformat(started) if started else None,
            observations=int(data["observations"]),
            in_window=int(data["in_window"]),
            min_rate=data["min_rate"],
            mean_rate=data["mean_rate"],
            latest=Observation.from_json(latest) if latest else None,
            consecutive_breaches=int(data["consecutive_breaches"]),
            stale=bool(data["stale"]),
            rule=CanaryRule.from_json(data["rule"]),
        )


def _pct(rate: float) -> str:
    return f"{rate * 100:.1f}%"


def _span(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0.0)
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def evaluate(
    observations: Sequence[Observation],
    *,
    status: ApprovalStatus,
    percent: int,
    steps: Sequence[int],
    step_started_at: datetime | None,
    now: datetime,
    rule: CanaryRule = DEFAULT_RULE,
) -> Evaluation:
    """The rule's decision for a staged or deployed patch, and the numbers behind it."""
    start = step_started_at or now
    # Only what was measured at this step counts: an observation taken at 5 % in the minute
    # of the promotion says nothing about 25 %.
    obs = sorted(
        (
            o
            for o in observations
            if start <= o.observed_at <= now and o.rollout_percentage == percent
        ),
        key=lambda o: o.observed_at,
    )
    window_start = now - rule.window
    in_window = [o for o in obs if o.observed_at >= window_start]
    rates = [o.success_rate for o in in_window]
    breaches = 0
    for o in reversed(obs):
        if o.success_rate > rule.min_success_rate:
            break
        breaches += 1
    latest = obs[-1] if obs else None
    step_age = now - start
    stale = step_age > rule.max_gap and (latest is None or now - latest.observed_at > rule.max_gap)
    next_percentage = (
        next_state(status, percent, steps, RolloutAction.PROMOTE)[1]
        if status is ApprovalStatus.STAGED
        else None
    )
    threshold = _pct(rule.min_success_rate)

    def result(decision: Decision, reason: str) -> Evaluation:
        return Evaluation(
            decision,
            reason,
            status,
            percent,
            next_percentage,
            now,
            step_started_at,
            len(obs),
            len(in_window),
            min(rates) if rates else None,
            sum(rates) / len(rates) if rates else None,
            latest,
            breaches,
            stale,
            rule,
        )

    if status not in IN_ROLLOUT:
        return result(Decision.WAIT, f"the patch is {status.value}: no canary to evaluate")
    if breaches >= rule.breach_observations:
        last = ", ".join(_pct(o.success_rate) for o in obs[-breaches:][-5:])
        return result(
            Decision.ROLLBACK,
            f"success rate at or below {threshold} in the last {breaches} observations "
            f"({last}) at {percent}%",
        )
    if stale:
        since = f"for {_span(now - latest.observed_at)}" if latest else "since the step started"
        return result(
            Decision.WAIT,
            f"no canary observation {since} (max gap {_span(rule.max_gap)}): the canary is blind",
        )
    if status is ApprovalStatus.DEPLOYED:
        return result(Decision.WAIT, "deployed at 100%: nothing to promote, watching for a breach")
    if step_age < rule.window:
        return result(
            Decision.WAIT,
            f"at {percent}% for {_span(step_age)}: needs {_span(rule.window)} above {threshold}",
        )
    if len(in_window) < rule.min_observations:
        return result(
            Decision.WAIT,
            f"{len(in_window)} observations in the last {_span(rule.window)}, "
            f"needs {rule.min_observations}",
        )
    low = [o for o in in_window if o.success_rate <= rule.min_success_rate]
    if low:
        return result(
            Decision.WAIT,
            f"{_pct(low[-1].success_rate)} at {low[-1].observed_at.isoformat(timespec='minutes')}"
            f" is not above {threshold}: the {_span(rule.window)} restarts after it",
        )
    marks = [window_start, *(o.observed_at for o in in_window), now]
    gap, gap_end = max(((b - a), b) for a, b in itertools.pairwise(marks))
    if gap > rule.max_gap:
        return result(
            Decision.WAIT,
            f"no observation for {_span(gap)} before {gap_end.isoformat(timespec='minutes')} "
            f"(max gap {_span(rule.max_gap)})",
        )
    assert rates
    return result(
        Decision.PROMOTE,
        f"above {threshold} for {_span(rule.window)} at {percent}%: {len(in_window)} "
        f"observations, min {_pct(min(rates))}, mean {_pct(sum(rates) / len(rates))}; "
        f"next {next_percentage}%",
    )


_OBS_COLUMNS = (
    "id, approval_id, observed_at, success_rate, requests, rollout_percentage, source, recorded_by"
)


def _observation(row: Mapping[str, Any]) -> Observation:
    return Observation(
        int(row["id"]),
        row["approval_id"],
        row["observed_at"],
        float(row["success_rate"]),
        int(row["requests"]) if row["requests"] is not None else None,
        int(row["rollout_percentage"]),
        row["source"],
        row["recorded_by"],
    )


def observations(
    conn: psycopg.Connection[Any],
    approval_id: UUID,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[Observation]:
    """Oldest first; the latest ``limit`` when there are more."""
    rows = conn.execute(
        f"SELECT {_OBS_COLUMNS} FROM (SELECT {_OBS_COLUMNS} FROM sdk_canary_observations "
        "WHERE approval_id = %(a)s "
        "AND (%(since)s::timestamptz IS NULL OR observed_at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR observed_at <= %(until)s) "
        "ORDER BY observed_at DESC, id DESC LIMIT %(limit)s) o ORDER BY observed_at, id",
        {"a": approval_id, "since": since, "until": until, "limit": limit},
    ).fetchall()
    return [_observation(r) for r in rows]


def evaluate_rollout(
    conn: psycopg.Connection[Any], rollout: Rollout, *, now: datetime, rule: CanaryRule
) -> Evaluation:
    # The rule never looks further back than the window or the gap; bounded by the step start.
    obs = observations(conn, rollout.approval_id, since=rollout.step_started_at, until=now)
    return evaluate(
        obs,
        status=rollout.status,
        percent=rollout.rollout_percentage,
        steps=rollout.rollout_steps,
        step_started_at=rollout.step_started_at,
        now=now,
        rule=rule,
    )


def check_rate(success_rate: float, requests: int | None) -> None:
    if isinstance(success_rate, bool) or not isinstance(success_rate, int | float):
        raise InvalidInput("success_rate", "must be a number from 0 to 1")
    if not math.isfinite(success_rate) or not 0.0 <= success_rate <= 1.0:
        raise InvalidInput("success_rate", f"must be a ratio from 0 to 1, not {success_rate}")
    if requests is not None and (
        isinstance(requests, bool) or not isinstance(requests, int) or requests < 0
    ):
        raise InvalidInput("requests", "must be a whole number, 0 or more")


def record_observation(
    db: Database,
    run_id: UUID,
    actor: str,
    success_rate: float,
    *,
    requests: int | None,
    source: str,
    now: datetime,
    observed_at: datetime | None = None,
    rule: CanaryRule = DEFAULT_RULE,
) -> tuple[Observation, Evaluation]:
    """Store one observation of the canary and the rule's decision after it."""
    check_rate(success_rate, requests)
    at = observed_at or now
    with db.transaction() as conn:
        # Locked so that a promotion cannot slip between reading the step and the insert.
        rollout = load(conn, run_id, lock=True)
        if rollout.status not in IN_ROLLOUT:
            raise Conflict(
                f"the patch of run {run_id} is {rollout.status.value}: observations are "
                "recorded while it is staged or deployed"
            )
        if at > now:
            raise InvalidInput("observed_at", "is in the future")
        if rollout.step_started_at is not None and at < rollout.step_started_at:
            raise InvalidInput(
                "observed_at",
                f"is before the current step started ({rollout.step_started_at.isoformat()})",
            )
        # Observations arrive in order: a late one cannot be slipped into a past hour.
        previous = observations(conn, rollout.approval_id, limit=1)
        if previous and at < previous[-1].observed_at:
            raise InvalidInput(
                "observed_at",
                f"is before the latest observation ({previous[-1].observed_at.isoformat()})",
            )
        row = conn.execute(
            "INSERT INTO sdk_canary_observations (approval_id, observed_at, success_rate, "
            "requests, rollout_percentage, source, recorded_by) VALUES (%s, %s, %s, %s, %s, "
            f"%s, %s) RETURNING {_OBS_COLUMNS}",
            (
                rollout.approval_id,
                at,
                float(success_rate),
                requests,
                rollout.rollout_percentage,
                source,
                actor,
            ),
        ).fetchone()
        assert row is not None
        evaluation = evaluate_rollout(conn, rollout, now=now, rule=rule)
        conn.execute(
            "UPDATE sdk_patch_approvals SET canary_status = %s WHERE id = %s",
            (evaluation.decision.value, rollout.approval_id),
        )
    return _observation(row), evaluation


# -- reading the canary's metrics -------------------------------------------------------------


class CanaryMetricsError(SimError):
    """The canary's metrics endpoint could not be read or does not say what is needed."""

    http_status = 502


def _display_url(url: str) -> str:
    import httpx

    # Never echo credentials a URL may carry (http://user:secret@host/...).
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "the configured URL"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


@dataclass(frozen=True)
class MetricsReading:
    success_rate: float
    requests: int | None
    labels: dict[str, str]


def parse_metrics(text: str, *, patch_id: UUID, slug: str | None) -> MetricsReading:
    """Pick the patch's ``patch_success_rate`` from Prometheus exposition text.

    The series labelled with the patch (``patch_id`` or ``patch`` = its id or slug) if there
    is one, else the unlabelled series (an SDK service that runs one patch at a time).
    """
    try:
        # Imported here: the parser brings all of prometheus_client (http.server, wsgiref,
        # email) into every process that loads the rollout engine, the dashboard's included.
        from prometheus_client.parser import text_string_to_metric_families

        samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    except ValueError as exc:
        raise CanaryMetricsError(f"not Prometheus text format: {exc}") from None
    names = {str(patch_id)} | ({slug} if slug else set())
    rates = [s for s in samples if s.name == SUCCESS_RATE_METRIC]
    chosen = [s for s in rates if any(s.labels.get(k) in names for k in PATCH_LABELS)]
    if not chosen:
        chosen = [s for s in rates if not s.labels]
    if not chosen:
        seen = sorted({",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) for s in rates})
        raise CanaryMetricsError(
            f"no {SUCCESS_RATE_METRIC} series for patch {slug or patch_id}"
            + (f" (series found: {'; '.join(seen[:5])})" if seen else " (the metric is absent)")
        )
    if len(chosen) > 1:
        raise CanaryMetricsError(
            f"{len(chosen)} {SUCCESS_RATE_METRIC} series match patch {slug or patch_id}: "
            "cannot tell which one is the canary"
        )
    sample = chosen[0]
    rate = float(sample.value)
    if not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise CanaryMetricsError(f"{SUCCESS_RATE_METRIC} is {rate}: expected a ratio from 0 to 1")
    requests: int | None = None
    for s in samples:
        if s.name == REQUESTS_METRIC and s.labels == sample.labels:
            value = float(s.value)
            if math.isfinite(value) and value >= 0:
                requests = int(value)
    return MetricsReading(rate, requests, dict(sample.labels))


def fetch_metrics(url: str, *, client: httpx.Client | None = None) -> str:
    """GET the exposition text, with timeouts and a size cap."""
    # Imported here: the CLI and the dashboard start without paying for httpx.
    import httpx

    own = client is None
    http = client or httpx.Client(
        timeout=httpx.Timeout(METRICS_TIMEOUT_S, connect=METRICS_CONNECT_TIMEOUT_S),
        follow_redirects=False,
    )
    shown = _display_url(url)
    try:
        with http.stream("GET", url, headers={"Accept": "text/plain;version=0.0.4"}) as response:
            if response.status_code != 200:
                raise CanaryMetricsError(f"{shown}: HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_METRICS_BYTES:
                    raise CanaryMetricsError(
                        f"{shown}: more than {MAX_METRICS_BYTES // (1024 * 1024)} MiB of metrics"
                    )
            return body.decode(response.encoding or "utf-8", "replace")
    except httpx.HTTPError as exc:
        raise CanaryMetricsError(f"cannot read {shown}: {type(exc).__name__}: {exc}") from None
    finally:
        if own:
            http.close()


# -- evaluation, end to end -------------------------------------------------------------------


@dataclass(frozen=True)
class CanaryReport:
    rollout: Rollout
    """As it was evaluated (before ``applied``, which carries the state after)."""
    evaluation: Evaluation | None
    """None when the patch is not staged or deployed."""
    observations: tuple[Observation, ...]
    """The latest ones, oldest first."""
    recorded: Observation | None = None
    """The observation scraped for this evaluation, if any."""
    applied: TransitionResult | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout.to_json(),
            "evaluation": self.evaluation.to_json() if self.evaluation else None,
            "observations": [o.to_json() for o in self.observations],
            "recorded": self.recorded.to_json() if self.recorded else None,
            "applied": self.applied.to_json() if self.applied else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CanaryReport:
        evaluation, recorded, applied = data["evaluation"], data["recorded"], data["applied"]
        return cls(
            rollout=Rollout.from_json(data["rollout"]),
            evaluation=Evaluation.from_json(evaluation) if evaluation else None,
            observations=tuple(Observation.from_json(o) for o in data["observations"]),
            recorded=Observation.from_json(recorded) if recorded else None,
            applied=TransitionResult.from_json(applied) if applied else None,
        )


REPORT_OBSERVATIONS = 12


def evaluate_canary(
    db: Database,
    run_id: UUID,
    actor: str,
    *,
    settings: Settings,
    now: datetime,
    scrape: bool = False,
    apply: bool = False,
    rule: CanaryRule = DEFAULT_RULE,
    client: httpx.Client | None = None,
) -> CanaryReport:
    """Optionally scrape one observation, evaluate the rule, optionally apply its decision."""
    recorded: Observation | None = None
    if scrape:
        if not settings.canary_metrics_url:
            raise ConfigError("SIMTUI_CANARY_METRICS_URL: not set; nothing to scrape")
        with db.transaction() as conn:
            current = load(conn, run_id)
        if current.status not in IN_ROLLOUT:
            raise Conflict(
                f"the patch of run {run_id} is {current.status.value}: there is no canary to "
                "observe"
            )
        # The network read happens outside any transaction: a slow endpoint holds no lock.
        text = fetch_metrics(settings.canary_metrics_url, client=client)
        reading = parse_metrics(text, patch_id=current.patch_id, slug=current.patch_slug)
        recorded, _ = record_observation(
            db,
            run_id,
            actor,
            reading.success_rate,
            requests=reading.requests,
            source="scrape",
            now=now,
            rule=rule,
        )
    with db.transaction() as conn:
        current = load(conn, run_id)
        evaluation = (
            evaluate_rollout(conn, current, now=now, rule=rule)
            if current.status in IN_ROLLOUT
            else None
        )
        latest = observations(conn, current.approval_id, until=now, limit=REPORT_OBSERVATIONS)
    applied: TransitionResult | None = None
    if apply:
        if evaluation is None:
            raise Conflict(
                f"the patch of run {run_id} is {current.status.value}: nothing to promote or "
                "roll back"
            )
        action = {
            Decision.PROMOTE: RolloutAction.PROMOTE,
            Decision.ROLLBACK: RolloutAction.ROLLBACK,
        }.get(evaluation.decision)
        if action is not None:
            applied = transition(
                db,
                actor,
                run_id,
                action,
                f"canary rule: {evaluation.reason}",
                settings=settings,
                now=now,
                expect=(current.status, current.rollout_percentage),
            )
    return CanaryReport(current, evaluation, tuple(latest), recorded, applied)
