"""A read-only simulator over a fixed data set, for screenshots that must not move.

Times, ids and figures are constants, so the snapshot tests compare pixels, not clocks.
It answers the reads the screens make; every write is refused as for an auditor.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from simcore import journal
from simcore.approvals import Approval
from simcore.auth import Principal
from simcore.errors import Forbidden, NotFound
from simcore.journal import Verification
from simcore.model import (
    ApprovalStatus,
    Patch,
    Run,
    RunStatus,
    Simulation,
    TenantType,
)
from simcore.patches import builtin_patches, default_patch
from simcore.service import RunDetail
from simcore.snapshot import (
    Alert,
    Comparison,
    DashboardSnapshot,
    Kpi,
    LanguageRate,
    QueuePoint,
    RatePoint,
    RecentRun,
)
from simcore.templates import get_template

NOW = datetime(2025, 1, 15, 10, 0, 0, tzinfo=UTC)
NS = uuid.UUID("0e0c0f4a-5b8e-4a57-9d5e-1f2a3b4c5d6e")


def _id(name: str) -> UUID:
    return uuid.uuid5(NS, name)


RUNS: tuple[tuple[str, str, str, str, RunStatus, float | None, float | None, int], ...] = (
    # key, name, language, template, status, success, latency, age in minutes
    (
        "r1",
        "HMAC Signature (python)",
        "python",
        "signature_mismatch",
        RunStatus.RUNNING,
        None,
        None,
        1,
    ),
    ("r2", "Timeout Network (node)", "node", "timeout", RunStatus.QUEUED, None, None, 2),
    ("r3", "Invalid Currency (node)", "node", "invalid_currency", RunStatus.SUCCESS, 1.0, 322.0, 6),
    (
        "r4",
        "Timeout Network (python, bad patch)",
        "python",
        "timeout",
        RunStatus.FAILED,
        0.925,
        2700.0,
        7,
    ),
    ("r5", "HMAC Signature (node)", "node", "signature_mismatch", RunStatus.SUCCESS, 1.0, 610.0, 9),
    (
        "r6",
        "Invalid Currency (python)",
        "python",
        "invalid_currency",
        RunStatus.PARTIAL_SUCCESS,
        0.93,
        330.0,
        45,
    ),
    ("r7", "Timeout Network (python)", "python", "timeout", RunStatus.SUCCESS, 1.0, 2700.0, 180),
    (
        "r8",
        "HMAC Signature (python)",
        "python",
        "signature_mismatch",
        RunStatus.CANCELLED,
        None,
        None,
        600,
    ),
)
PENDING = ("r3", "r5", "r7")


def _patch_for(template: str, language: str, key: str) -> Patch:
    if key == "r4":
        return next(p for p in builtin_patches() if p.slug == "timeout-retry-without-key-python")
    patch = default_patch(get_template(template).scenario.error, language)
    assert patch is not None
    return patch


def _recent() -> tuple[RecentRun, ...]:
    out = []
    for key, name, lang, template, status, rate, latency, age in RUNS:
        run_at = NOW - timedelta(minutes=age)
        started = run_at + timedelta(seconds=20) if status is not RunStatus.QUEUED else None
        done = started + timedelta(seconds=42) if started and status.terminal else None
        out.append(
            RecentRun(
                id=_id(key),
                simulation_id=_id("sim-" + key),
                simulation_name=name,
                sdk_language=lang,
                error=get_template(template).scenario.error.value,
                status=status,
                seed=12345,
                run_at=run_at,
                started_at=started,
                completed_at=done,
                success_rate=rate,
                avg_latency_ms=latency,
                approval_status=ApprovalStatus.PENDING if key in PENDING else None,
                patch_slug=_patch_for(template, lang, key).slug,
                launched_by="ops:demo",
            )
        )
    return tuple(out)


def _approvals() -> tuple[Approval, ...]:
    out = []
    for run in _recent():
        key = next(k for k, *_ in RUNS if _id(k) == run.id)
        if key not in PENDING:
            continue
        template = next(t for k, _, _, t, *_ in RUNS if k == key)
        patch = _patch_for(template, run.sdk_language, key)
        assert run.completed_at is not None
        out.append(
            Approval(
                id=_id("approval-" + key),
                simulation_run_id=run.id,
                patch_id=patch.id,
                tenant_type="internal",
                tenant_id="default",
                status=ApprovalStatus.PENDING,
                requested_by="ops:demo",
                created_at=run.completed_at,
                updated_at=run.completed_at,
                simulation_id=run.simulation_id,
                simulation_name=run.simulation_name,
                sdk_language=run.sdk_language,
                error=run.error,
                patch_slug=patch.slug,
                success_rate=run.success_rate,
                baseline_success_rate=0.78,
            )
        )
    return tuple(out)


def snapshot() -> DashboardSnapshot:
    shape = (0, 1, 3, 2, 1, 0)
    queue_history = (
        *(QueuePoint(NOW - timedelta(minutes=60 - i), shape[i % 6], i % 3 // 2) for i in range(60)),
        QueuePoint(NOW, 1, 1),
    )
    success_history = tuple(
        RatePoint(NOW - timedelta(minutes=10 * (144 - i)), 10, 10 - i % 4, i % 4)
        for i in range(0, 144, 6)
    )
    return DashboardSnapshot(
        taken_at=NOW,
        queued=1,
        running=1,
        oldest_queued_age_seconds=120.0,
        workers_alive=2,
        pending_approvals=3,
        queue_history=queue_history,
        success_history=success_history,
        by_language=(
            LanguageRate("node", 41, 37, 0.982),
            LanguageRate("python", 57, 49, 0.961),
        ),
        recent_runs=_recent(),
        approvals=_approvals(),
        kpis=(
            Kpi("success_rate", "success", 0.871, 0.95, Comparison.ABOVE, "24h", 240),
            Kpi("avg_run_seconds", "avg run", 42.0, 120.0, Comparison.BELOW, "24h", 240),
            Kpi("queue_depth", "queue", 1.0, 5, Comparison.BELOW, "now", 1),
            Kpi("approval_rate", "approval", 0.85, 0.8, Comparison.ABOVE, "7d", 40),
            Kpi("sira_exports", "SIRA/day", 132.0, 100, Comparison.ABOVE, "24h", 132),
        ),
        alerts=(
            Alert(
                "SimulatorHighFailureRate",
                "warning",
                True,
                "3/10 failed in 10 min: 30% (limit 20%)",
                {"failed": 3, "finished": 10, "failure_rate": 0.3},
            ),
            Alert("SimulatorQueueStuck", "critical", False, "1 runs queued", {}),
        ),
    )


LOG = [
    "[runner] sdk=python protocol=1 seed=12345",
    "phase baseline: 100 ops",
    *[f"op op-{i:06d} attempt 1 -> 401 signature_mismatch" for i in range(1, 6)],
    "phase patched: 100 ops",
    *[f"patch_applied op=op-{i:06d} error=signature_mismatch" for i in range(1, 9)],
    "clock re-synced, offset_ms=-42000",
    "done: 100 ops, 100 succeeded",
]


class FrozenSimulator:
    def __init__(self) -> None:
        self.snap = snapshot()

    def close(self) -> None:
        pass

    def dashboard(self, principal: Principal) -> DashboardSnapshot:
        return self.snap

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise Forbidden("frozen data set: nothing can be changed")

    create_simulation = launch_run = rerun = cancel_run = add_patch = _refuse
    approve_patch = reject_patch = _refuse

    def get_simulation(self, principal: Principal, simulation_id: str | UUID) -> Simulation:
        for run in self.snap.recent_runs:
            if str(run.simulation_id) == str(simulation_id):
                key = next(k for k, *_ in RUNS if _id(k) == run.id)
                template = next(t for k, _, _, t, *_ in RUNS if k == key)
                return Simulation(
                    id=run.simulation_id,
                    tenant_type=TenantType.INTERNAL,
                    tenant_id="default",
                    name=run.simulation_name,
                    sdk_language=run.sdk_language,  # type: ignore[arg-type]
                    scenario=get_template(template).scenario,
                    patch_reference=_patch_for(template, run.sdk_language, key).id,
                    created_by="ops:demo",
                    created_at=run.run_at,
                )
        raise NotFound(f"simulation {simulation_id} not found")

    def list_simulations(self, principal: Principal, limit: int = 100) -> list[Simulation]:
        return [self.get_simulation(principal, r.simulation_id) for r in self.snap.recent_runs]

    def get_run(self, principal: Principal, run_id: str | UUID) -> RunDetail:
        for recent in self.snap.recent_runs:
            if str(recent.id) != str(run_id):
                continue
            sim = self.get_simulation(principal, recent.simulation_id)
            metrics = None
            if recent.success_rate is not None:
                metrics = {
                    "success_rate": recent.success_rate,
                    "avg_latency_ms": recent.avg_latency_ms,
                    "p95_latency_ms": 900.0,
                    "failed_requests": round(100 * (1 - recent.success_rate)),
                    "retries": 22,
                    "duplicate_charges": 0,
                    "wrong_payments": 0,
                    "patch_invocations": 22,
                    "patch_errors": 0,
                    "regressions": 0,
                    "baseline": {
                        "success_rate": 0.78,
                        "avg_latency_ms": 560.0,
                        "p95_latency_ms": 1000.0,
                        "failed_requests": 22,
                        "retries": 0,
                        "duplicate_charges": 0,
                        "wrong_payments": 0,
                        "patch_invocations": 0,
                        "patch_errors": 0,
                    },
                }
            run = Run(
                id=recent.id,
                simulation_id=recent.simulation_id,
                tenant_type=TenantType.INTERNAL,
                tenant_id="default",
                seed=recent.seed,
                status=recent.status,
                patch_id=sim.patch_reference,
                metrics=metrics,
                reasons=["success rate 100.0% meets the 85.0% threshold (baseline 78.0%)"]
                if recent.status is RunStatus.SUCCESS
                else [],
                run_at=recent.run_at,
                started_at=recent.started_at,
                completed_at=recent.completed_at,
                worker_id="worker-1",
                attempts=1,
                sandbox_backend="process",
                simulator_version="0.1.0",
                launched_by=recent.launched_by,
                log_lines=len(LOG),
            )
            entries = [
                journal.Entry(
                    i,
                    run.id,
                    run.simulation_id,
                    None,
                    action,
                    actor,
                    details,
                    f"{i - 1:064x}",
                    f"{i:064x}",
                    recent.run_at + timedelta(seconds=20 * (i - 1)),
                )
                for i, (action, actor, details) in enumerate(
                    (
                        ("queued", "ops:demo", {"seed": 12345}),
                        ("started", "system", {"attempt": 1, "worker_id": "worker-1"}),
                        ("applied_patch", "system", {"count": 22, "errors": 0}),
                        ("completed", "system", {"status": "success"}),
                    ),
                    start=1,
                )
            ]
            return RunDetail(run, sim, entries)
        raise NotFound(f"run {run_id} not found")

    def list_runs(self, principal: Principal, **kwargs: Any) -> list[Run]:
        return [self.get_run(principal, r.id).run for r in self.snap.recent_runs]

    def read_log(
        self, principal: Principal, run_id: str | UUID, after_seq: int = -1, limit: int = 5000
    ) -> list[tuple[int, str]]:
        return [(i, line) for i, line in enumerate(LOG) if i > after_seq][:limit]

    def list_patches(
        self, principal: Principal, *, language: str | None = None, include_inactive: bool = False
    ) -> list[Patch]:
        return [p for p in builtin_patches() if language is None or p.sdk_language == language]

    def get_patch(self, principal: Principal, ref: str | UUID) -> Patch:
        for patch in builtin_patches():
            if str(ref) in (str(patch.id), patch.slug):
                return patch
        raise NotFound(f"patch {ref} not found in the registry")

    def list_approvals(
        self, principal: Principal, *, status: ApprovalStatus | None = None, limit: int = 100
    ) -> list[Approval]:
        return list(self.snap.approvals)

    def verify_journal(self, principal: Principal) -> Verification:
        return Verification(True, 4)
