"""The rollout after approval and the daily checklist, as the dashboard reads and drives them.

The ``Simulator`` Protocol that every front-end is written against stops at approve and
reject. Stage, promote, roll back, the canary's evaluation and the checklist are methods of
``SimulatorService`` (local mode) and of ``RemoteService`` (API mode, the same signatures
over the rollout routes), outside that Protocol. The screens therefore ask ``rollout_ops`` /
``checklist_ops`` for them: a simulator without them (a test double) is said so in a
notification instead of failing.

Nothing here imports Textual: ``read_rollouts`` runs in a thread worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable
from uuid import UUID

from simcore.approvals import Approval
from simcore.auth import Principal
from simcore.checklist import Checklist
from simcore.errors import SimError
from simcore.facade import Simulator
from simcore.model import ApprovalStatus
from simcore.rollout import (
    IN_ROLLOUT,
    CanaryReport,
    Decision,
    Evaluation,
    RolloutAction,
    TransitionResult,
)
from simtui import format as fmt

LOCAL_ONLY = "not offered by this simulator (it has no rollout calls)"
"""Said for a simulator without ``RolloutOps`` / ``ChecklistOps``; both the local service
and the API client have them."""
ROLLOUT_LIMIT = 50
"""Staged and deployed patches listed in the approval queue, each (newest first)."""
CANARY_EVALUATED = 20
"""Canaries evaluated per refresh: each is a few queries, and the refresh must stay cheap."""

VERB = {
    RolloutAction.STAGE: "stage",
    RolloutAction.PROMOTE: "promote",
    RolloutAction.ROLLBACK: "roll back",
}
PAST = {
    RolloutAction.STAGE: "staged",
    RolloutAction.PROMOTE: "promoted",
    RolloutAction.ROLLBACK: "rolled back",
}


@runtime_checkable
class RolloutOps(Protocol):
    """What ``SimulatorService`` offers after approval (see the module's docstring)."""

    def stage_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> TransitionResult: ...

    def promote_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> TransitionResult: ...

    def rollback_patch(
        self,
        principal: Principal,
        run_id: str | UUID,
        reason: str | None,
        *,
        now: datetime | None = None,
    ) -> TransitionResult: ...

    def evaluate_canary(
        self,
        principal: Principal,
        run_id: str | UUID,
        *,
        scrape: bool = False,
        apply: bool = False,
        now: datetime | None = None,
    ) -> CanaryReport: ...


@runtime_checkable
class ChecklistOps(Protocol):
    def checklist(self, principal: Principal, *, now: datetime | None = None) -> Checklist: ...


def rollout_ops(simulator: object) -> RolloutOps | None:
    return simulator if isinstance(simulator, RolloutOps) else None


def checklist_ops(simulator: object) -> ChecklistOps | None:
    return simulator if isinstance(simulator, ChecklistOps) else None


def transition(
    ops: RolloutOps, principal: Principal, run_id: str, action: RolloutAction, reason: str
) -> TransitionResult:
    if action is RolloutAction.STAGE:
        return ops.stage_patch(principal, run_id, reason)
    if action is RolloutAction.PROMOTE:
        return ops.promote_patch(principal, run_id, reason)
    if action is RolloutAction.ROLLBACK:
        return ops.rollback_patch(principal, run_id, reason)
    raise ValueError(f"not a rollout step: {action.value}")


def describe(result: TransitionResult) -> str:
    """What a transition did, for the notification: from, to, and what the hook said."""
    r = result.rollout
    return (
        f"{PAST[result.action]}: patch {r.patch_slug or fmt.short_id(r.patch_id)} "
        f"(run {fmt.short_id(r.run_id)}) {result.from_status.value} {result.from_percent}% → "
        f"{r.status.value} {r.rollout_percentage}% · hook {result.hook.status_text}"
    )


# -- the canary, as a table cell and a sentence ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Canary:
    label: str
    """Short, for the approval queue: the rule's decision and the figures behind it."""
    reason: str
    """The rule's own sentence, for the confirmation dialog."""
    decision: Decision | None = None
    next_percentage: int | None = None


NO_OBSERVATIONS = "no observations"
NOT_OFFERED = Canary("n/a", f"the canary's evaluation: {LOCAL_ONLY}")
NOT_EVALUATED = Canary("not evaluated", f"only the first {CANARY_EVALUATED} are evaluated")


def canary_of(evaluation: Evaluation | None) -> Canary:
    if evaluation is None:
        return Canary("-", "not staged or deployed: no canary")
    if evaluation.status is ApprovalStatus.DEPLOYED and evaluation.decision is Decision.WAIT:
        decision = "watching"  # at 100% there is nothing to wait for, only a breach to catch
    else:
        decision = "roll back" if evaluation.decision is Decision.ROLLBACK else evaluation.decision
    if evaluation.observations == 0 or evaluation.latest is None:
        label = NO_OBSERVATIONS
    else:
        parts = [
            decision,
            f"{evaluation.observations} obs",
            f"last {fmt.percent(evaluation.latest.success_rate, 1)}",
        ]
        if evaluation.min_rate is not None:
            parts.append(f"min {fmt.percent(evaluation.min_rate, 1)}")
        label = " · ".join(parts)
    if evaluation.stale:
        label += " · blind"
    return Canary(label, evaluation.reason, evaluation.decision, evaluation.next_percentage)


def default_reason(action: RolloutAction, canary: Canary | None) -> str:
    """What the journal says when the person left the reason empty (stage and promote)."""
    reason = f"{PAST[action]} from the dashboard"
    if canary is not None and canary.decision is not None:
        reason += f" (canary: {canary.label})"
    return reason


# -- what the approval queue shows beside the pending approvals ------------------------------


@dataclass(frozen=True)
class Rollouts:
    approvals: tuple[Approval, ...] = ()
    """Staged, then deployed; newest first within each."""
    canary: Mapping[str, Canary] = field(default_factory=dict)
    """By run id."""


def read_rollouts(simulator: Simulator, principal: Principal) -> Rollouts:
    """The staged and deployed patches, each with its canary's latest evaluation.

    Read-only (no scrape, nothing applied), so an auditor sees the same as ops.
    """
    rows: list[Approval] = []
    for status in IN_ROLLOUT:
        listed = simulator.list_approvals(principal, status=status, limit=ROLLOUT_LIMIT)
        # Filtered again: the status may have moved between two reads, and not every
        # Simulator filters (a test double may not).
        rows.extend(a for a in listed if a.status is status)
    ops = rollout_ops(simulator)
    canary: dict[str, Canary] = {}
    for i, approval in enumerate(rows):
        run_id = str(approval.simulation_run_id)
        if ops is None:
            canary[run_id] = NOT_OFFERED
            continue
        if i >= CANARY_EVALUATED:
            canary[run_id] = NOT_EVALUATED
            continue
        try:
            report = ops.evaluate_canary(principal, run_id)
        except SimError as exc:  # moved or gone since it was listed: say so in its cell
            canary[run_id] = Canary("?", str(exc))
            continue
        canary[run_id] = canary_of(report.evaluation)
    return Rollouts(tuple(rows), canary)
