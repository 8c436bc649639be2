"""Approve, reject, cancel and re-run by keys: what lands in the database and the journal."""

from __future__ import annotations

from textual.widgets import Static

from simcore.model import RunStatus
from simcore.service import SimulatorService
from simtui.commands import SimtuiCommands
from simtui.screens.help import HelpScreen
from simtui.screens.note import NoteScreen
from simtui.widgets.tables import ApprovalsTable, RunsTable
from tests.tui.helpers import (
    APPROVER,
    AUDITOR,
    LAUNCHER,
    app_for,
    approval_row,
    finished_run,
    home_ready,
    notifications,
    plain,
    wait_for,
)


async def test_approve_from_the_approval_queue(service: SimulatorService) -> None:
    run_id = finished_run(service)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(ApprovalsTable)
        assert table.row_count == 1
        await pilot.press("tab")
        assert app.focused is table
        await pilot.press("a")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"ok", "enter")
        await wait_for(pilot, lambda: approval_row(service, run_id)["status"] == "approved")
        await wait_for(pilot, lambda: table.row_count == 0, what="the approval to leave")
        assert any("approved: patch" in n for n in notifications(app))
    row = approval_row(service, run_id)
    assert row == {"status": "approved", "approval_notes": "ok", "decided_by": APPROVER.actor}
    journal = service.get_run(LAUNCHER, run_id).journal
    assert journal[-1].action == "approved" and journal[-1].actor == APPROVER.actor
    assert journal[-1].details["notes"] == "ok"
    app.session.close()


async def test_reject_needs_a_note(service: SimulatorService) -> None:
    run_id = finished_run(service)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        assert app.home.query_one(RunsTable).selected_key == str(run_id)
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, NoteScreen)
        await pilot.press("enter")
        assert app.screen is dialog, "an empty note must not be accepted"
        error = str(dialog.query_one("#note-error").render())
        assert "a rejection needs a note saying why" in error
        assert approval_row(service, run_id)["status"] == "pending"
        await pilot.press(*"dup charges", "enter")
        await wait_for(pilot, lambda: approval_row(service, run_id)["status"] == "rejected")
    assert approval_row(service, run_id)["approval_notes"] == "dup charges"
    assert service.get_run(LAUNCHER, run_id).journal[-1].action == "rejected"
    app.session.close()


async def test_four_eyes_the_launcher_may_not_approve(service: SimulatorService) -> None:
    run_id = finished_run(service)
    app = app_for(service, LAUNCHER)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("a", "enter")
        await wait_for(pilot, lambda: any("another person" in n for n in notifications(app)))
    assert approval_row(service, run_id)["status"] == "pending"
    app.session.close()


async def test_an_auditor_sees_no_write_key_and_is_told(service: SimulatorService) -> None:
    run_id = finished_run(service)
    app = app_for(service, AUDITOR)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.pause()
        shown = {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}
        assert not shown & {"approve", "reject", "new_simulation", "rerun", "cancel_run"}
        status = str(app.home.query_one("#status-line").render())
        assert "read-only: auditor" in status
        for key in ("a", "r", "n", "R", "c"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen is app.home, f"{key} opened something for an auditor"
        told = [n for n in notifications(app) if n.startswith("read-only: auditor")]
        assert len(told) == 5, notifications(app)
        # Nor in the command palette, nor in help.
        names = [name for name, _, _ in SimtuiCommands(app.screen)._commands()]
        assert "Launch demo runs" not in names and "New simulation" not in names
        assert "Journal" in names
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = plain(app.screen.query_one("#help-keys", Static))
        assert "Approve" not in keys and "Filter" in keys
    assert approval_row(service, run_id)["status"] == "pending"
    assert len(service.list_runs(LAUNCHER)) == 1
    app.session.close()


async def test_cancel_asks_first_then_cancels(service: SimulatorService) -> None:
    from tests.tui.helpers import simulation

    sim = simulation(service)
    run_id = service.launch_run(LAUNCHER, sim.id, 7).run.id
    app = app_for(service)  # no executor: the run stays queued
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("c")
        await pilot.press("n")
        await pilot.pause()
        assert service.get_run(LAUNCHER, run_id).run.status is RunStatus.QUEUED
        await pilot.press("c", "y")
        await wait_for(
            pilot,
            lambda: service.get_run(LAUNCHER, run_id).run.status is RunStatus.CANCELLED,
        )
    journal = service.get_run(LAUNCHER, run_id).journal
    assert journal[-1].action == "cancelled" and journal[-1].actor == APPROVER.actor
    app.session.close()


async def test_rerun_uses_the_same_seed_and_selects_the_new_run(
    service: SimulatorService,
) -> None:
    run_id = finished_run(service, seed=4242)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("R")
        await wait_for(pilot, lambda: len(service.list_runs(LAUNCHER)) == 2)
        runs = service.list_runs(LAUNCHER)
        new = next(r for r in runs if r.id != run_id)
        assert new.seed == 4242 and new.launched_by == APPROVER.actor
        table = app.home.query_one(RunsTable)
        await wait_for(pilot, lambda: table.selected_key == str(new.id), what="selection")
    app.session.close()
