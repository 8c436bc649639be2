"""Home: queue state and recent runs at a glance."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from simcore.config import Settings
from simcore.errors import SimError
from simcore.store import Database, migrate


@dataclass(frozen=True)
class HomeSnapshot:
    database: str
    queued: int
    running: int
    recent: list[dict[str, Any]]


def load_snapshot(db: Database) -> HomeSnapshot:
    migrate.migrate(db)
    with db.transaction() as conn:
        counts = conn.execute(
            "SELECT count(*) FILTER (WHERE status = 'queued') AS queued, "
            "count(*) FILTER (WHERE status = 'running') AS running FROM sdk_simulation_runs"
        ).fetchone()
        recent = conn.execute(
            "SELECT id, status, simulation_name, sdk_language, success_rate, run_at "
            "FROM sdk_simulation_runs_summary ORDER BY run_at DESC LIMIT 50"
        ).fetchall()
    assert counts is not None
    return HomeSnapshot(db.source, int(counts["queued"]), int(counts["running"]), recent)


class HomeScreen(Screen[None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.db = Database(settings)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("connecting to the database…", id="status-line")
        table: DataTable[str] = DataTable(id="recent-runs", cursor_type="row")
        table.border_title = "Recent runs"
        yield table
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#recent-runs", DataTable)
        table.add_columns("run", "status", "simulation", "lang", "success", "age")
        self.refresh_snapshot()

    @work(thread=True, exclusive=True, exit_on_error=False, group="db")
    def refresh_snapshot(self) -> None:
        try:
            snapshot = load_snapshot(self.db)
        except SimError as exc:
            self.app.call_from_thread(self._show_error, str(exc))
            return
        self.app.call_from_thread(self._show, snapshot)

    def _show_error(self, message: str) -> None:
        line = self.query_one("#status-line", Static)
        line.update(f"database unavailable: {message}")
        line.add_class("error")

    def _show(self, snapshot: HomeSnapshot) -> None:
        line = self.query_one("#status-line", Static)
        line.remove_class("error")
        line.update(f"{snapshot.database} · queued {snapshot.queued} · running {snapshot.running}")
        table = self.query_one("#recent-runs", DataTable)
        table.clear()
        for row in snapshot.recent:
            rate = "-" if row["success_rate"] is None else f"{float(row['success_rate']):.0%}"
            table.add_row(
                str(row["id"])[:8],
                row["status"],
                row["simulation_name"],
                row["sdk_language"],
                rate,
                row["run_at"].strftime("%H:%M:%S"),
                key=str(row["id"]),
            )
        if not snapshot.recent:
            table.border_subtitle = "no runs yet"

    def on_unmount(self) -> None:
        self.db.close()
