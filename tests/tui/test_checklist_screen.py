"""The daily checklist screen: each item with its mark and figures, on prepared data."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb
from textual.pilot import Pilot
from textual.widgets import Static

from simcore.auth import Principal
from simcore.model import Role, RunStatus
from simcore.service import SimulatorService
from simtui.app import SimTUI
from simtui.screens.checklist import ChecklistScreen
from simtui.screens.run_detail import RunDetailScreen
from simtui.widgets.tables import NavTable
from tests.tui.helpers import (
    AUDITOR,
    LAUNCHER,
    app_for,
    finished_run,
    home_ready,
    simulation,
    wait_for,
)

ITEMS = (
    "queue_depth",
    "success_rate",
    "failed_runs",
    "sira_export",
    "stuck_runs",
    "pending_approvals",
    "canary",
)


def stuck_run(service: SimulatorService) -> UUID:
    """A run queued two hours ago that no worker took."""
    sim = simulation(service, template="timeout")
    run_id: UUID = service.launch_run(LAUNCHER, sim.id, 1).run.id
    with service.db.transaction() as conn:
        conn.execute(
            "UPDATE sdk_simulation_runs SET run_at = now() - interval '2 hours' WHERE id = %s",
            (run_id,),
        )
    return run_id


def marks(screen: ChecklistScreen) -> dict[str, str]:
    table = screen.query_one("#checklist-items", NavTable)
    return {key: str(table.get_cell(key, "mark")) for key in ITEMS}


def status_text(screen: ChecklistScreen) -> str:
    return str(screen.query_one("#checklist-status", Static).render())


async def open_checklist(app: SimTUI, pilot: Pilot[Any]) -> ChecklistScreen:
    await home_ready(pilot)
    await pilot.press("C")
    screen = app.screen
    assert isinstance(screen, ChecklistScreen)
    table = screen.query_one("#checklist-items", NavTable)
    await wait_for(pilot, lambda: table.row_count == len(ITEMS), what="the checklist")
    return screen


async def test_a_stuck_run_fails_exactly_its_item_and_refresh_sees_it_go(
    service: SimulatorService,
) -> None:
    run_id = stuck_run(service)
    app = app_for(service, AUDITOR)  # reading the checklist is not a write
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_checklist(app, pilot)
        assert marks(screen) == {key: "✓" if key != "stuck_runs" else "✗" for key in ITEMS}
        assert status_text(screen).startswith("✗ 1 of 7 items fail · all tenants · at ")
        assert status_text(screen).endswith(": stuck_runs")
        table = screen.query_one("#checklist-items", NavTable)
        summary = str(table.get_cell("stuck_runs", "summary"))
        assert summary == "1 run queued or running for more than 1 h"
        assert str(table.get_cell("queue_depth", "summary")).startswith(
            "1 queued (limit 5), 0 running, oldest queued 2.0 h"
        )
        # The highlighted item's figures and what it lists; enter goes to the list, then
        # opens the run.
        table.select_key("stuck_runs")
        figures = screen.query_one("#checklist-figures", Static)
        await wait_for(pilot, lambda: "count 1 · threshold 1h00m" in str(figures.render()))
        entries = screen.query_one("#checklist-entries", NavTable)
        assert entries.row_count == 1
        assert str(entries.get_cell("stuck_runs:0", "run")) == str(run_id)[:8]
        assert str(entries.get_cell("stuck_runs:0", "what")) == "queued for 2h00m"
        await pilot.press("enter")
        assert app.focused is entries
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        assert getattr(app.screen, "run_id", None) == str(run_id)
        await pilot.press("escape")
        assert app.screen is screen
        # Someone cancels it; r reads the checklist again.
        service.cancel_run(LAUNCHER, run_id)
        await pilot.press("r")
        await wait_for(pilot, lambda: status_text(screen).startswith("✓ all 7 items pass"))
        assert set(marks(screen).values()) == {"✓"}
        await pilot.press("escape")
        assert app.screen is app.home
    app.session.close()


async def test_failed_runs_are_listed_with_their_reasons(service: SimulatorService) -> None:
    failed = finished_run(service, status=RunStatus.FAILED)
    with service.db.transaction() as conn:
        conn.execute("SELECT set_config('simtui.journaled', 'on', true)")
        conn.execute(
            "UPDATE sdk_simulation_runs SET reasons = %s WHERE id = %s",
            (Jsonb(["duplicate charges: 2 (limit 0)"]), failed),
        )
    ok = finished_run(service, template="timeout")  # success: its patch waits for a decision
    app = app_for(service)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_checklist(app, pilot)
        assert marks(screen) == {
            "queue_depth": "✓",
            "success_rate": "✗",
            "failed_runs": "✗",
            "sira_export": "✓",
            "stuck_runs": "✓",
            "pending_approvals": "✗",
            "canary": "✓",
        }
        table = screen.query_one("#checklist-items", NavTable)
        assert str(table.get_cell("success_rate", "summary")) == (
            "50.0% of 2 runs succeeded in the last 24 h (target > 95%)"
        )
        table.select_key("failed_runs")
        entries = screen.query_one("#checklist-entries", NavTable)
        await wait_for(pilot, lambda: entries.row_count == 1)
        assert str(entries.get_cell("failed_runs:0", "what")) == "failed · HMAC Signature (python)"
        assert str(entries.get_cell("failed_runs:0", "details")) == "duplicate charges: 2 (limit 0)"
        table.select_key("pending_approvals")
        await wait_for(pilot, lambda: "pending_approvals:0" in {k.value for k in entries.rows})
        assert str(entries.get_cell("pending_approvals:0", "run")) == str(ok)[:8]
        pane = screen.query_one("#checklist-entries-pane")
        assert str(pane.border_title) == "Review pending patch approvals: 1 listed"
    app.session.close()


async def test_a_role_that_may_not_read_it_is_told(service: SimulatorService) -> None:
    app = app_for(service, Principal("dana", Role.DEV))
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("C")
        screen = app.screen
        assert isinstance(screen, ChecklistScreen)
        await wait_for(pilot, lambda: "may not" in status_text(screen))
        assert status_text(screen) == (
            "checklist: role dev may not run the daily checklist (it counts anonymized errors)"
        )
    app.session.close()
