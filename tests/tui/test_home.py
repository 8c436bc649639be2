"""The home screen: every pane from the database, updated in place, and what it says when
something is wrong."""

from __future__ import annotations

from typing import Any

import psycopg
from textual.widgets import Static

from simcore.config import Settings
from simcore.service import SimulatorService
from simtui.app import SimTUI
from simtui.session import Session
from simtui.widgets.tables import ApprovalsTable, LanguageTable, RunsTable
from simtui.widgets.tiles import AlertBanner, KpiTile
from tests.store.seed_runbook import seed
from tests.tui.helpers import (
    AUDITOR,
    LAUNCHER,
    ScriptedExecutor,
    app_for,
    finished_run,
    home_ready,
    simulation,
    wait_for,
)


def _text(app: SimTUI, selector: str) -> str:
    return str(app.home.query_one(selector, Static).render())


async def test_home_shows_every_pane(service: SimulatorService, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        data = seed(conn)
        # The runbook seed approves its one patch; put it back in the queue of decisions.
        conn.execute("SET simtui.journaled = 'on'")
        conn.execute("DELETE FROM sdk_patch_approvals")
        conn.execute(
            "INSERT INTO sdk_patch_approvals (simulation_run_id, patch_id, tenant_type) "
            "VALUES (%s, %s, 'internal')",
            (data.runs["r1_recent_success"], data.patch),
        )
    app = app_for(service, AUDITOR)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        home = app.home
        assert home.query_one("#queue-pane").border_title == "Queue 2 · running 1"
        assert home.query_one(RunsTable).row_count == 7
        assert home.query_one(ApprovalsTable).row_count == 1
        assert home.query_one(LanguageTable).row_count == 2
        # Two runs finished in the last 24 h, one failed: 50% against > 95%.
        assert "success 50.0% ✗" in str(home.query_one("#kpi-success_rate", KpiTile).render())
        assert "queue 2 ✓" in str(home.query_one("#kpi-queue_depth", KpiTile).render())
        assert not home.query_one(AlertBanner).display
        status = _text(app, "#status-line")
        assert "auditor:audrey" in status and "test db" in status and "live" in status
    app.session.close()


async def test_alert_banner_when_the_queue_is_stuck(service: SimulatorService) -> None:
    sim = simulation(service)
    for seed_ in range(11):
        service.launch_run(LAUNCHER, sim.id, seed_)
    with service.db.transaction() as conn:
        conn.execute("UPDATE sdk_simulation_runs SET run_at = now() - interval '45 minutes'")
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        banner = app.home.query_one(AlertBanner)
        assert banner.display
        text = str(banner.render())
        assert text == "▲ CRITICAL SimulatorQueueStuck: 11 queued, oldest 45 min (limit 10, 30 min)"
        assert "SimulatorHighFailureRate" not in text
    app.session.close()


async def test_recent_runs_update_in_place(service: SimulatorService) -> None:
    """A new run and a status change touch their rows only; the cursor keeps its run."""
    first = finished_run(service)
    executor = ScriptedExecutor(lines=2)
    app = app_for(service, executor=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(RunsTable)
        assert table.selected_key == str(first)
        row_key = next(iter(table.rows))
        sim = simulation(service, template="timeout")
        second = service.launch_run(LAUNCHER, sim.id, 1).run.id
        await wait_for(pilot, lambda: table.row_count == 2, what="the new run (NOTIFY)")
        assert next(k for k in table.rows if k.value == str(first)) is row_key
        assert table.selected_key == str(first), "the cursor must stay on its run"
        assert table.get_row_index(str(second)) == 0, "newest first"
        assert str(table.get_cell(str(second), "status")) == "queued"
        # Now let a worker take it: the row changes in place.
        app.session.executor_factory = lambda settings: executor
        app.session.ensure_worker()
        await wait_for(
            pilot,
            lambda: str(table.get_cell(str(second), "status")) == "success",
            what="the status change",
        )
        assert str(table.get_cell(str(second), "approval")) == "pending"
    app.session.close()


async def test_filter_runs_by_keys(service: SimulatorService) -> None:
    finished_run(service, name="HMAC Signature (python)")
    finished_run(service, language="node", template="timeout", name="Timeout Network (node)")
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(RunsTable)
        assert table.row_count == 2
        await pilot.press("slash", *"node", "enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert "matching 'node'" in str(app.home.query_one("#runs-pane").border_title)
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 2)
    app.session.close()


async def test_home_says_when_the_database_is_unreachable(tmp_path: Any) -> None:
    settings = Settings(database_url="postgresql://u@127.0.0.1:1/none", data_dir=tmp_path)
    session = Session.from_settings(settings, executor_factory=None)
    app = SimTUI(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.home.last_error is not None)
        status = _text(app, "#status-line")
        assert "database unavailable" in status and "cannot connect" in status
        assert not app.session.is_open
    session.close()


async def test_a_prefetched_session_goes_live(settings: Settings) -> None:
    """main() opens the session before the app starts: the home screen must still start
    the LISTEN thread and the in-process worker, and decide the keys by role."""
    session = Session.from_settings(settings, executor_factory=lambda s: ScriptedExecutor())
    session.prefetch()
    app = SimTUI(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await wait_for(pilot, lambda: session.listening and session.in_process_worker)
        await wait_for(pilot, lambda: "worker: in-process" in _text(app, "#status-line"))
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert "approve" in shown
    session.close()


async def test_a_snapshot_from_the_prefetch_child_is_drawn_then_the_session_opens(
    settings: Settings, service: SimulatorService
) -> None:
    """The command's child read the first snapshot: the home screen draws it with the write
    keys of the local role, and only then opens its own session, goes live and runs a
    worker."""
    from simtui.messages import HomeReady
    from simtui.prefetch import Answer

    finished_run(service, name="read by the child")
    read_elsewhere = service.dashboard(LAUNCHER)

    class Child:
        def answer(self) -> Answer:
            return read_elsewhere, None

    at_first_paint: list[tuple[bool, bool]] = []

    class App(SimTUI):
        def on_home_ready(self, message: HomeReady) -> None:
            table = self.home.query_one(RunsTable)
            at_first_paint.append((session.is_open, table.row_count == 1))
            super().on_home_ready(message)

    session = Session.from_settings(settings, executor_factory=lambda s: ScriptedExecutor())
    session.prefetch(Child())  # type: ignore[arg-type]
    app = App(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert "approve" in shown
        await wait_for(pilot, lambda: session.listening and session.in_process_worker)
        assert at_first_paint == [(False, True)]
    session.close()
