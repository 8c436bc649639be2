"""The rollout after approval and the daily checklist, as the dashboard reads and drives them.

Stage, promote, roll back, the canary's evaluation and the checklist are ``Simulator`` calls
(``SimulatorService`` locally, ``RemoteService`` over the rollout routes): this module only
shapes what they answer for the screens.

Nothing here imports Textual: ``read_rollouts`` runs in a thread worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simcore.approvals import Approval
from simcore.auth import Principal
from simcore.enums import ApprovalStatus
from simcore.errors import SimError
from simcore.rollout import (
    IN_ROLLOUT,
    Decision,
    Evaluation,
    RolloutAction,
    TransitionResult,
)
from simtui import format as fmt

if TYPE_CHECKING:  # the facade imports the engine, which the first screen does without
    from simcore.facade import Simulator

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


def transition(
    simulator: Simulator, principal: Principal, run_id: str, action: RolloutAction, reason: str
) -> TransitionResult:
    if action is RolloutAction.STAGE:
        return simulator.stage_patch(principal, run_id, reason)
    if action is RolloutAction.PROMOTE:
        return simulator.promote_patch(principal, run_id, reason)
    if action is RolloutAction.ROLLBACK:
        return simulator.rollback_patch(principal, run_id, reason)
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
    canary: dict[str, Canary] = {}
    for i, approval in enumerate(rows):
        run_id = str(approval.simulation_run_id)
        if i >= CANARY_EVALUATED:
            canary[run_id] = NOT_EVALUATED
            continue
        try:
            report = simulator.evaluate_canary(principal, run_id)
        except SimError as exc:  # moved or gone since it was listed: say so in its cell
            canary[run_id] = Canary("?", str(exc))
            continue
        canary[run_id] = canary_of(report.evaluation)
    return Rollouts(tuple(rows), canary)
