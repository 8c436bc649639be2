"""A name written by hand with a terminal escape in it is drawn harmless on the dashboard."""

from __future__ import annotations

import psycopg

from simcore.service import SimulatorService
from simtui import terminal_guard
from tests.tui.helpers import LAUNCHER, app_for, home_ready, simulation, wait_for

EVIL = "evil\x1b[2J\x9bX"


async def test_an_escape_in_a_simulation_name_never_reaches_the_terminal(
    service: SimulatorService,
) -> None:
    sim = simulation(service)
    # The product refuses such a name; psql does not ask.
    with psycopg.connect(service.settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE sdk_simulations SET name = %s WHERE id = %s", (EVIL, sim.id))
    service.launch_run(LAUNCHER, sim.id, 1)
    app = app_for(service)
    async with app.run_test(size=(120, 30)) as pilot:
        await home_ready(pilot)
        table = app.home.query_one("#recent-runs")
        await wait_for(pilot, lambda: table.row_count == 1, what="the run's row")
        await pilot.pause()
        drawn = "".join(
            segment.text
            for strip in table.render_lines(table.region.reset_offset)
            for segment in strip
        )
        assert "evil\ufffd[2J\ufffdX" in drawn
        assert "\x1b" not in drawn and "\x9b" not in drawn


def test_the_guard_finds_both_tables() -> None:
    assert terminal_guard.install() is True
