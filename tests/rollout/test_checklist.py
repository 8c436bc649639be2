"""The runbook's daily checklist: each failing condition fails exactly its own item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest

from simcore.auth import Principal
from simcore.errors import Forbidden
from simcore.model import Role, TenantType
from simcore.service import SimulatorService
from tests.rollout.conftest import BOB, Runs

ITEMS = [
    "queue_depth",
    "success_rate",
    "failed_runs",
    "sira_export",
    "stuck_runs",
    "pending_approvals",
    "canary",
]


class Healthy:
    """A day that went well: 30 successful runs, one patch approved and in a healthy canary."""

    def __init__(self, service: SimulatorService, runs: Runs) -> None:
        self.service = service
        self.runs = runs
        with service.db.transaction() as conn:
            for seed in range(30):
                self._insert_run(conn, "success", seed)
            conn.execute(
                "INSERT INTO sdk_anonymized_errors (error_signature, sdk_language, frequency, "
                "context_hash, created_at) VALUES ('timeout:client', 'python', 0.1, "
                "repeat('a', 64), now() - interval '2 hours')"
            )
        (self.canary,) = runs.approved()
        service.stage_patch(BOB, self.canary, "canary at 5%")
        service.record_canary_observation(BOB, self.canary, 0.99, requests=500)

    def _insert_run(
        self, conn: Any, status: str, seed: int, *, age: str = "10 minutes", **extra: Any
    ) -> UUID:
        columns = {
            "simulation_id": self.runs.simulation.id,
            "tenant_type": "internal",
            "seed": seed,
            "status": status,
            **extra,
        }
        names = ", ".join(columns)
        marks = ", ".join(["%s"] * len(columns))
        finished = status not in ("queued", "running")
        row = conn.execute(
            f"INSERT INTO sdk_simulation_runs ({names}, run_at, started_at, completed_at) "
            f"VALUES ({marks}, now() - %s::interval, "
            "CASE WHEN %s THEN now() - %s::interval END, CASE WHEN %s THEN now() END) "
            "RETURNING id",
            (*columns.values(), age, finished, age, finished),
        ).fetchone()
        return UUID(str(row["id"]))

    def insert(self, status: str, seed: int, **kw: Any) -> UUID:
        with self.service.db.transaction() as conn:
            return self._insert_run(conn, status, seed, **kw)


def _queue_of_five(h: Healthy) -> None:
    for seed in range(5):
        h.service.launch_run(BOB, h.runs.simulation.id, 1000 + seed)


def _low_success_rate(h: Healthy) -> None:
    # partial_success: finished and not a success, yet nothing that needs a root cause.
    for seed in range(5):
        h.insert("partial_success", 2000 + seed)


def _a_failed_run(h: Healthy) -> None:
    h.insert("failed", 3000, reasons='["2 duplicate charges"]')


def _old_anonymized_errors(h: Healthy) -> None:
    with h.service.db.transaction() as conn:
        conn.execute(
            "INSERT INTO sdk_anonymized_errors (error_signature, sdk_language, frequency, "
            "context_hash, created_at) VALUES ('signature_mismatch:401', 'node', 0.3, "
            "repeat('b', 64), now() - interval '25 hours')"
        )


def _a_stuck_run(h: Healthy) -> None:
    h.insert("queued", 4000, age="2 hours")


def _a_pending_approval(h: Healthy) -> None:
    h.runs.pending()


def _a_breaching_canary(h: Healthy) -> None:
    for _ in range(3):
        h.service.record_canary_observation(BOB, h.canary, 0.81)


CONDITIONS: dict[str, Callable[[Healthy], None]] = {
    "queue_depth": _queue_of_five,
    "success_rate": _low_success_rate,
    "failed_runs": _a_failed_run,
    "sira_export": _old_anonymized_errors,
    "stuck_runs": _a_stuck_run,
    "pending_approvals": _a_pending_approval,
    "canary": _a_breaching_canary,
}


def test_a_healthy_day_passes_every_item(service: SimulatorService, runs: Runs) -> None:
    Healthy(service, runs)
    result = service.checklist(BOB)
    assert [i.key for i in result.items] == ITEMS
    assert result.ok, [(i.key, i.summary) for i in result.items if not i.ok]
    assert result.item("success_rate").figures["finished"] == 31
    assert result.item("sira_export").figures["pending"] == 1
    (canary,) = result.item("canary").entries
    assert (canary["decision"], canary["rollout_percentage"], canary["latest"][0]["requests"]) == (
        "wait",
        5,
        500,
    )
    assert result.item("queue_depth").title == "Vérifier queue depth < 5"


@pytest.mark.parametrize("condition", ITEMS)
def test_each_condition_fails_exactly_its_item(
    service: SimulatorService, runs: Runs, condition: str
) -> None:
    healthy = Healthy(service, runs)
    CONDITIONS[condition](healthy)
    result = service.checklist(BOB)
    assert result.failed == (condition,), [(i.key, i.summary) for i in result.items]
    item = result.item(condition)
    if condition == "failed_runs":
        (entry,) = item.entries
        assert (entry["status"], entry["reasons"]) == ("failed", ["2 duplicate charges"])
    elif condition == "pending_approvals":
        assert item.figures["count"] == 1 and len(item.entries) == 1
    elif condition == "stuck_runs":
        assert item.entries[0]["status"] == "queued" and item.entries[0]["age_seconds"] > 3600
    elif condition == "canary":
        (entry,) = item.entries
        assert entry["decision"] == "rollback" and not entry["ok"]
        assert [o["success_rate"] for o in entry["latest"]] == [0.99, 0.81, 0.81, 0.81]
    elif condition == "success_rate":
        assert item.figures["success_rate"] == pytest.approx(31 / 36)
    elif condition == "sira_export":
        assert item.figures["older_than_24h"] == 1
    else:
        assert item.figures["queued"] == 5


def test_the_checklist_is_for_ops_and_auditors(service: SimulatorService) -> None:
    assert service.checklist(Principal("carol", Role.AUDITOR)).ok
    for principal in (
        Principal("dan", Role.DEV, TenantType.INTERNAL, "default"),
        Principal("bot", Role.SIRA),
    ):
        with pytest.raises(Forbidden, match="may not run the daily checklist"):
            service.checklist(principal)
