from __future__ import annotations

from typing import Any

import psycopg
from textual.widgets import DataTable, Static

from simcore.config import Settings
from simtui.app import SimTUI
from tests.store.seed_runbook import seed


async def test_home_shows_queue_and_recent_runs(settings: Settings, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        seed(conn)
    app = SimTUI(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        status = str(pilot.app.screen.query_one("#status-line", Static).render())
        assert "queued 2" in status and "running 1" in status
        table: DataTable[Any] = pilot.app.screen.query_one("#recent-runs", DataTable)
        assert table.row_count == 7
        await pilot.press("q")
    assert app.return_code == 0


async def test_home_says_when_the_database_is_unreachable(tmp_path: Any) -> None:
    settings = Settings(database_url="postgresql://u@127.0.0.1:1/none", data_dir=tmp_path)
    app = SimTUI(settings)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        status = str(pilot.app.screen.query_one("#status-line", Static).render())
        assert "database unavailable" in status and "cannot connect" in status
