"""The worker loop with an in-process executor: logs, cancel, shutdown, lost leases."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from simcore import queue
from simcore.config import Settings
from simcore.model import JournalAction, RunStatus
from simcore.service import SimulatorService
from simcore.worker import RunContext, Worker
from tests.queueing.helpers import OPS, make_simulation, run_events


class ScriptedExecutor:
    """Writes log lines, then waits (honouring cancel) for ``hold`` seconds."""

    def __init__(self, lines: int = 3, hold: float = 0.0) -> None:
        self.lines = lines
        self.hold = hold
        self.started = threading.Event()
        self.executed: list[Any] = []

    def execute(self, ctx: RunContext) -> queue.Outcome:
        self.executed.append(ctx.run_id)
        for i in range(self.lines):
            ctx.log.write(f"line {i} for seed {ctx.seed}")
        self.started.set()
        if ctx.cancelled.wait(self.hold):
            return queue.Outcome(
                RunStatus.CANCELLED,
                error_message="killed",
                events=((JournalAction.KILLED, {"reason": "cancel"}),),
            )
        return queue.Outcome(
            RunStatus.SUCCESS,
            metrics={"success_rate": 1.0},
            events=((JournalAction.APPLIED_PATCH, {"count": 2}),),
        )


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc


def _start(worker: Worker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def _wait_status(
    service: SimulatorService, run_id: Any, status: RunStatus, timeout: float = 15
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.get_run(OPS, run_id).run.status is status:
            return
        time.sleep(0.05)
    raise AssertionError(f"run did not reach {status}: {service.get_run(OPS, run_id).run}")


def test_worker_runs_the_queue_and_streams_logs(service: SimulatorService) -> None:
    sim = make_simulation(service)
    ids = [service.launch_run(OPS, sim.id, s).run.id for s in range(5)]
    executor = ScriptedExecutor(lines=4)
    worker = Worker(
        service.db, executor, concurrency=2, exit_when_idle=True, on_event=lambda m: None
    )
    worker.run()
    assert sorted(map(str, executor.executed)) == sorted(map(str, ids))
    for run_id in ids:
        detail = service.get_run(OPS, run_id)
        assert detail.run.status is RunStatus.SUCCESS
        assert [e.action for e in detail.journal] == [
            "queued",
            "started",
            "applied_patch",
            "completed",
        ]
        seed = detail.run.seed
        assert [line for _, line in service.read_log(OPS, run_id)] == [
            f"line {i} for seed {seed}" for i in range(4)
        ]


def test_log_cap_marks_the_run_truncated(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id

    class Chatty(ScriptedExecutor):
        def execute(self, ctx: RunContext) -> queue.Outcome:
            ctx.log.max_lines = 50
            for i in range(500):
                ctx.log.write(f"noise {i}")
            return queue.Outcome(RunStatus.SUCCESS)

    Worker(service.db, Chatty(), exit_when_idle=True, on_event=lambda m: None).run()
    run = service.get_run(OPS, run_id).run
    lines = service.read_log(OPS, run_id)
    assert run.log_truncated and len(lines) == 51
    assert "log capped at 50 lines" in lines[-1][1]


def test_cancel_kills_a_running_run(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    executor = ScriptedExecutor(hold=30)
    worker = Worker(service.db, executor, lease=timedelta(seconds=3), on_event=lambda m: None)
    thread = _start(worker)
    try:
        assert executor.started.wait(10)
        service.cancel_run(OPS, run_id)
        _wait_status(service, run_id, RunStatus.CANCELLED)
    finally:
        worker.stop()
        thread.join(10)
    actions = [e.action for e in service.get_run(OPS, run_id).journal]
    assert actions == ["queued", "started", "cancelled", "killed", "cancelled"]


def test_shutdown_releases_runs_that_outlive_the_grace_period(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    executor = ScriptedExecutor(hold=30)
    worker = Worker(service.db, executor, grace_seconds=0.3, on_event=lambda m: None)
    thread = _start(worker)
    assert executor.started.wait(10)
    worker.stop()
    thread.join(15)
    assert not thread.is_alive()
    detail = service.get_run(OPS, run_id)
    assert detail.run.status is RunStatus.QUEUED and detail.run.attempts == 0
    assert [e.action for e in detail.journal][-1] == "released"


def test_shutdown_lets_short_runs_finish(service: SimulatorService) -> None:
    sim = make_simulation(service)
    run_id = service.launch_run(OPS, sim.id, 1).run.id
    executor = ScriptedExecutor(hold=1.0)
    worker = Worker(service.db, executor, grace_seconds=10, on_event=lambda m: None)
    thread = _start(worker)
    assert executor.started.wait(10)
    worker.stop()
    thread.join(15)
    assert service.get_run(OPS, run_id).run.status is RunStatus.SUCCESS


def test_an_executor_crash_ends_the_run_error_and_the_worker_goes_on(
    service: SimulatorService,
) -> None:
    sim = make_simulation(service)
    bad = service.launch_run(OPS, sim.id, 1).run.id
    good = service.launch_run(OPS, sim.id, 2).run.id

    class Flaky(ScriptedExecutor):
        def execute(self, ctx: RunContext) -> queue.Outcome:
            if ctx.seed == 1:
                raise RuntimeError("boom")
            return super().execute(ctx)

    Worker(service.db, Flaky(), exit_when_idle=True, on_event=lambda m: None).run()
    assert service.get_run(OPS, bad).run.status is RunStatus.ERROR
    assert "RuntimeError: boom" in (service.get_run(OPS, bad).run.error_message or "")
    assert service.get_run(OPS, good).run.status is RunStatus.SUCCESS


def test_successful_patched_run_awaits_approval(service: SimulatorService) -> None:
    patch = service.add_patch(
        OPS,
        {
            "sdk_language": "python",
            "error_signature": "signature_mismatch",
            "patch_code": "ctx.retry()",
            "slug": "py-test-patch",
        },
    )
    sim = make_simulation(service, patch=patch.id)
    patched = service.launch_run(OPS, sim.id, 1).run.id
    baseline_only = service.launch_run(OPS, make_simulation(service).id, 1).run.id
    Worker(service.db, ScriptedExecutor(), exit_when_idle=True, on_event=lambda m: None).run()
    with service.db.transaction() as conn:
        rows = conn.execute(
            "SELECT simulation_run_id, status, patch_id FROM sdk_patch_approvals"
        ).fetchall()
    assert rows == [{"simulation_run_id": patched, "status": "pending", "patch_id": patch.id}]
    assert service.get_run(OPS, baseline_only).run.status is RunStatus.SUCCESS


def test_the_worker_seals_its_journal_and_announces_its_changes(
    service: SimulatorService,
) -> None:
    from simcore import journal

    sim = make_simulation(service)
    with run_events(service) as events:
        ids = {str(service.launch_run(OPS, sim.id, s).run.id) for s in range(4)}
        Worker(
            service.db, ScriptedExecutor(), concurrency=2, exit_when_idle=True,
            on_event=lambda m: None,
        ).run()  # fmt: skip
        changes = lambda: {(e.payload["id"], e.payload["status"]) for e in events.got}  # noqa: E731
        events.wait(lambda: len(changes()) >= 12)
    assert changes() == {(i, s) for i in ids for s in ("queued", "running", "success")}
    # Sealed by the worker itself: nothing is left for verify to seal.
    result = journal.verify(service.db, seal_first=False)
    assert result.ok and result.pending == 0 and result.checked == 4 * 4


def test_a_stopping_worker_seals_its_entries_after_another_sealer(
    service: SimulatorService,
) -> None:
    # Another sealer (another worker) holds the sealing lock as this one stops: it may have
    # read the unsealed entries before this worker's last ones were committed, so the stopping
    # worker waits for it and seals after it rather than leaving its entries pending.
    from simcore import journal

    sim = make_simulation(service)
    for seed in range(2):
        service.launch_run(OPS, sim.id, seed)
    worker = Worker(service.db, ScriptedExecutor(), exit_when_idle=True, on_event=lambda m: None)
    with service.db.transaction() as sealer:
        sealer.execute("SELECT pg_advisory_xact_lock(7521993412)")
        thread = threading.Thread(target=worker.run)
        thread.start()
        deadline = time.monotonic() + 20
        while worker.completed < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the worker reaches its final seal and waits for the lock
        assert thread.is_alive()
    thread.join(20)
    assert not thread.is_alive() and worker.completed == 2
    result = journal.verify(service.db, seal_first=False)
    assert result.ok and result.pending == 0 and result.checked == 2 * 4


def test_a_one_slot_worker_sends_every_run_to_one_server_process(
    service: SimulatorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The slot's statements have connections of their own: the upkeep (seals, notifications)
    # never takes the slot's, so each run's statement goes to the server process that ran the
    # last one (cheaper for the server than connections taking turns).
    from simcore import journal

    pids: dict[str, set[int]] = {"step": set(), "upkeep": set()}

    def recording(name: str, fn: Any) -> Any:
        def call(conn: Any, *args: Any, **kwargs: Any) -> Any:
            pids[name].add(conn.info.backend_pid)
            return fn(conn, *args, **kwargs)

        return call

    monkeypatch.setattr(queue, "step", recording("step", queue.step))
    monkeypatch.setattr(queue, "send_notifications", recording("upkeep", queue.send_notifications))
    monkeypatch.setattr(journal, "seal_once", recording("upkeep", journal.seal_once))
    sim = make_simulation(service)
    for seed in range(6):
        service.launch_run(OPS, sim.id, seed)
    worker = Worker(service.db, ScriptedExecutor(), exit_when_idle=True, on_event=lambda m: None)
    worker.run()
    assert worker.completed == 6
    assert len(pids["step"]) == 1, pids
    assert pids["upkeep"] and not pids["upkeep"] & pids["step"], pids
