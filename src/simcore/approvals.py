"""``sdk_patch_approvals``: decisions on the patch of a successful run.

A row is created ``pending`` when a run with a patch ends ``success``; ops approve or reject
it. Every decision is journaled in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from simcore import journal, rollout, safe_text
from simcore.enums import ApprovalStatus, JournalAction, RunStatus
from simcore.errors import Conflict, Forbidden, InvalidInput, NotFound
from simcore.rollout import RolloutAction

if TYPE_CHECKING:  # the dashboard's first screen needs Approval, not the driver
    import psycopg

MAX_NOTES = 4000

COLUMNS = (
    "a.id, a.simulation_run_id, a.patch_id, a.tenant_type, a.tenant_id, a.status, "
    "a.rollout_percentage, a.approval_notes, a.requested_by, a.decided_by, a.decided_at, "
    "a.created_at, a.updated_at"
)


@dataclass(frozen=True, kw_only=True)
class Approval:
    """One approval as read, with its context.

    A dataclass rather than a pydantic model: the dashboard draws approvals on its first
    screen, which imports no pydantic (about 0.15 s of its start). The API's models validate
    and serialise it all the same (pydantic reads dataclass fields as its own).
    """

    id: UUID
    simulation_run_id: UUID
    patch_id: UUID
    tenant_type: str
    tenant_id: str
    status: ApprovalStatus
    rollout_percentage: int = 0
    approval_notes: str | None = None
    requested_by: str = "system"
    decided_by: str | None = None
    decided_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    # Context for people deciding, joined from the run, the simulation and the patch.
    simulation_id: UUID | None = None
    simulation_name: str | None = None
    sdk_language: str | None = None
    error: str | None = None
    patch_slug: str | None = None
    success_rate: float | None = None
    baseline_success_rate: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Approval:
        """From a row of ``_SELECT`` (the driver gives the other columns their types)."""
        return cls(**{**row, "status": ApprovalStatus(row["status"])})


_SELECT = (
    f"SELECT {COLUMNS}, r.simulation_id, s.name AS simulation_name, s.sdk_language, "
    "s.scenario ->> 'error' AS error, p.slug AS patch_slug, "
    "(r.metrics ->> 'success_rate')::float AS success_rate, "
    "(r.metrics -> 'baseline' ->> 'success_rate')::float AS baseline_success_rate "
    "FROM sdk_patch_approvals a JOIN sdk_simulation_runs r ON r.id = a.simulation_run_id "
    "JOIN sdk_simulations s ON s.id = r.simulation_id "
    "JOIN sdk_self_healing_registry p ON p.id = a.patch_id"
)


def list_scoped(
    conn: psycopg.Connection[Any],
    *,
    status: ApprovalStatus | None,
    tenant_type: str | None,
    tenant_id: str | None,
    limit: int,
) -> list[Approval]:
    rows = conn.execute(
        _SELECT + " WHERE (%(st)s::text IS NULL OR a.status = %(st)s) "
        "AND (%(tt)s::text IS NULL OR a.tenant_type = %(tt)s) "
        "AND (%(ti)s::text IS NULL OR a.tenant_id = %(ti)s) "
        "ORDER BY a.created_at DESC LIMIT %(limit)s",
        {
            "st": status.value if status else None,
            "tt": tenant_type,
            "ti": tenant_id,
            "limit": limit,
        },
    ).fetchall()
    return [Approval.from_row(r) for r in rows]


def get_for_run(conn: psycopg.Connection[Any], run_id: UUID) -> Approval | None:
    row = conn.execute(_SELECT + " WHERE a.simulation_run_id = %s", (run_id,)).fetchone()
    return Approval.from_row(row) if row else None


def decide(
    conn: psycopg.Connection[Any],
    run_id: UUID,
    actor: str,
    decision: ApprovalStatus,
    notes: str | None,
    *,
    require_distinct: bool = True,
) -> Approval:
    """Approve or reject the pending approval of a run; the reasons for a refusal are precise."""
    if notes is not None and len(notes) > MAX_NOTES:
        raise InvalidInput("approval_notes", f"at most {MAX_NOTES} characters")
    safe_text.check("approval_notes", notes)
    run = conn.execute(
        "SELECT id, simulation_id, status, patch_id, launched_by FROM sdk_simulation_runs "
        "WHERE id = %s FOR UPDATE",
        (run_id,),
    ).fetchone()
    if run is None:
        raise NotFound(f"run {run_id} not found")
    if run["patch_id"] is None:
        raise Conflict(f"run {run_id} ran without a patch: nothing to approve")
    if run["status"] != RunStatus.SUCCESS.value:
        raise Conflict(
            f"run {run_id} is {run['status']}: only a successful run's patch can "
            "be approved or rejected"
        )
    if require_distinct and run["launched_by"] == actor:
        raise Forbidden(f"{actor} launched this run; another person must decide on its patch")
    row = conn.execute(
        "SELECT id, status FROM sdk_patch_approvals WHERE simulation_run_id = %s FOR UPDATE",
        (run_id,),
    ).fetchone()
    if row is None:
        raise Conflict(f"run {run_id} has no approval request")
    # The one transition table (simcore.rollout) decides; its refusal says what is possible.
    rollout.check(
        ApprovalStatus(row["status"]),
        RolloutAction.APPROVE if decision is ApprovalStatus.APPROVED else RolloutAction.REJECT,
        f"the patch of run {run_id}",
    )
    journal.mark_journaled(conn)
    conn.execute(
        "UPDATE sdk_patch_approvals SET status = %s, approval_notes = %s, decided_by = %s, "
        "decided_at = now(), updated_at = now() WHERE id = %s",
        (decision.value, notes, actor, row["id"]),
    )
    action = (
        JournalAction.APPROVED if decision is ApprovalStatus.APPROVED else JournalAction.REJECTED
    )
    journal.append(
        conn,
        action,
        actor,
        run_id=run_id,
        simulation_id=run["simulation_id"],
        approval_id=row["id"],
        details={"notes": notes, "patch_id": str(run["patch_id"])},
    )
    approval = get_for_run(conn, run_id)
    assert approval is not None
    return approval
