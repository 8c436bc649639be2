"""The queue: idempotent launches, one-statement claims, leases, attempts, cancel, purge."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from simcore import queue
from simcore.config import Settings
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.model import JournalAction, RunStatus
from simcore.service import SimulatorService
from tests.queueing.helpers import OPS, make_simulation, run_events


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings.model_copy(update={"db_pool_max": 60})) as svc:
        yield svc


def _actions(service: SimulatorService, run_id: Any) -> list[str]:
    return [e.action for e in service.get_run(OPS, run_id).journal]


def test_same_key_same_run_and_conflict_on_other_seed(service: SimulatorService) -> None:
    sim = make_simulation(service)
    first = service.launch_run(OPS, sim.id, 12345, "ops-test-001")
    again = service.launch_run(OPS, sim.id, 12345, "ops-test-001")
    assert first.created and not again.created
    assert again.run.id == first.run.id
    with pytest.raises(Conflict, match=r"ops-test-001.*already used"):
        service.launch_run(OPS, sim.id, 999, "ops-test-001")
    other = make_simulation(service)
    with pytest.raises(Conflict):
        service.launch_run(OPS, other.id, 12345, "ops-test-001")
    assert _actions(service, first.run.id) == ["queued"]


def test_a_launch_without_a_seed_is_retried_with_its_key(service: SimulatorService) -> None:
    sim = make_simulation(service)
    first = service.launch_run(OPS, sim.id, None, "typed-twice")
    assert first.created and 0 <= first.run.seed < queue.DRAWN_SEED_LIMIT
    again = service.launch_run(OPS, sim.id, None, "typed-twice")
    assert not again.created and again.run.id == first.run.id
    assert service.launch_run(OPS, sim.id, first.run.seed, "typed-twice").run.id == first.run.id
    with pytest.raises(Conflict, match=f"seed {first.run.seed}"):
        service.launch_run(OPS, sim.id, first.run.seed + 1, "typed-twice")
    # Keyed on a seed named first, a retry without one is still that run.
    named = service.launch_run(OPS, sim.id, 424242, "named-first")
    assert service.launch_run(OPS, sim.id, None, "named-first").run.id == named.run.id
    # Without a key, each launch is a new run with a seed of its own.
    seeds = {service.launch_run(OPS, sim.id, None).run.seed for _ in range(5)}
    assert len(seeds) > 1
    assert _actions(service, first.run.id) == ["queued"]


def test_key_is_scoped_to_the_tenant(service: SimulatorService) -> None:
    a = make_simulation(service, tenant_type="merchant", tenant_id="m-1")
    b = make_simulation(service, tenant_type="merchant", tenant_id="m-2")
    ra = service.launch_run(OPS, a.id, 1, "same-key")
    rb = service.launch_run(OPS, b.id, 1, "same-key")
    assert ra.created and rb.created and ra.run.id != rb.run.id


def test_fifty_concurrent_launches_with_one_key_make_one_run(service: SimulatorService) -> None:
    sim = make_simulation(service)
    barrier = threading.Barrier(50)
    results: list[Any] = []
    errors: list[BaseException] = []

    def launch() -> None:
        try:
            barrier.wait()
            results.append(service.launch_run(OPS, sim.id, 7, "storm-key"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=launch) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.run.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(service.list_runs(OPS, simulation_id=sim.id)) == 1


@pytest.mark.parametrize(
    ("seed", "key", "field"),
    [
        (-1, None, "seed"),
        (2**63, None, "seed"),
        (1, "", "idempotency_key"),
        (1, "x" * 256, "idempotency_key"),
        (1, "bad\nkey", "idempotency_key"),
    ],
)
def test_launch_input_is_validated(
    service: SimulatorService, seed: int, key: str | None, field: str
) -> None:
    sim = make_simulation(service)
    with pytest.raises(InvalidInput) as info:
        service.launch_run(OPS, sim.id, seed, key)
    assert info.value.field == field


def test_unknown_simulation_and_bad_id(service: SimulatorService) -> None:
    with pytest.raises(NotFound):
        service.launch_run(OPS, "00000000-0000-4000-8000-000000000000", 1)
    with pytest.raises(InvalidInput, match="simulation_id: not a valid id"):
        service.launch_run(OPS, "SIM_ID", 1)


def test_claims_oldest_first_and_never_twice(service: SimulatorService) -> None:
    sim = make_simulation(service)
    ids = [service.launch_run(OPS, sim.id, i).run.id for i in range(3)]
    got = [
        queue.claim(service.db, "w1"),
        queue.claim(service.db, "w2"),
        queue.claim(service.db, "w1"),
        queue.claim(service.db, "w3"),
    ]
    assert [g["id"] for g in got[:3] if g] == ids
    assert got[3] is None
    assert _actions(service, ids[0]) == ["queued", "started"]


def _expire(db_url: str, run_id: Any) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sdk_simulation_runs SET lease_until = now() - interval '1 second'"
            " WHERE id = %s",
            (run_id,),
        )


def test_expired_lease_is_reclaimed_then_given_up(service: SimulatorService, db_url: str) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    for attempt, worker in enumerate(["w1", "w2", "w3"], start=1):
        row = queue.claim(service.db, worker)
        assert row is not None and row["id"] == run_id and row["attempts"] == attempt
        _expire(db_url, run_id)
    assert queue.claim(service.db, "w4") is None
    detail = service.get_run(OPS, run_id)
    assert detail.run.status is RunStatus.ERROR
    assert "gave up after 3 attempts" in (detail.run.error_message or "")
    journal = [(e.action, e.details.get("reclaimed_from")) for e in detail.journal]
    assert journal == [
        ("queued", None),
        ("started", None),
        ("started", "w1"),
        ("started", "w2"),
        ("error", None),
    ]
    # The old owner's late result is refused.
    assert not queue.finish(service.db, run_id, "w3", queue.Outcome(RunStatus.SUCCESS))


def test_renew_and_finish_only_by_the_owner(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    queue.claim(service.db, "w1", timedelta(seconds=5))
    assert queue.renew(service.db, run_id, "w1").held
    assert not queue.renew(service.db, run_id, "w2").held
    outcome = queue.Outcome(
        RunStatus.SUCCESS, metrics={"success_rate": 0.97}, reasons=("97.0% >= threshold 85.0%",)
    )
    assert queue.finish(service.db, run_id, "w1", outcome)
    run = service.get_run(OPS, run_id).run
    assert run.status is RunStatus.SUCCESS and run.lease_until is None
    assert run.completed_at is not None and run.metrics == {"success_rate": 0.97}
    assert not queue.renew(service.db, run_id, "w1").held


def test_cancel_queued_and_running(service: SimulatorService) -> None:
    sim = make_simulation(service)
    queued = service.launch_run(OPS, sim.id, 1).run.id
    running = service.launch_run(OPS, sim.id, 2).run.id
    assert queue.claim(service.db, "w1")["id"] == queued  # type: ignore[index]
    service.cancel_run(OPS, queued)  # now running: a request to its worker
    assert queue.renew(service.db, queued, "w1").cancel_requested
    service.cancel_run(OPS, running)  # still queued: cancelled at once
    assert service.get_run(OPS, running).run.status is RunStatus.CANCELLED
    with pytest.raises(Conflict, match="already cancelled"):
        service.cancel_run(OPS, running)
    assert queue.claim(service.db, "w2") is None


def test_purge_ends_old_unfinished_runs(service: SimulatorService, db_url: str) -> None:
    sim = make_simulation(service)
    old = service.launch_run(OPS, sim.id, 1).run.id
    new = service.launch_run(OPS, sim.id, 2).run.id
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sdk_simulation_runs SET run_at = now() - interval '25 hours' WHERE id = %s",
            (old,),
        )
    assert queue.purge_stale(service.db) == 1
    assert service.get_run(OPS, old).run.status is RunStatus.TIMEOUT
    assert service.get_run(OPS, new).run.status is RunStatus.QUEUED
    assert _actions(service, old) == ["queued", "timeout"]


def test_release_gives_the_run_back_without_spending_an_attempt(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    queue.claim(service.db, "w1")
    assert queue.release(service.db, run_id, "w1", "worker shutting down")
    run = service.get_run(OPS, run_id).run
    assert run.status is RunStatus.QUEUED and run.attempts == 0 and run.worker_id is None
    assert queue.claim(service.db, "w2")["attempts"] == 1  # type: ignore[index]


def test_log_batches_are_stored_in_order(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    queue.append_log(service.db, run_id, 0, ["a", "b"])
    queue.append_log(service.db, run_id, 2, ["c"])
    queue.append_log(service.db, run_id, 2, ["c"])  # a retried batch is not duplicated
    assert service.read_log(OPS, run_id) == [(0, "a"), (1, "b"), (2, "c")]
    assert service.read_log(OPS, run_id, after_seq=1) == [(2, "c")]
    assert service.get_run(OPS, run_id).run.log_lines == 3


def test_change_notifications(service: SimulatorService) -> None:
    with run_events(service) as events:
        sim = make_simulation(service)
        run_id = service.launch_run(OPS, sim.id, 1).run.id
        events.wait(lambda: bool(events.got))
    got = events.got
    assert got and got[0].payload["id"] == str(run_id)
    assert got[0].payload["status"] == "queued"


# -- the worker's path: one statement per run, notifications after commit --------------------


@pytest.fixture
def worker_pool(service: SimulatorService) -> Iterator[Any]:
    pool = queue.open_worker_pool(service.db, 2)
    yield pool
    pool.close()


def test_finish_and_next_claim_are_one_statement(
    service: SimulatorService, worker_pool: Any
) -> None:
    patch = service.add_patch(
        OPS,
        {"sdk_language": "python", "error_signature": "signature_mismatch", "patch_code": "x()"},
    )
    sim = make_simulation(service, patch=patch.id)
    first, second = (service.launch_run(OPS, sim.id, s).run.id for s in (1, 2))
    with worker_pool.connection() as conn:
        step = queue.step(conn, "w1")
        assert step.finished is None and step.claimed is not None
        assert step.claimed.run["id"] == first and step.claimed.run["status"] == "running"
        # What executing it needs comes with the claim.
        assert step.claimed.simulation["id"] == sim.id
        assert step.claimed.simulation["scenario"]["error"] == "signature_mismatch"
        assert step.claimed.patch is not None and step.claimed.patch["id"] == patch.id
        outcome = queue.Outcome(
            RunStatus.SUCCESS,
            metrics={"success_rate": 1.0},
            events=((JournalAction.APPLIED_PATCH, {"count": 2}),),
            anonymized_errors=(
                {
                    "error_signature": "signature_mismatch:401",
                    "category": "auth",
                    "sdk_language": "python",
                    "frequency": 0.25,
                    "context_hash": "c" * 64,
                },
            ),
        )
        finish = queue.Finish(first, outcome, 0, ("one", "two"), False)
        step = queue.step(conn, "w1", finish=finish)
        assert step.finished is True
        assert step.claimed is not None and step.claimed.run["id"] == second
        # A result that is no longer ours is refused, and nothing else is claimed.
        step = queue.step(conn, "w2", finish=queue.Finish(second, outcome), claim=True)
        assert step.finished is False and step.claimed is None
    done = service.get_run(OPS, first)
    assert done.run.status is RunStatus.SUCCESS and done.run.log_lines == 2
    assert [e.action for e in done.journal] == ["queued", "started", "applied_patch", "completed"]
    assert [line for _, line in service.read_log(OPS, first)] == ["one", "two"]
    assert [a.simulation_run_id for a in service.list_approvals(OPS)] == [first]
    with service.db.transaction() as conn:
        errors = conn.execute(
            "SELECT error_signature, frequency FROM sdk_anonymized_errors WHERE run_id = %s",
            (first,),
        ).fetchall()
    assert errors == [{"error_signature": "signature_mismatch:401", "frequency": 0.25}]
    assert _actions(service, second) == ["queued", "started"]


def test_a_claim_out_of_attempts_ends_the_run_and_says_why(
    service: SimulatorService, worker_pool: Any, db_url: str
) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'running', worker_id = 'gone', "
            "attempts = max_attempts, lease_until = now() - interval '1 second' WHERE id = %s",
            (run_id,),
        )
    with worker_pool.connection() as conn:
        step = queue.step(conn, "w1")
    assert step.claimed is not None and step.claimed.run["status"] == "error"
    last = service.get_run(OPS, run_id).journal[-1]
    assert last.action == "error" and last.details["attempts"] == 3


def test_the_worker_path_sends_its_notifications_after_commit(
    service: SimulatorService, worker_pool: Any
) -> None:
    sim = make_simulation(service)
    with run_events(service) as events:
        got = events.got
        run_id = service.launch_run(OPS, sim.id, 1).run.id
        events.wait(lambda: len(got) >= 1)
        with worker_pool.connection() as conn:
            step = queue.step(conn, "w1")
        time.sleep(0.5)
        assert [e.payload["status"] for e in got] == ["queued"], "the trigger stays quiet"
        with worker_pool.connection() as conn:
            queue.send_notifications(conn, list(step.notifications))
        events.wait(lambda: len(got) >= 2)
    assert got[1].payload == {
        "id": str(run_id),
        "simulation_id": str(sim.id),
        "status": "running",
        "cancel_requested": False,
    }


def test_renew_all_tells_which_runs_are_still_ours(
    service: SimulatorService, worker_pool: Any
) -> None:
    sim = make_simulation(service)
    mine = service.launch_run(OPS, sim.id, 1).run.id
    other = service.launch_run(OPS, sim.id, 2).run.id
    queue.claim(service.db, "w1")
    queue.claim(service.db, "w2")
    service.cancel_run(OPS, mine)
    with worker_pool.connection() as conn:
        beats = queue.renew_all(conn, [mine, other], "w1")
    assert beats == {
        mine: queue.Heartbeat(True, cancel_requested=True),
        other: queue.Heartbeat(False),
    }


def test_the_usual_step_statement_keeps_psycopg_s_query_cache() -> None:
    from psycopg import _queries

    # Past this length psycopg converts the placeholders again on every call, once per run.
    limit = _queries.MAX_CACHED_STATEMENT_LENGTH
    assert len(queue._step_sql(True, True, False, False, False)) <= limit
    assert len(queue._step_sql(False, True, False, False, False)) <= limit


def test_a_finish_finds_its_run_by_primary_key(service: SimulatorService) -> None:
    """With the generic plan workers use, finishing a run must not walk the partial index of
    running runs (dead entries of every run finished since the last vacuum) to find it."""
    sim = make_simulation(service)
    ids = [service.launch_run(OPS, sim.id, i).run.id for i in range(40)]
    with service.db.pool.connection() as conn:
        conn.autocommit = True
        conn.execute("SET simtui.journaled = 'on'")
        conn.execute("SET plan_cache_mode = force_generic_plan")
        step = queue.step(conn, "w1")
        for _ in ids[1:]:  # finished runs leave dead entries in the partial index
            assert step.claimed is not None
            done = queue.Finish(step.claimed.run["id"], queue.Outcome(RunStatus.SUCCESS))
            step = queue.step(conn, "w1", finish=done)
        assert step.claimed is not None
        last = queue.Finish(step.claimed.run["id"], queue.Outcome(RunStatus.SUCCESS))
        params = {"worker": "w1", "lease": queue.DEFAULT_LEASE, "run": None}
        params.update(queue._finish_params(last))
        statement = queue._step_sql(True, True, False, False, False)
        conn.execute("BEGIN")
        try:
            rows = conn.execute("EXPLAIN (COSTS off) " + statement, params).fetchall()
            plan = "\n".join(row["QUERY PLAN"] for row in rows)
        finally:
            conn.execute("ROLLBACK")
    done_plan = plan.split("CTE done", 1)[1].split("CTE ", 1)[0]
    assert "sdk_simulation_runs_pkey" in done_plan, done_plan
    assert "sdk_runs_running_lease_idx" not in done_plan, done_plan
