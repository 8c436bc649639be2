"""What the dashboard tests share: principals, runs in a known state, an app on a service."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from simcore import queue
from simcore.auth import Principal
from simcore.config import Settings
from simcore.model import JournalAction, Role, RunStatus
from simcore.patches import default_patch
from simcore.service import SimulatorService
from simcore.templates import get_template
from simcore.worker import Executor, RunContext
from simtui.app import SimTUI
from simtui.session import Session

LAUNCHER = Principal("alice", Role.OPS)
"""Launches the runs in fixtures."""
APPROVER = Principal("bob", Role.OPS)
"""The person at the dashboard: not the launcher, so four-eyes lets them decide."""
AUDITOR = Principal("audrey", Role.AUDITOR)

METRICS = {
    "success_rate": 0.97,
    "avg_latency_ms": 520.0,
    "failed_requests": 3,
    "total_requests": 100,
    "regressions": 0,
    "duplicate_charges": 0,
    "wrong_payments": 0,
    "baseline": {"success_rate": 0.71, "avg_latency_ms": 500.0, "failed_requests": 29},
}


def simulation(
    service: SimulatorService,
    *,
    language: str = "python",
    template: str = "signature_mismatch",
    name: str | None = None,
    patched: bool = True,
) -> Any:
    t = get_template(template)
    patch = default_patch(t.scenario.error, language) if patched else None
    return service.create_simulation(
        LAUNCHER,
        {
            "name": name or f"{t.title} ({language})",
            "sdk_language": language,
            "scenario": t.scenario,
            "patch_reference": patch.id if patch else None,
        },
    )


def finished_run(
    service: SimulatorService,
    *,
    status: RunStatus = RunStatus.SUCCESS,
    language: str = "python",
    template: str = "signature_mismatch",
    name: str | None = None,
    metrics: dict[str, Any] | None = None,
    log: list[str] | None = None,
    seed: int = 12345,
) -> UUID:
    """A run taken through the queue (claim, log, finish) without executing anything."""
    sim = simulation(service, language=language, template=template, name=name)
    run_id: UUID = service.launch_run(LAUNCHER, sim.id, seed).run.id
    with service.db.transaction() as conn:
        conn.execute("SELECT set_config('simtui.journaled', 'on', true)")
        conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'running', worker_id = 'test-worker', "
            "lease_until = now() + interval '1 minute', started_at = now(), attempts = 1 "
            "WHERE id = %s",
            (run_id,),
        )
    if log:
        queue.append_log(service.db, run_id, 0, log)
    outcome = queue.Outcome(
        status,
        metrics=metrics if metrics is not None else METRICS,
        reasons=("success rate 97.0% meets the 85.0% threshold (baseline 71.0%)",),
    )
    assert queue.finish(service.db, run_id, "test-worker", outcome)
    return run_id


class ScriptedExecutor:
    """Writes ``lines`` log lines, ``pace`` seconds apart, then succeeds; honours cancel."""

    backend_name = "scripted"

    def __init__(self, lines: int = 3, pace: float = 0.0) -> None:
        self.lines = lines
        self.pace = pace
        self.started = threading.Event()

    def execute(self, ctx: RunContext) -> queue.Outcome:
        self.started.set()
        for i in range(self.lines):
            ctx.log.write(f"line {i} of run {ctx.run_id} seed {ctx.seed}")
            if self.pace and ctx.cancelled.wait(self.pace):
                return queue.Outcome(
                    RunStatus.CANCELLED,
                    error_message="killed",
                    events=((JournalAction.KILLED, {"reason": "cancel"}),),
                )
        return queue.Outcome(
            RunStatus.SUCCESS,
            metrics=METRICS,
            reasons=("success rate 97.0% meets the 85.0% threshold (baseline 71.0%)",),
        )


def app_for(
    service: SimulatorService,
    principal: Principal = APPROVER,
    executor: Executor | None = None,
    *,
    demo: bool = False,
) -> SimTUI:
    factory: Callable[[Settings], Executor] | None = (
        (lambda settings: executor) if executor is not None else None
    )
    session = Session.attached(service, principal, label="test db", executor_factory=factory)
    return SimTUI(session, demo=demo)


async def wait_for(
    pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    """Let the app run until ``predicate()`` holds (thread workers answer asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause()
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate}")


async def home_ready(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, SimTUI)
    await wait_for(pilot, lambda: app.home.snapshot is not None, what="the first snapshot")


def notifications(app: SimTUI) -> list[str]:
    return [str(n.message) for n in app._notifications]


def approval_row(service: SimulatorService, run_id: UUID) -> dict[str, Any]:
    with service.db.transaction() as conn:
        row = conn.execute(
            "SELECT status, approval_notes, decided_by FROM sdk_patch_approvals "
            "WHERE simulation_run_id = %s",
            (run_id,),
        ).fetchone()
    assert row is not None
    return dict(row)


def plain(widget: Static) -> str:
    """The text a Static shows, Rich renderables included (tables, syntax, groups)."""
    content = widget.content
    if isinstance(content, str):
        return content
    console = Console(width=120, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(content)
    return capture.get()
