"""The run detail: the log tail follows a live run, pauses, filters; the tabs show the
verdict, the journal and the patch."""

from __future__ import annotations

from textual.widgets import Static, TabbedContent

from simcore.model import RunStatus
from simcore.service import SimulatorService
from simtui.screens.run_detail import RunDetailScreen
from simtui.widgets.log_tail import LogTail
from simtui.widgets.tables import NavTable
from tests.tui.helpers import (
    LAUNCHER,
    ScriptedExecutor,
    app_for,
    approval_row,
    finished_run,
    home_ready,
    plain,
    simulation,
    wait_for,
)


async def test_the_log_tail_follows_a_running_run(service: SimulatorService) -> None:
    executor = ScriptedExecutor(lines=60, pace=0.05)
    sim = simulation(service)
    app = app_for(service, executor=executor)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        run_id = service.launch_run(LAUNCHER, sim.id, 99).run.id
        await wait_for(pilot, lambda: app.home.query_one("#recent-runs").row_count == 1)
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, RunDetailScreen) and screen.run_id == str(run_id)
        tail = screen.query_one(LogTail)
        await wait_for(pilot, lambda: tail.received >= 25, what="lines while running")
        assert service.get_run(LAUNCHER, run_id).run.status is RunStatus.RUNNING
        view = tail.view
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0, "following: the end is shown"

        await pilot.press("f")
        assert not tail.follow and "paused" in str(tail.query_one("#log-status").render())
        paused_at, seen = view.scroll_y, tail.received
        await wait_for(pilot, lambda: tail.received >= seen + 10, what="more lines")
        assert view.scroll_y == paused_at, "paused: the view stays where it was"
        await pilot.press("f")
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y

        await wait_for(pilot, lambda: tail.received == 60, what="the whole log")
        await wait_for(pilot, lambda: screen.detail and screen.detail.run.status.terminal)
        header = str(screen.query_one("#run-header", Static).render())
        assert "success" in header and "approval pending" in header
        assert list(tail.buffer)[-1] == f"line 59 of run {run_id} seed 99"

        await pilot.press("slash", *"line 5", "enter")
        await wait_for(pilot, lambda: view.line_count == 11)  # line 5, lines 50-59
        assert "filter 'line 5': 11/60 lines" in str(tail.query_one("#log-status").render())
        await pilot.press("escape")
        await wait_for(pilot, lambda: view.line_count == 60)
        await pilot.press("escape")
        assert app.screen is app.home
    app.session.close()


async def test_tabs_show_verdict_journal_and_patch(service: SimulatorService) -> None:
    run_id = finished_run(service, log=["hello from the sandbox", "patch_applied op=op-1"])
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        app.open_run(str(run_id))
        await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        screen = app.screen
        assert isinstance(screen, RunDetailScreen)
        tail = screen.query_one(LogTail)
        await wait_for(pilot, lambda: tail.received == 2)
        await pilot.press("2")
        assert screen.query_one(TabbedContent).active == "result"
        result = plain(screen.query_one("#result-body", Static))
        assert "verdict success" in result and "success rate" in result
        assert "71.0%" in result and "97.0%" in result and "+26.0 pt" in result
        assert "not archived" in result
        await pilot.press("3")
        journal = screen.query_one("#journal-table", NavTable)
        assert journal.row_count == 2
        await pilot.press("4")
        patch = plain(screen.query_one("#patch-body", Static))
        assert "signature_mismatch-resync-clock-python" in patch and "ctx.retry()" in patch
        # Approve from the detail: the journal gets the entry, live.
        await pilot.press("a", "enter")
        await wait_for(pilot, lambda: approval_row(service, run_id)["status"] == "approved")
        await wait_for(pilot, lambda: journal.row_count == 3, what="the approved entry")
    app.session.close()


async def test_a_following_tail_shows_the_end_even_when_lines_came_before_the_layout() -> None:
    """A followed log shows its last line: lines written before the tail is laid out, then
    more after it."""
    from textual.app import App, ComposeResult

    class Tail(App[None]):
        def compose(self) -> ComposeResult:
            yield LogTail()

        def on_mount(self) -> None:
            self.query_one(LogTail).append(f"line {n}" for n in range(200))

    app = Tail()
    async with app.run_test(size=(60, 12)) as pilot:
        tail = app.query_one(LogTail)
        tail.append(["line 200"])
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        view = tail.view
        assert view.max_scroll_y > 0
        assert view.scroll_y == view.max_scroll_y
