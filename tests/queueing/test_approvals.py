from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from simcore.auth import Principal
from simcore.config import Settings
from simcore.errors import Conflict, Forbidden, InvalidInput
from simcore.model import ApprovalStatus, Role
from simcore.service import SimulatorService
from simcore.worker import Worker
from tests.queueing.helpers import OPS, make_simulation
from tests.queueing.test_worker import ScriptedExecutor

BOB = Principal("bob", Role.OPS)
AUDITOR = Principal("carol", Role.AUDITOR)


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc


@pytest.fixture
def done_run(service: SimulatorService) -> Any:
    patch = service.add_patch(
        OPS,
        {
            "sdk_language": "python",
            "error_signature": "signature_mismatch",
            "patch_code": "ctx.retry()",
        },
    )
    sim = make_simulation(service, patch=patch.id)
    run_id = service.launch_run(OPS, sim.id, 12345).run.id
    Worker(service.db, ScriptedExecutor(), exit_when_idle=True, on_event=lambda m: None).run()
    return run_id


def test_approve_by_another_ops_is_journaled(service: SimulatorService, done_run: Any) -> None:
    assert [a.status for a in service.list_approvals(OPS)] == [ApprovalStatus.PENDING]
    approval = service.approve_patch(BOB, done_run, "Validated in sandbox, ready for staging")
    assert approval.status is ApprovalStatus.APPROVED and approval.decided_by == "ops:bob"
    last = service.get_run(OPS, done_run).journal[-1]
    assert (last.action, last.actor, last.details["notes"]) == (
        "approved",
        "ops:bob",
        "Validated in sandbox, ready for staging",
    )
    with pytest.raises(Conflict, match="already approved"):
        service.reject_patch(BOB, done_run, "changed my mind")


def test_refusals_say_why(service: SimulatorService, done_run: Any) -> None:
    with pytest.raises(Forbidden, match="another person must decide"):
        service.approve_patch(OPS, done_run, None)
    with pytest.raises(Forbidden, match="role auditor may not approve"):
        service.approve_patch(AUDITOR, done_run, None)
    with pytest.raises(InvalidInput, match="approval_notes: a rejection needs a note"):
        service.reject_patch(BOB, done_run, "  ")
    # The dashboard's note field reaches the service without the API's schema in front.
    with pytest.raises(InvalidInput, match="approval_notes: must not contain control char"):
        service.reject_patch(BOB, done_run, "p99\x1b[2J too high")
    with pytest.raises(InvalidInput, match="reason: must not contain control char"):
        service.stage_patch(OPS, done_run, "go\x9b")
    rejected = service.reject_patch(BOB, done_run, "p99 too high")
    assert rejected.status is ApprovalStatus.REJECTED


def test_only_successful_patched_runs(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    with pytest.raises(Conflict, match="without a patch"):
        service.approve_patch(BOB, run_id, None)
