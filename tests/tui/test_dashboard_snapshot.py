"""``simcore.dashboard``: the figures behind the panes, KPIs and alerts, in tenant scope."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from simcore import dashboard
from simcore.auth import Principal
from simcore.errors import Forbidden
from simcore.model import Role, RunStatus, TenantType
from simcore.service import SimulatorService
from tests.tui.helpers import APPROVER, LAUNCHER, finished_run, simulation

SIRA = Principal("sira-bot", Role.SIRA)


def _age(service: SimulatorService, run_id: UUID, **times: timedelta | None) -> None:
    """Move a run's timestamps into the past (each given as an age)."""
    sets = ", ".join(
        f"{k} = now() - %s" if v is not None else f"{k} = NULL" for k, v in times.items()
    )
    with service.db.transaction() as conn:
        conn.execute(
            f"UPDATE sdk_simulation_runs SET {sets} WHERE id = %s",
            (*[v for v in times.values() if v is not None], run_id),
        )


def _snapshot(service: SimulatorService, who: Principal = APPROVER) -> dashboard.DashboardSnapshot:
    return service.dashboard(who)


def test_kpis_and_rates(service: SimulatorService) -> None:
    ok = [finished_run(service) for _ in range(3)]
    failed = finished_run(service, status=RunStatus.FAILED, language="node")
    for run_id in ok:
        _age(service, run_id, started_at=timedelta(seconds=100), completed_at=timedelta(0))
    _age(service, failed, started_at=timedelta(seconds=200), completed_at=timedelta(0))
    service.approve_patch(APPROVER, ok[0], "fine")
    service.reject_patch(APPROVER, ok[1], "no")
    with service.db.transaction() as conn:
        for i, exported in enumerate((True, True, False)):
            conn.execute(
                "INSERT INTO sdk_anonymized_errors (run_id, error_signature, sdk_language, "
                "frequency, context_hash, exported_to_sira, exported_at) VALUES (%s, 'x:1', "
                "'python', 0.1, encode(sha256(%s::bytea), 'hex'), %s, CASE WHEN %s THEN now() "
                "END)",
                (ok[0], f"c{i}", exported, exported),
            )
    snap = _snapshot(service)
    kpi = {k.key: k for k in snap.kpis}
    assert kpi["success_rate"].value == pytest.approx(0.75) and kpi["success_rate"].ok is False
    assert kpi["success_rate"].sample == 4
    assert kpi["avg_run_seconds"].value == pytest.approx(125.0, abs=1)
    assert kpi["avg_run_seconds"].ok is False  # over the runbook's 2 minutes
    assert kpi["queue_depth"].value == 0 and kpi["queue_depth"].ok is True
    assert kpi["approval_rate"].value == pytest.approx(0.5) and kpi["approval_rate"].sample == 2
    assert kpi["sira_exports"].value == 2 and kpi["sira_exports"].ok is False
    languages = {r.sdk_language: r for r in snap.by_language}
    assert languages["python"].total_runs == 3 and languages["python"].successful == 3
    assert languages["node"].success_rate == 0.0
    assert languages["python"].avg_success_rate == pytest.approx(0.97)
    assert sum(p.finished for p in snap.success_history) == 4
    assert snap.pending_approvals == 1 and len(snap.approvals) == 1
    assert snap.recent_runs[0].id == failed
    assert snap.recent_runs[0].patch_slug == "signature_mismatch-resync-clock-node"


def test_high_failure_rate_alert_fires_with_its_figures(service: SimulatorService) -> None:
    for _ in range(2):
        finished_run(service)
    for _ in range(3):
        finished_run(service, status=RunStatus.FAILED)
    older = finished_run(service, status=RunStatus.FAILED)
    _age(service, older, completed_at=timedelta(minutes=30))
    alert = {a.name: a for a in _snapshot(service).alerts}["SimulatorHighFailureRate"]
    assert alert.firing
    assert alert.figures == {"failed": 3, "finished": 5, "failure_rate": 0.6}
    assert alert.summary == "3/5 failed in 10 min: 60% (limit 20%)"


def test_queue_stuck_alert_needs_depth_and_age(service: SimulatorService) -> None:
    sim = simulation(service)
    runs = [service.launch_run(LAUNCHER, sim.id, s).run.id for s in range(11)]
    snap = _snapshot(service)
    stuck = {a.name: a for a in snap.alerts}["SimulatorQueueStuck"]
    assert not stuck.firing, "11 queued but none waiting 30 min yet"
    _age(service, runs[0], run_at=timedelta(minutes=31))
    snap = _snapshot(service)
    stuck = {a.name: a for a in snap.alerts}["SimulatorQueueStuck"]
    assert stuck.firing and stuck.figures["queued"] == 11
    assert snap.oldest_queued_age_seconds == pytest.approx(31 * 60, abs=5)
    assert snap.kpi("queue_depth").ok is False


