"""The runbook's by-hand `UPDATE sdk_patch_approvals SET status = 'staged'` in psql."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import psycopg
import pytest

from simcore import journal, rollout
from simcore.model import ApprovalStatus
from simcore.service import SimulatorService
from tests.rollout.conftest import BOB, Runs
from tests.runbook import psql_commands

RUNBOOK_STAGE = next(s for s in psql_commands() if "SET status = 'staged'" in s)


@pytest.fixture
def psql(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A person's psql session: autocommit, no simtui.journaled."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


def _user(psql: psycopg.Connection[Any]) -> str:
    row = psql.execute("SELECT session_user").fetchone()
    assert row is not None
    return f"sql:{row[0]}"


def _rollout(service: SimulatorService, run_id: UUID) -> rollout.Rollout:
    with service.db.transaction() as conn:
        return rollout.load(conn, run_id)


def _entries(service: SimulatorService, run_id: UUID) -> list[journal.Entry]:
    with service.db.transaction() as conn:
        return journal.entries(conn, approval_id=rollout.load(conn, run_id).approval_id)


def test_the_runbook_statement_stages_consistently_and_is_journaled(
    service: SimulatorService, runs: Runs, psql: psycopg.Connection[Any]
) -> None:
    (run_id,) = runs.approved()
    assert "WHERE simulation_run_id = 'RUN_ID'" in RUNBOOK_STAGE
    cur = psql.execute(RUNBOOK_STAGE.replace("RUN_ID", str(run_id)))
    assert cur.rowcount == 1
    r = _rollout(service, run_id)
    who = _user(psql)
    assert (r.status, r.rollout_percentage, r.rollout_steps) == (
        ApprovalStatus.STAGED,
        5,
        (5, 100),
    )
    assert r.staged_at is not None and r.step_started_at == r.staged_at
    assert (r.last_transition_by, r.canary_status, r.decided_by) == (who, "wait", "ops:bob")
    last = _entries(service, run_id)[-1]
    assert (last.action, last.actor, last.run_id, last.approval_id) == (
        "staged",
        who,
        run_id,
        r.approval_id,
    )
    assert last.details == {
        "from": "approved",
        "to": "staged",
        "from_percent": 0,
        "to_percent": 5,
        "rollout_steps": [5, 100],
        "patch_id": str(r.patch_id),
        "reason": "changed by hand in SQL",
        "by_hand": True,
    }
    assert rollout.replay(_entries(service, run_id)) == (ApprovalStatus.STAGED, 5)
    assert service.verify_journal(BOB).ok
    # simcore carries on from the by-hand state: the runbook's next step is 100 %.
    deployed = service.promote_patch(BOB, run_id, "success > 95% after 1h")
    assert (deployed.rollout.status, deployed.rollout.rollout_percentage) == (
        ApprovalStatus.DEPLOYED,
        100,
    )


def test_an_illegal_change_by_hand_is_refused_with_the_reason(
    service: SimulatorService, runs: Runs, psql: psycopg.Connection[Any]
) -> None:
    (pending,) = runs.pending()
    before = len(_entries(service, pending))
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        psql.execute(RUNBOOK_STAGE.replace("RUN_ID", str(pending)))
    assert f"approval of run {pending}: pending -> staged is not allowed" in str(info.value)
    assert info.value.diag.message_hint == "from pending only: approved, rejected"
    r = _rollout(service, pending)
    assert (r.status, r.rollout_percentage, r.staged_at) == (ApprovalStatus.PENDING, 0, None)
    assert len(_entries(service, pending)) == before

    (run_id,) = runs.approved()
    psql.execute(RUNBOOK_STAGE.replace("RUN_ID", str(run_id)))
    refusals = {
        "SET rollout_percentage = 50": "staged at 5%: the next step of the plan {5,100} is "
        "deployed (SET status = 'deployed')",
        "SET status = 'approved'": "staged -> approved is not allowed",
        "SET status = 'pending'": "staged -> pending is not allowed",
        "SET rollout_steps = '{5,50}'": 'check constraint "sdk_approvals_rollout_steps_valid"',
    }
    for change, message in refusals.items():
        with pytest.raises(psycopg.errors.CheckViolation, match=re.escape(message)):
            psql.execute(
                f"UPDATE sdk_patch_approvals {change} WHERE simulation_run_id = %s", (run_id,)
            )
    assert _rollout(service, run_id).status is ApprovalStatus.STAGED
    with pytest.raises(psycopg.errors.CheckViolation, match="created pending, not deployed"):
        psql.execute(
            "INSERT INTO sdk_patch_approvals (simulation_run_id, patch_id, tenant_type, status) "
            "SELECT id, patch_id, tenant_type, 'deployed' FROM sdk_simulation_runs "
            "WHERE id <> %s LIMIT 1",
            (run_id,),
        )

    # Rolled back by hand: 0 %, stamped, journaled; and final.
    psql.execute(
        "UPDATE sdk_patch_approvals SET status = 'rolled_back' WHERE simulation_run_id = %s",
        (run_id,),
    )
    r = _rollout(service, run_id)
    assert (r.status, r.rollout_percentage) == (ApprovalStatus.ROLLED_BACK, 0)
    assert r.rolled_back_at is not None and r.step_started_at is None
    with pytest.raises(psycopg.errors.CheckViolation) as final:
        psql.execute(
            "UPDATE sdk_patch_approvals SET status = 'staged' WHERE simulation_run_id = %s",
            (run_id,),
        )
    assert final.value.diag.message_hint == "rolled_back is final: nothing can follow it"
    assert [e.action for e in _entries(service, run_id)][-2:] == ["staged", "rolled_back"]
    assert rollout.replay(_entries(service, run_id)) == (ApprovalStatus.ROLLED_BACK, 0)


def test_by_hand_promotion_follows_the_row_plan(
    service: SimulatorService, runs: Runs, psql: psycopg.Connection[Any]
) -> None:
    (run_id,) = runs.approved()
    psql.execute(
        "UPDATE sdk_patch_approvals SET rollout_steps = '{1,10,100}' WHERE simulation_run_id = %s",
        (run_id,),
    )
    psql.execute(RUNBOOK_STAGE.replace("RUN_ID", str(run_id)))
    assert _rollout(service, run_id).rollout_percentage == 1
    with pytest.raises(psycopg.errors.CheckViolation, match=r"next step .* is 10%, not deployed"):
        psql.execute(
            "UPDATE sdk_patch_approvals SET status = 'deployed' WHERE simulation_run_id = %s",
            (run_id,),
        )
    psql.execute(
        "UPDATE sdk_patch_approvals SET rollout_percentage = 10 WHERE simulation_run_id = %s",
        (run_id,),
    )
    psql.execute(
        "UPDATE sdk_patch_approvals SET status = 'deployed' WHERE simulation_run_id = %s",
        (run_id,),
    )
    r = _rollout(service, run_id)
    assert (r.status, r.rollout_percentage) == (ApprovalStatus.DEPLOYED, 100)
    assert r.deployed_at is not None
    assert [(e.action, e.details.get("to_percent")) for e in _entries(service, run_id)] == [
        ("approved", None),
        ("staged", 1),
        ("staged", 10),
        ("deployed", 100),
    ]
    assert rollout.replay(_entries(service, run_id)) == (ApprovalStatus.DEPLOYED, 100)
