"""Stage, promote and roll back by keys: what the approval queue shows, what lands in the
database and the journal, and what is refused (role, state machine, hook, API mode)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from textual.widgets import Static

from simcore.auth import Principal
from simcore.config import Settings
from simcore.model import Role
from simcore.service import SimulatorService
from simtui.app import SimTUI, parse_keymap
from simtui.screens.checklist import ChecklistScreen
from simtui.screens.help import HelpScreen
from simtui.screens.note import NoteScreen
from simtui.session import Session
from simtui.widgets.tables import ApprovalsTable, RunsTable
from tests.api.conftest import LiveServer, Tokens
from tests.tui.helpers import (
    APPROVER,
    AUDITOR,
    LAUNCHER,
    app_for,
    finished_run,
    home_ready,
    notifications,
    plain,
    wait_for,
)

DEV = Principal("dana", Role.DEV)


def approved_run(service: SimulatorService, **kwargs: Any) -> UUID:
    run_id = finished_run(service, **kwargs)
    service.approve_patch(APPROVER, run_id, "looks right")
    return run_id


def staged_run(service: SimulatorService, **kwargs: Any) -> UUID:
    run_id = approved_run(service, **kwargs)
    service.stage_patch(APPROVER, run_id, "canary at 5%")
    return run_id


def rollout_row(service: SimulatorService, run_id: UUID) -> dict[str, Any]:
    with service.db.transaction() as conn:
        row = conn.execute(
            "SELECT status, rollout_percentage, last_transition_by, last_transition_reason "
            "FROM sdk_patch_approvals WHERE simulation_run_id = %s",
            (run_id,),
        ).fetchone()
    assert row is not None
    return dict(row)


def journal_actions(service: SimulatorService, run_id: UUID) -> list[str]:
    return [e.action for e in service.get_run(LAUNCHER, run_id).journal]


def cell(table: ApprovalsTable, run_id: UUID, column: str) -> str:
    for key, shown in table.run_of.items():
        if shown == str(run_id):
            return str(table.get_cell(key, column))
    raise AssertionError(f"run {run_id} is not in the approval queue")


def in_queue(table: ApprovalsTable, run_id: UUID) -> bool:
    return str(run_id) in table.run_of.values()


def shown_actions(app: SimTUI) -> set[str]:
    return {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}


async def test_stage_an_approved_run_by_keys(service: SimulatorService) -> None:
    run_id = approved_run(service)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        assert app.home.query_one(RunsTable).selected_key == str(run_id)
        assert {"stage", "promote", "rollback"} <= shown_actions(app)
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, NoteScreen)
        detail = str(dialog.query_one("#dialog-detail", Static).render())
        assert "approved → staged at 5%; the rollout hook runs" in detail
        await pilot.press(*"canary go", "enter")
        await wait_for(pilot, lambda: rollout_row(service, run_id)["status"] == "staged")
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, run_id), what="the staged patch")
        assert cell(table, run_id, "state") == "staged 5%"
        assert cell(table, run_id, "canary") == "no observations"
        assert "staged 1" in str(app.home.query_one("#approvals-pane").border_title)
        told = [n for n in notifications(app) if n.startswith("staged: patch")]
        assert told and "approved 0% → staged 5% · hook dry-run" in told[0]
    assert rollout_row(service, run_id) == {
        "status": "staged",
        "rollout_percentage": 5,
        "last_transition_by": APPROVER.actor,
        "last_transition_reason": "canary go",
    }
    entry = service.get_run(LAUNCHER, run_id).journal[-1]
    assert (entry.action, entry.actor) == ("staged", APPROVER.actor)
    assert entry.details["reason"] == "canary go"
    assert (entry.details["from_percent"], entry.details["to_percent"]) == (0, 5)
    app.session.close()


async def test_promote_from_the_queue_shows_the_canary_then_deploys(
    service: SimulatorService,
) -> None:
    run_id = staged_run(service)
    service.record_canary_observation(APPROVER, run_id, 0.97, requests=200)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, run_id), what="the staged patch")
        canary = "wait · 1 obs · last 97.0% · min 97.0%"
        assert cell(table, run_id, "canary") == canary
        await pilot.press("tab")
        assert app.focused is table
        await pilot.press("P")
        dialog = app.screen
        assert isinstance(dialog, NoteScreen)
        detail = str(dialog.query_one("#dialog-detail", Static).render())
        assert "staged → 100% (100% is deployed)" in detail
        assert f"canary: {canary} (at 5% for" in detail
        await pilot.press("enter")  # no reason: the default one, with the canary's figures
        await wait_for(pilot, lambda: rollout_row(service, run_id)["status"] == "deployed")
        await wait_for(pilot, lambda: cell(table, run_id, "state") == "deployed 100%")
        # The observation was made at 5%: it says nothing about 100%.
        assert cell(table, run_id, "canary") == "no observations"
    row = rollout_row(service, run_id)
    assert row["rollout_percentage"] == 100
    assert row["last_transition_reason"] == f"promoted from the dashboard (canary: {canary})"
    assert journal_actions(service, run_id)[-2:] == ["staged", "deployed"]
    app.session.close()


async def test_rollback_asks_for_a_reason_and_journals_it(service: SimulatorService) -> None:
    run_id = staged_run(service)
    before = journal_actions(service, run_id)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, run_id), what="the staged patch")
        await pilot.press("tab", "b")
        dialog = app.screen
        assert isinstance(dialog, NoteScreen)
        await pilot.press("enter")
        assert app.screen is dialog, "a rollback without a reason must not be sent"
        error = str(dialog.query_one("#note-error", Static).render())
        assert error == "reason: say why (it goes to the journal)"
        assert journal_actions(service, run_id) == before
        await pilot.press(*"5xx up at 5%", "enter")
        await wait_for(pilot, lambda: rollout_row(service, run_id)["status"] == "rolled_back")
        await wait_for(pilot, lambda: not in_queue(table, run_id), what="the row to leave")
        assert any("staged 5% → rolled_back 0%" in n for n in notifications(app))
    assert rollout_row(service, run_id)["rollout_percentage"] == 0
    entry = service.get_run(LAUNCHER, run_id).journal[-1]
    assert entry.action == "rolled_back" and entry.details["reason"] == "5xx up at 5%"
    assert entry.actor == APPROVER.actor
    app.session.close()


async def test_cancelling_the_confirmation_changes_nothing(service: SimulatorService) -> None:
    approved = approved_run(service)
    staged = staged_run(service, template="timeout")
    journals = {r: journal_actions(service, r) for r in (approved, staged)}
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        runs = app.home.query_one(RunsTable)
        runs.select_key(str(approved))
        await pilot.press("s")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press(*"not now", "escape")
        assert app.screen is app.home
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, staged), what="the staged patch")
        await pilot.press("tab")
        for key in ("P", "b"):
            await pilot.press(key)
            assert isinstance(app.screen, NoteScreen), key
            await pilot.press("escape")
            assert app.screen is app.home
        await pilot.pause(0.2)
    assert rollout_row(service, approved)["status"] == "approved"
    assert rollout_row(service, staged)["status"] == "staged"
    assert {r: journal_actions(service, r) for r in (approved, staged)} == journals
    app.session.close()


@pytest.mark.parametrize(
    ("principal", "told"),
    [
        (AUDITOR, "read-only: auditor (cannot {what} patches)"),
        (DEV, "role dev may not {what} patches: it needs the ops role"),
    ],
)
async def test_only_ops_may_stage_promote_or_roll_back(
    service: SimulatorService, principal: Principal, told: str
) -> None:
    approved = approved_run(service)
    staged = staged_run(service, template="timeout")
    app = app_for(service, principal)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, staged), what="the staged patch")
        assert cell(table, staged, "state") == "staged 5%"  # they see it, they cannot move it
        assert not shown_actions(app) & {"stage", "promote", "rollback"}
        app.home.query_one(RunsTable).select_key(str(approved))
        await pilot.press("s")
        await pilot.press("tab", "P", "b")
        await pilot.pause()
        assert app.screen is app.home, "a dialog opened for a role that may not"
        said = notifications(app)
        for what in ("stage", "promote", "roll back"):
            assert told.format(what=what) in said, said
    assert rollout_row(service, approved)["status"] == "approved"
    assert rollout_row(service, staged)["status"] == "staged"
    app.session.close()


async def test_an_illegal_step_is_answered_with_the_engines_reason(
    service: SimulatorService,
) -> None:
    pending = finished_run(service)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("tab")  # the pending approval, highlighted in the queue
        await pilot.pause()
        # Nothing to roll out here: the footer does not offer it, the key still answers.
        assert not shown_actions(app) & {"stage", "promote", "rollback"}
        await pilot.press("P")
        await pilot.pause()
        assert app.screen is app.home
        short = str(pending)[:8]
        assert (
            f"the patch of run {short} is pending: it cannot be promoted "
            "(from pending: approve, reject)"
        ) in notifications(app)
    assert rollout_row(service, pending)["status"] == "pending"
    app.session.close()


async def test_a_state_moved_meanwhile_is_refused_by_the_engine(
    service: SimulatorService,
) -> None:
    run_id = approved_run(service)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await wait_for(pilot, lambda: app.home.rollouts is not None, what="the rollouts")
        # Someone else stages it (an approval change sends no event: the screen still says
        # approved), then this dashboard tries too: the engine refuses, with its reason.
        service.stage_patch(LAUNCHER, run_id, "from the CLI")
        await pilot.press("s")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("cannot be staged" in n for n in notifications(app)))
        assert app.screen is app.home
        told = next(n for n in notifications(app) if "cannot be staged" in n)
        assert told == (
            f"the patch of run {run_id} is already staged: it cannot be staged "
            "(from staged: promote, rollback)"
        )
    assert journal_actions(service, run_id).count("staged") == 1
    app.session.close()


async def test_a_failed_hook_is_said_and_the_state_stays(db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        database_url=db_url,
        data_dir=tmp_path / "data",
        rollout_hook="false {percent}",
        rollout_hook_dry_run=False,
    )
    with SimulatorService(settings) as service:
        run_id = approved_run(service)
        app = app_for(service)
        async with app.run_test(size=(80, 24)) as pilot:
            await home_ready(pilot)
            await pilot.press("s", *"go", "enter")
            await wait_for(
                pilot, lambda: any("rollout hook failed" in n for n in notifications(app))
            )
            told = next(n for n in notifications(app) if "rollout hook failed" in n)
            assert "exit status 1" in told and "stays approved at 0%" in told
        assert rollout_row(service, run_id)["status"] == "approved"
        app.session.close()


async def test_the_queue_shows_each_rollout_with_its_canary(service: SimulatorService) -> None:
    pending = finished_run(service, template="invalid_currency")
    quiet = staged_run(service)
    failing = staged_run(service, template="timeout")
    for rate in (0.91, 0.90, 0.89):
        service.record_canary_observation(APPROVER, failing, rate)
    deployed = staged_run(service, language="node")
    service.promote_patch(APPROVER, deployed, "held for an hour")
    service.record_canary_observation(APPROVER, deployed, 0.99)
    app = app_for(service, AUDITOR)  # reading the canary needs no write right
    async with app.run_test(size=(160, 48)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: table.row_count == 4, what="pending + 3 in rollout")
        assert cell(table, pending, "state") == "pending"
        assert cell(table, pending, "canary") == "-"
        assert cell(table, quiet, "state") == "staged 5%"
        assert cell(table, quiet, "canary") == "no observations"
        assert cell(table, failing, "canary") == "roll back · 3 obs · last 89.0% · min 89.0%"
        assert cell(table, deployed, "state") == "deployed 100%"
        assert cell(table, deployed, "canary") == "watching · 1 obs · last 99.0% · min 99.0%"
        title = str(app.home.query_one("#approvals-pane").border_title)
        assert title == "Pending approvals (1) · staged 2 · deployed 1"
        # Staged first: a canary on live traffic is what wants watching.
        order = [table.run_of[str(row.key.value)] for row in table.ordered_rows]
        assert set(order[:2]) == {str(quiet), str(failing)}
        assert order[2:] == [str(pending), str(deployed)]
    app.session.close()


async def test_stage_from_the_run_detail(service: SimulatorService) -> None:
    run_id = approved_run(service)
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(app.screen, "detail", None) is not None)
        await pilot.press("s", *"from detail", "enter")
        await wait_for(pilot, lambda: rollout_row(service, run_id)["status"] == "staged")
        header = app.screen.query_one("#run-header", Static)
        await wait_for(pilot, lambda: "approval staged 5%" in str(header.render()))
        await pilot.press("escape")
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, run_id), what="the queue to show it")
        assert cell(table, run_id, "state") == "staged 5%"
    assert service.get_run(LAUNCHER, run_id).journal[-1].details["reason"] == "from detail"
    app.session.close()


# -- API mode ---------------------------------------------------------------------------------


async def test_api_mode_stages_by_keys_and_reads_the_checklist(
    service: SimulatorService, live: LiveServer, tokens: Tokens, settings: Settings
) -> None:
    run_id = approved_run(service)
    remote = Settings(api_url=live.url, token=tokens.ops2, data_dir=settings.data_dir)
    app = SimTUI(Session.from_settings(remote))
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        runs = app.home.query_one(RunsTable)
        await wait_for(pilot, lambda: runs.selected_key == str(run_id), what="the approved run")
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, NoteScreen)
        detail = str(dialog.query_one("#dialog-detail", Static).render())
        assert "approved → staged at 5%; the rollout hook runs" in detail
        await pilot.press(*"canary go", "enter")
        await wait_for(pilot, lambda: rollout_row(service, run_id)["status"] == "staged")
        table = app.home.query_one(ApprovalsTable)
        await wait_for(pilot, lambda: in_queue(table, run_id), what="the staged patch")
        assert cell(table, run_id, "state") == "staged 5%"
        await wait_for(
            pilot,
            lambda: cell(table, run_id, "canary") == "no observations",
            what="the canary, evaluated by the server",
        )
        told = [n for n in notifications(app) if n.startswith("staged: patch")]
        assert told and "approved 0% → staged 5% · hook dry-run" in told[0]
        await pilot.press("C")
        screen = app.screen
        assert isinstance(screen, ChecklistScreen)
        status = screen.query_one("#checklist-status", Static)
        await wait_for(pilot, lambda: "reading" not in str(status.render()), what="the checklist")
        assert not status.has_class("-failed"), str(status.render())
        assert screen.checklist is not None
        assert {i.key for i in screen.checklist.items} == {
            i.key for i in service.checklist(APPROVER).items
        }
    assert rollout_row(service, run_id) == {
        "status": "staged",
        "rollout_percentage": 5,
        "last_transition_by": APPROVER.actor,
        "last_transition_reason": "canary go",
    }
    entry = service.get_run(LAUNCHER, run_id).journal[-1]
    assert (entry.action, entry.actor) == ("staged", APPROVER.actor)
    app.session.close()


@pytest.mark.parametrize(("principal", "listed"), [(APPROVER, True), (AUDITOR, False)])
async def test_help_lists_the_rollout_keys_to_ops_only(
    service: SimulatorService, principal: Principal, listed: bool
) -> None:
    finished_run(service)  # pending: the footer does not offer a rollout step here
    app = app_for(service, principal)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = plain(app.screen.query_one("#help-keys", Static))
        for description in ("Stage", "Promote", "Roll back"):
            assert (description in keys) is listed, keys
        assert "Checklist" in keys
    app.session.close()


async def test_the_rollout_keys_can_be_remapped(service: SimulatorService) -> None:
    approved = approved_run(service)
    pending = finished_run(service, template="timeout")
    app = app_for(service)
    app.set_keymap(parse_keymap("stage=S"))
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        runs = app.home.query_one(RunsTable)
        runs.select_key(str(pending))  # footer without the rollout keys: the hidden twin
        await pilot.press("s")
        await pilot.pause()
        assert app.screen is app.home and not notifications(app)
        await pilot.press("S")
        await pilot.pause()
        assert any("it cannot be staged" in n for n in notifications(app))
        runs.select_key(str(approved))  # now the footer offers it, on S
        await pilot.pause()
        await pilot.press("S")
        assert isinstance(app.screen, NoteScreen)
        await pilot.press("escape")
    assert rollout_row(service, approved)["status"] == "approved"
    app.session.close()