def test_queue_history_rebuilds_the_last_hour(service: SimulatorService) -> None:
    sim = simulation(service)
    run_id = finished_run(service)
    _age(
        service,
        run_id,
        run_at=timedelta(minutes=30),
        started_at=timedelta(minutes=20),
        completed_at=timedelta(minutes=10),
    )
    service.launch_run(LAUNCHER, sim.id, 1)
    history = _snapshot(service).queue_history
    assert len(history) == dashboard.QUEUE_HISTORY_MINUTES + 1
    now = history[-1].at

    def at(minutes: int) -> tuple[int, int]:
        point = min(history, key=lambda p: abs((now - p.at) - timedelta(minutes=minutes)))
        return point.queued, point.running

    assert at(25) == (1, 0)
    assert at(15) == (0, 1)
    assert at(5) == (0, 0)
    assert (history[-1].queued, history[-1].running) == (1, 0)


def test_tenant_scope(service: SimulatorService) -> None:
    finished_run(service)
    merchant = service.create_simulation(
        LAUNCHER,
        {
            "name": "merchant sim",
            "sdk_language": "python",
            "scenario": simulation(service).scenario,
            "tenant_type": "merchant",
            "tenant_id": "m1",
        },
    )
    service.launch_run(LAUNCHER, merchant.id, 3)
    dev = Principal("dana", Role.DEV, TenantType.MERCHANT, "m1")
    scoped = _snapshot(service, dev)
    assert [r.simulation_name for r in scoped.recent_runs] == ["merchant sim"]
    assert scoped.queued == 1 and scoped.pending_approvals == 0 and scoped.approvals == ()
    assert scoped.kpi("success_rate").value is None
    assert scoped.scope == "merchant/m1"
    everyone = _snapshot(service)
    assert len(everyone.recent_runs) == 2 and everyone.pending_approvals == 1
    with pytest.raises(Forbidden):
        service.dashboard(SIRA)


def test_approximate_matches_the_database(service: SimulatorService) -> None:
    ok = finished_run(service)
    finished_run(service, status=RunStatus.FAILED, language="node", template="timeout")
    service.approve_patch(APPROVER, ok, None)
    finished_run(service)
    exact = _snapshot(service)
    runs = service.list_runs(APPROVER, limit=100)
    sims = {s.id: s for s in service.list_simulations(APPROVER)}
    approvals = service.list_approvals(APPROVER)
    pending = [a for a in approvals if a.status.value == "pending"]
    decided = [a for a in approvals if a.status.value != "pending"]
    approx = dashboard.approximate(exact.taken_at, runs, sims, pending, decided, principal=APPROVER)

    def figures(s: dashboard.DashboardSnapshot) -> dict[str, Any]:
        return {
            "queued": s.queued,
            "running": s.running,
            # Durations differ below the millisecond (Run.duration_ms is whole ms): see below.
            "kpis": {
                k.key: (None if k.key == "avg_run_seconds" else k.value, k.sample)
                for k in s.kpis
                if k.key != "sira_exports"
            },
            "languages": [(r.sdk_language, r.total_runs, r.successful) for r in s.by_language],
            "recent": [(r.id, r.status, r.approval_status) for r in s.recent_runs],
            "alerts": [(a.name, a.firing) for a in s.alerts],
            "finished": sum(p.finished for p in s.success_history),
        }

    assert figures(approx) == figures(exact)
    assert approx.partial and exact.partial is None
    assert exact.kpi("avg_run_seconds").value == pytest.approx(
        approx.kpi("avg_run_seconds").value or 0, abs=0.01
    )


def test_journal_tail_is_newest_first_and_scoped(service: SimulatorService) -> None:
    run_id = finished_run(service)
    with service.db.transaction() as conn:
        entries = dashboard.journal_tail(conn, APPROVER, 10)
        scoped = dashboard.journal_tail(
            conn, Principal("d", Role.DEV, TenantType.MERCHANT, "m1"), 10
        )
    assert [e.action for e in entries][:2] == ["completed", "queued"]
    assert entries[0].run_id == run_id and entries[0].id > entries[-1].id
    assert scoped == []
