"""RemoteService after approval: stage, promote, roll back, the canary and the checklist over
a real server answer what SimulatorService answers locally, errors included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from simcore.auth import Principal
from simcore.checklist import Checklist, Item
from simcore.client import RemoteService
from simcore.errors import Conflict, Forbidden, InvalidInput, NotFound
from simcore.model import ApprovalStatus, Role
from simcore.rollout import (
    CanaryReport,
    CanaryRule,
    Decision,
    Evaluation,
    HookResult,
    Observation,
    RolloutAction,
    TransitionResult,
)
from simcore.service import SimulatorService
from simcore.templates import get_template
from tests.api.conftest import LAUNCHER, LiveServer, Tokens, finish_run

ALICE = Principal("alice", Role.OPS)
"""The local twin of the `alice` ops token."""
BOB = Principal("bob", Role.OPS)
AUDITOR = Principal("audrey", Role.AUDITOR)


@pytest.fixture
def remote(live: LiveServer, tokens: Tokens) -> Iterator[RemoteService]:
    with RemoteService(live.url, tokens.ops) as client:
        yield client


def approved_run(service: SimulatorService) -> UUID:
    """A successful patched run launched by `launcher`, approved by bob (four eyes)."""
    patch = service.list_patches(LAUNCHER, language="python")[0]
    sim = service.create_simulation(
        LAUNCHER,
        {
            "name": "rollout",
            "sdk_language": "python",
            "scenario": get_template("signature_mismatch").scenario,
            "patch_reference": patch.id,
        },
    )
    run_id = service.launch_run(LAUNCHER, sim.id, 1).run.id
    finish_run(service, run_id)
    service.approve_patch(BOB, run_id, "looks right")
    return run_id


def approval_row(service: SimulatorService, run_id: UUID) -> dict[str, Any]:
    with service.db.transaction() as conn:
        row = conn.execute(
            "SELECT status, rollout_percentage, last_transition_by, last_transition_reason "
            "FROM sdk_patch_approvals WHERE simulation_run_id = %s",
            (run_id,),
        ).fetchone()
    assert row is not None
    return dict(row)


def test_ops_stages_promotes_and_rolls_back_over_the_api(
    remote: RemoteService, service: SimulatorService
) -> None:
    run_id = approved_run(service)

    staged = remote.stage_patch(ALICE, run_id, "canary at 5%")
    assert isinstance(staged, TransitionResult)
    assert staged.action is RolloutAction.STAGE
    assert (staged.from_status, staged.from_percent) == (ApprovalStatus.APPROVED, 0)
    assert (staged.rollout.status, staged.rollout.rollout_percentage) == (
        ApprovalStatus.STAGED,
        5,
    )
    assert staged.hook.dry_run and staged.hook.status_text == "dry-run"
    assert approval_row(service, run_id) == {
        "status": "staged",
        "rollout_percentage": 5,
        "last_transition_by": "ops:alice",
        "last_transition_reason": "canary at 5%",
    }

    report = remote.evaluate_canary(ALICE, str(run_id))
    local = service.evaluate_canary(ALICE, run_id)
    assert isinstance(report, CanaryReport) and report.evaluation is not None
    assert report.rollout == local.rollout
    assert local.evaluation is not None
    assert report.evaluation.decision is local.evaluation.decision is Decision.WAIT
    assert report.observations == local.observations == ()

    promoted = remote.promote_patch(ALICE, run_id, "  healthy  ")
    assert promoted.from_percent == 5
    assert promoted.rollout.rollout_percentage == staged.rollout.next_percentage
    assert promoted.rollout.last_transition_reason == "healthy"

    rolled_back = remote.rollback_patch(ALICE, run_id, "errors up")
    assert rolled_back.rollout.status is ApprovalStatus.ROLLED_BACK
    assert rolled_back.rollout.rollout_percentage == 0
    assert approval_row(service, run_id)["status"] == "rolled_back"

    journal = service.get_run(LAUNCHER, run_id).journal
    to = promoted.rollout.status.value  # staged at the next step, or deployed at 100%
    assert [e.action for e in journal][-3:] == ["staged", to, "rolled_back"]
    assert [e.id for e in journal][-3:] == [
        staged.journal_id,
        promoted.journal_id,
        rolled_back.journal_id,
    ]
    assert {e.actor for e in journal[-3:]} == {"ops:alice"}
    assert journal[-1].details["reason"] == "errors up"
    assert service.verify_journal(ALICE).ok


def _same_error(remote_call: Any, local_call: Any, kind: type[Exception]) -> tuple[str, str]:
    with pytest.raises(kind) as from_remote:
        remote_call()
    with pytest.raises(kind) as from_local:
        local_call()
    assert type(from_remote.value) is type(from_local.value)
    if isinstance(from_local.value, InvalidInput):
        assert isinstance(from_remote.value, InvalidInput)
        assert from_remote.value.field == from_local.value.field
    return str(from_remote.value), str(from_local.value)


def test_errors_are_the_local_ones(
    remote: RemoteService, service: SimulatorService, live: LiveServer, tokens: Tokens
) -> None:
    run_id = approved_run(service)
    unknown = uuid.uuid4()

    # The auditor: the same Forbidden, with the same words.
    with RemoteService(live.url, tokens.auditor) as as_auditor:
        for method in ("stage_patch", "promote_patch", "rollback_patch"):
            remote_msg, local_msg = _same_error(
                lambda m=method: getattr(as_auditor, m)(AUDITOR, run_id, "no"),
                lambda m=method: getattr(service, m)(AUDITOR, run_id, "no"),
                Forbidden,
            )
            assert remote_msg == local_msg
        remote_msg, local_msg = _same_error(
            lambda: as_auditor.evaluate_canary(AUDITOR, run_id, apply=True),
            lambda: service.evaluate_canary(AUDITOR, run_id, apply=True),
            Forbidden,
        )
        assert remote_msg == local_msg
        # Reading the canary is allowed to the auditor, as locally.
        assert as_auditor.evaluate_canary(AUDITOR, run_id).rollout == (
            service.evaluate_canary(AUDITOR, run_id).rollout
        )
    assert approval_row(service, run_id)["status"] == "approved"

    # An illegal step: the engine's reason (promote an approved, never staged, patch).
    remote_msg, local_msg = _same_error(
        lambda: remote.promote_patch(ALICE, run_id, "too early"),
        lambda: service.promote_patch(ALICE, run_id, "too early"),
        Conflict,
    )
    assert remote_msg == local_msg and "approved" in remote_msg
    _same_error(
        lambda: remote.rollback_patch(ALICE, run_id, "nothing to roll back"),
        lambda: service.rollback_patch(ALICE, run_id, "nothing to roll back"),
        Conflict,
    )

    # Unknown, malformed, no reason.
    for method, args, kind in [
        ("stage_patch", (unknown, "why"), NotFound),
        ("evaluate_canary", (unknown,), NotFound),
        ("stage_patch", ("../../metrics", "why"), InvalidInput),
        ("evaluate_canary", ("not-a-uuid",), InvalidInput),
        ("stage_patch", (run_id, None), InvalidInput),
        ("rollback_patch", (run_id, "   "), InvalidInput),
        ("rollback_patch", (run_id, "x" * 4001), InvalidInput),
    ]:
        remote_msg, local_msg = _same_error(
            lambda m=method, a=args: getattr(remote, m)(ALICE, *a),
            lambda m=method, a=args: getattr(service, m)(ALICE, *a),
            kind,
        )
        assert remote_msg == local_msg
    assert approval_row(service, run_id)["status"] == "approved"


def test_what_the_api_cannot_honour_is_refused(
    remote: RemoteService, service: SimulatorService
) -> None:
    run_id = approved_run(service)
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput) as refused:
        remote.stage_patch(ALICE, run_id, "why", now=now)
    assert refused.value.field == "now" and "own clock" in str(refused.value)
    with pytest.raises(InvalidInput, match="now"):
        remote.checklist(ALICE, now=now)
    with pytest.raises(InvalidInput) as refused:
        remote.evaluate_canary(ALICE, run_id, scrape=True)
    assert refused.value.field == "scrape"
    assert approval_row(service, run_id)["status"] == "approved"


def _stable(item: Item) -> tuple[Any, ...]:
    """An item without its ages, which move between two reads."""
    figures = {k: v for k, v in item.figures.items() if "age" not in k}
    return item.key, item.title, item.ok, figures, item.entries


def test_the_checklist_is_the_local_one(
    remote: RemoteService, service: SimulatorService, live: LiveServer, tokens: Tokens
) -> None:
    run_id = approved_run(service)
    service.stage_patch(ALICE, run_id, "canary at 5%")
    checked = remote.checklist(ALICE)
    local = service.checklist(ALICE)
    assert isinstance(checked, Checklist)
    assert checked.scope == local.scope
    assert [_stable(i) for i in checked.items] == [_stable(i) for i in local.items]
    assert checked.failed == local.failed
    assert abs(checked.at - local.at) < timedelta(minutes=1)
    with RemoteService(live.url, tokens.auditor) as as_auditor:
        audited = as_auditor.checklist(AUDITOR)
    assert [i.key for i in audited.items] == [i.key for i in local.items]


# -- from_json: the exact inverse of to_json --------------------------------------------------


def test_from_json_round_trips_what_the_engine_returns(service: SimulatorService) -> None:
    run_id = approved_run(service)
    staged = service.stage_patch(ALICE, run_id, "canary at 5%")
    assert TransitionResult.from_json(staged.to_json()) == staged
    service.record_canary_observation(ALICE, run_id, 0.97, requests=120)
    report = service.evaluate_canary(ALICE, run_id)
    assert report.evaluation is not None and report.observations
    assert CanaryReport.from_json(report.to_json()) == report
    checklist = service.checklist(ALICE)
    assert Checklist.from_json(checklist.to_json()) == checklist


def test_from_json_round_trips_every_field() -> None:
    now = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    hook = HookResult(("deploy", "--percent", "25"), False, 1, "boom\n", 42, "exit status 1")
    assert HookResult.from_json(hook.to_json()) == hook
    rule = CanaryRule(0.9, timedelta(minutes=30), 3, 2, timedelta(seconds=90.5))
    assert CanaryRule.from_json(rule.to_json()) == rule
    observation = Observation(7, uuid.uuid4(), now, 0.9625, None, 25, "cli", "ops:bob")
    assert Observation.from_json(observation.to_json()) == observation
    evaluation = Evaluation(
        Decision.ROLLBACK,
        "three breaches",
        ApprovalStatus.STAGED,
        25,
        50,
        now,
        now - timedelta(hours=2),
        9,
        6,
        0.5,
        0.8125,
        observation,
        3,
        True,
        rule,
    )
    assert Evaluation.from_json(evaluation.to_json()) == evaluation
    bare = Evaluation(
        Decision.WAIT,
        "nothing yet",
        ApprovalStatus.DEPLOYED,
        100,
        None,
        now,
        None,
        0,
        0,
        None,
        None,
        None,
        0,
        False,
    )
    assert Evaluation.from_json(bare.to_json()) == bare
    checklist = Checklist(
        now,
        "all tenants",
        (
            Item("a", "Title é", True, "fine", {"n": 1, "rate": None}, ({"run_id": "x"},)),
            Item("b", "Other", False, "bad"),
        ),
    )
    assert Checklist.from_json(checklist.to_json()) == checklist
