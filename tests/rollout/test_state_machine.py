"""The approval lifecycle as one state machine, exercised by random people in random order.

The model below is written from the issue's rules, not from simcore.rollout, so the property
test compares two independent readings of the rules: random sequences of actions by random
roles (through the service, and by hand in SQL as the runbook does) never reach a state the
rules forbid, each refusal leaves the state as it was, and replaying an approval's journal
gives the state the database holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from simcore import journal, rollout
from simcore.auth import Principal
from simcore.errors import Conflict, Forbidden, InvalidInput
from simcore.model import ApprovalStatus, Role, TenantType
from simcore.rollout import RolloutAction
from simcore.service import SimulatorService
from tests.rollout.conftest import BOB, LAUNCHER, Runs

S = ApprovalStatus
LEGAL: dict[ApprovalStatus, set[ApprovalStatus]] = {
    S.PENDING: {S.APPROVED, S.REJECTED},
    S.APPROVED: {S.STAGED},
    S.STAGED: {S.STAGED, S.DEPLOYED, S.ROLLED_BACK},
    S.DEPLOYED: {S.ROLLED_BACK},
    S.REJECTED: set(),
    S.ROLLED_BACK: set(),
}

PEOPLE = {
    "ops:bob": BOB,
    "ops:alice": LAUNCHER,
    "dev:dan": Principal("dan", Role.DEV, TenantType.INTERNAL, "default"),
    "auditor:carol": Principal("carol", Role.AUDITOR),
    "sira:bot": Principal("bot", Role.SIRA),
}
PLANS = [(5, 100), (100,), (1, 10, 50, 100), (25, 50, 75, 100)]


def test_the_database_copy_of_the_table_is_the_table(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        stored = set(
            conn.execute("SELECT from_status, to_status, action FROM sdk_approval_transitions")
        )
    table = {(t.source.value, t.target.value, t.action.value) for t in rollout.TRANSITIONS}
    assert stored == table
    assert {(a.value, b.value) for a, targets in LEGAL.items() for b in targets} == {
        (s, t) for s, t, _ in table
    }


def test_refusals_name_the_state_and_what_is_possible() -> None:
    with pytest.raises(Conflict, match=r"is pending: it cannot be staged \(from pending: approve"):
        rollout.next_state(S.PENDING, 0, (5, 100), RolloutAction.STAGE)
    with pytest.raises(Conflict, match=r"already rolled_back: it cannot be promoted .*is final"):
        rollout.next_state(S.ROLLED_BACK, 0, (5, 100), RolloutAction.PROMOTE)
    assert rollout.next_state(S.STAGED, 10, (1, 10, 50, 100), RolloutAction.PROMOTE) == (
        S.STAGED,
        50,
    )
    assert rollout.next_state(S.STAGED, 50, (1, 10, 50, 100), RolloutAction.PROMOTE) == (
        S.DEPLOYED,
        100,
    )


# -- the model ----------------------------------------------------------------------------------


@dataclass
class Model:
    status: ApprovalStatus
    percent: int
    plan: tuple[int, ...]


def _next_step(model: Model) -> int | None:
    later = [s for s in model.plan if s > model.percent]
    return later[0] if later else None


def expect_service(model: Model, who: str, action: str, hook_fails: bool) -> tuple[str, Model]:
    """("ok" | "forbidden" | "conflict" | "hook_failed", the model after)."""
    principal = PEOPLE[who]
    if principal.role is not Role.OPS:
        return "forbidden", model
    if action in ("approve", "reject"):
        if who == LAUNCHER.actor:
            return "forbidden", model  # four eyes
        if model.status is not S.PENDING:
            return "conflict", model
        status = S.APPROVED if action == "approve" else S.REJECTED
        return "ok", Model(status, 0, model.plan)
    sources = {"stage": {S.APPROVED}, "promote": {S.STAGED}, "rollback": {S.STAGED, S.DEPLOYED}}
    if model.status not in sources[action]:
        return "conflict", model
    if hook_fails:
        return "hook_failed", model
    if action == "stage":
        return "ok", Model(S.STAGED, model.plan[0], model.plan)
    if action == "rollback":
        return "ok", Model(S.ROLLED_BACK, 0, model.plan)
    nxt = _next_step(model)
    if nxt is None or nxt == 100:
        return "ok", Model(S.DEPLOYED, 100, model.plan)
    return "ok", Model(S.STAGED, nxt, model.plan)


def expect_sql(model: Model, target: ApprovalStatus, percent: int | None) -> tuple[str, Model]:
    """A person in psql: ``SET status = target [, rollout_percentage = percent]``."""
    if target is model.status and (percent is None or percent == model.percent):
        return "noop", model
    if target not in LEGAL[model.status]:
        return "refused", model
    if target is S.STAGED and model.status is S.APPROVED:
        first = model.plan[0]
        # SET rollout_percentage to the value it already has reads as "not given".
        if percent not in (None, first, model.percent):
            return "refused", model
        return "ok", Model(S.STAGED, first, model.plan)
    if target is S.STAGED:
        nxt = _next_step(model)
        if nxt is None or nxt == 100 or percent != nxt:
            return "refused", model
        return "ok", Model(S.STAGED, nxt, model.plan)
    if target is S.DEPLOYED:
        if _next_step(model) not in (100, None):
            return "refused", model
        return "ok", Model(S.DEPLOYED, 100, model.plan)
    return "ok", Model(target, 0, model.plan)


# -- the property -----------------------------------------------------------------------------

service_actions = st.tuples(
    st.just("service"),
    st.sampled_from(sorted(PEOPLE)),
    st.sampled_from(["approve", "reject", "stage", "promote", "rollback"]),
)
FORWARD = {S.PENDING: "approve", S.APPROVED: "stage", S.STAGED: "promote", S.DEPLOYED: "rollback"}


def forward(model: Model) -> st.SearchStrategy[tuple[str, Any, Any]]:
    """The action that moves this state on, by anyone (bob more often): without it, random
    sequences mostly end rejected or refused and seldom reach deployed."""
    return st.tuples(
        st.just("service"),
        st.sampled_from(["ops:bob"] * 6 + sorted(PEOPLE)),
        st.just(FORWARD.get(model.status, "promote")),
    )


sql_actions = st.tuples(
    st.just("sql"),
    st.sampled_from([s for s in S if s is not S.PENDING]),
    st.one_of(st.none(), st.sampled_from([0, 1, 5, 10, 25, 50, 75, 100])),
)


class Pool:
    """Pending approvals made in batches: one worker pass serves many examples."""

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.free: list[UUID] = []

    def take(self) -> UUID:
        if not self.free:
            self.free = self.runs.pending(8)
        return self.free.pop()


@pytest.fixture
def pool(runs: Runs) -> Iterator[Pool]:
    yield Pool(runs)


def _act(svc: SimulatorService, who: str, action: str, run_id: UUID) -> str:
    principal = PEOPLE[who]
    reason = f"{action} by {who}"
    try:
        if action == "approve":
            svc.approve_patch(principal, run_id, reason)
        elif action == "reject":
            svc.reject_patch(principal, run_id, reason)
        else:
            method = {
                "stage": svc.stage_patch,
                "promote": svc.promote_patch,
                "rollback": svc.rollback_patch,
            }[action]
            method(principal, run_id, reason)
    except Forbidden:
        return "forbidden"
    except rollout.HookFailed:
        return "hook_failed"
    except Conflict:
        return "conflict"
    return "ok"


def _sql(
    conn: psycopg.Connection[Any], run_id: UUID, target: ApprovalStatus, percent: int | None
) -> str:
    sets = "status = %s"
    params: list[Any] = [target.value]
    if percent is not None:
        sets += ", rollout_percentage = %s"
        params.append(percent)
    read = "SELECT status, rollout_percentage FROM sdk_patch_approvals WHERE simulation_run_id = %s"
    before = conn.execute(read, (run_id,)).fetchone()
    try:
        conn.execute(
            f"UPDATE sdk_patch_approvals SET {sets} WHERE simulation_run_id = %s",
            (*params, run_id),
        )
    except psycopg.errors.CheckViolation:
        return "refused"
    return "noop" if conn.execute(read, (run_id,)).fetchone() == before else "ok"


def _state(svc: SimulatorService, run_id: UUID) -> tuple[ApprovalStatus, int, tuple[int, ...]]:
    with svc.db.transaction() as conn:
        r = rollout.load(conn, run_id)
    return r.status, r.rollout_percentage, r.rollout_steps


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plan=st.sampled_from(PLANS),
    hook_fails=st.sampled_from([False, False, False, True]),
    length=st.integers(min_value=1, max_value=14),
    data=st.data(),
)
def test_random_people_never_break_the_rules_and_the_journal_replays(
    service: SimulatorService,
    pool: Pool,
    db_url: str,
    plan: tuple[int, ...],
    hook_fails: bool,
    length: int,
    data: st.DataObject,
) -> None:
    svc = SimulatorService(
        service.settings.model_copy(
            update={
                "rollout_steps": plan,
                "rollout_hook": "false" if hook_fails else service.settings.rollout_hook,
                "rollout_hook_dry_run": not hook_fails,
            }
        ),
        db=service.db,
        migrate_on_start=False,
    )
    run_id = pool.take()
    # The plan on the row: the column's default (the runbook's 5 -> 100) until simcore stages
    # the patch with its configured plan; a by-hand staging keeps the row's plan.
    model = Model(S.PENDING, 0, (5, 100))
    history = [(model.status, model.percent)]
    with psycopg.connect(db_url, autocommit=True) as by_hand:
        for _ in range(length):
            step = forward(model)
            kind, a, b = data.draw(st.one_of(step, step, service_actions, sql_actions))
            if kind == "service":
                before = Model(model.status, model.percent, plan if b == "stage" else model.plan)
                outcome, expected = expect_service(before, a, b, hook_fails)
                got = _act(svc, a, b, run_id)
            else:
                outcome, expected = expect_sql(model, a, b)
                got = _sql(by_hand, run_id, a, b)
            assert got == outcome, (kind, a, b, model)
            if outcome == "ok":
                model = expected
            status, percent, stored_plan = _state(svc, run_id)
            assert (status, percent) == (model.status, model.percent), (kind, a, b)
            assert stored_plan == model.plan
            history.append((status, percent))

    # Never a state the rules forbid: every change is a legal edge, percentages only rise
    # while staged, and each status has its percentage.
    for (s0, p0), (s1, p1) in itertools.pairwise(history):
        if (s0, p0) != (s1, p1):
            assert s1 in LEGAL[s0]
        if s0 is S.STAGED and s1 is S.STAGED:
            assert p1 >= p0
    status, percent, stored_plan = _state(svc, run_id)
    event(f"ends {status.value}")
    if status is S.STAGED:
        assert percent in stored_plan and (percent < 100 or stored_plan == (100,))
    else:
        assert percent == (100 if status is S.DEPLOYED else 0)

    # The journal tells the same story, and says who and why for each change.
    with svc.db.transaction() as conn:
        approval_id = rollout.load(conn, run_id).approval_id
        entries = journal.entries(conn, approval_id=approval_id)
    assert rollout.replay(entries) == (status, percent)
    for e in entries:
        if e.action in ("staged", "deployed", "rolled_back"):
            assert e.actor.startswith(("ops:", "sql:")) and e.details["reason"]
        if e.action == "error":
            assert e.details["rollout_hook_failed"] and e.details["state_unchanged"]
    assert svc.verify_journal(BOB).ok


def test_transitions_need_ops_and_a_reason(service: SimulatorService, runs: Runs) -> None:
    (run_id,) = runs.approved()
    with pytest.raises(InvalidInput, match="reason: say why"):
        service.stage_patch(BOB, run_id, "  ")
    with pytest.raises(Forbidden, match="role auditor may not stage patches: the rollout needs"):
        service.stage_patch(PEOPLE["auditor:carol"], run_id, "why not")


def test_a_decision_is_not_applied_to_a_state_that_moved(
    service: SimulatorService, runs: Runs
) -> None:
    (run_id,) = runs.approved()
    service.stage_patch(BOB, run_id, "canary")
    with pytest.raises(Conflict, match="moved to staged at 5% meanwhile: evaluate again"):
        rollout.transition(
            service.db,
            BOB.actor,
            run_id,
            RolloutAction.PROMOTE,
            "canary rule said so at 25%",
            settings=service.settings,
            now=rollout.utcnow(),
            expect=(S.STAGED, 25),
        )
    assert _state(service, run_id)[:2] == (S.STAGED, 5)
