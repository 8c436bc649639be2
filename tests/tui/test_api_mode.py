"""API mode: the same screens over ``RemoteService`` (SIMTUI_API_URL), polling."""

from __future__ import annotations

from simcore.config import Settings
from simcore.service import SimulatorService
from simtui.app import SimTUI
from simtui.session import Session
from simtui.widgets.tables import ApprovalsTable, RunsTable
from tests.api.conftest import LiveServer, Tokens
from tests.tui.helpers import approval_row, finished_run, home_ready, wait_for


def _remote(live: LiveServer, token: str, settings: Settings) -> SimTUI:
    remote = Settings(api_url=live.url, token=token, data_dir=settings.data_dir)
    return SimTUI(Session.from_settings(remote))


async def test_api_mode_shows_and_approves(
    service: SimulatorService, live: LiveServer, tokens: Tokens, settings: Settings
) -> None:
    run_id = finished_run(service)  # launched by ops:alice; the token below is ops:bob
    app = _remote(live, tokens.ops2, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        snap = app.home.snapshot
        assert snap is not None and snap.partial is not None
        assert app.home.query_one(RunsTable).row_count == 1
        assert app.home.query_one(ApprovalsTable).row_count == 1
        status = str(app.home.query_one("#status-line").render())
        assert "ops:bob" in status and f"API {live.url}" in status and "polling" in status
        await pilot.press("a", "enter")
        await wait_for(pilot, lambda: approval_row(service, run_id)["status"] == "approved")
    assert approval_row(service, run_id)["decided_by"] == "ops:bob"
    app.session.close()


async def test_api_mode_auditor_is_read_only(
    service: SimulatorService, live: LiveServer, tokens: Tokens, settings: Settings
) -> None:
    run_id = finished_run(service)
    app = _remote(live, tokens.auditor, settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("a")
        await pilot.pause()
        assert app.screen is app.home
        assert any("read-only: auditor" in str(n.message) for n in app._notifications)
    assert approval_row(service, run_id)["status"] == "pending"
    app.session.close()
