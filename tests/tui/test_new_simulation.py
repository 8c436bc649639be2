"""New simulation: the form refuses bad input with the engine's reason next to the field,
and a good one launches a run that shows up, selected, on the home screen."""

from __future__ import annotations

from textual.widgets import Input, Select, Static

from simcore.auth import Principal
from simcore.model import Role, TenantType
from simcore.patches import default_patch
from simcore.service import SimulatorService
from simtui.screens.new_simulation import NewSimulationScreen
from simtui.widgets.tables import RunsTable
from tests.tui.helpers import APPROVER, app_for, home_ready, notifications, wait_for


def _error(screen: NewSimulationScreen, field: str) -> str:
    widget = screen.query_one(f"#error-{field}", Static)
    return str(widget.render()) if widget.display else ""


async def test_the_form_refuses_bad_input_with_the_reason(service: SimulatorService) -> None:
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NewSimulationScreen)
        await wait_for(pilot, lambda: screen.patches, what="the patch registry")
        assert not screen.errors
        # Typed, as a person would.
        screen.query_one("#total_requests", Input).focus()
        await pilot.press("ctrl+u", *"abc")
        await pilot.pause()
        assert "total_requests: Input should be a valid integer" in _error(screen, "total_requests")
        screen.query_one("#error_frequency", Input).value = "2"
        screen.query_one("#seed", Input).value = "-1"
        screen.query_one("#tenant_id", Input).value = "bad id!"
        screen.query_one("#name", Input).value = ""
        await pilot.pause()
        assert "less than or equal to 1" in _error(screen, "error_frequency")
        assert "seed: must be an integer from 0 to" in _error(screen, "seed")
        assert "tenant_id: String should match pattern" in _error(screen, "tenant_id")
        assert "name: String should have at least 1 character" in _error(screen, "name")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen
        assert any("5 field(s) to fix" in n for n in notifications(app))
        assert service.list_simulations(APPROVER) == []
        # Fixing a field clears its reason at once.
        screen.query_one("#error_frequency", Input).value = "0.25"
        await pilot.pause()
        assert _error(screen, "error_frequency") == ""
    app.session.close()


async def test_a_good_form_launches_a_run_that_appears_on_home(
    service: SimulatorService,
) -> None:
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NewSimulationScreen)
        screen.query_one("#template", Select).value = "timeout"
        screen.query_one("#sdk_language", Select).value = "node"
        await wait_for(pilot, lambda: screen.patches and screen.language == "node")
        good = default_patch("timeout", "node")
        assert good is not None
        await wait_for(
            pilot, lambda: screen.query_one("#patch_reference", Select).value == str(good.id)
        )
        assert screen.query_one("#name", Input).value == "Timeout Network (node)"
        assert screen.query_one("#total_requests", Input).value == "200"
        screen.query_one("#seed", Input).value = "777"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.home, what="back home")
        table = app.home.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 1)
        (run,) = service.list_runs(APPROVER)
        assert table.selected_key == str(run.id)
        assert run.seed == 777 and run.patch_id == good.id
        sim = service.get_simulation(APPROVER, run.simulation_id)
        assert sim.sdk_language.value == "node" and sim.scenario.error.value == "timeout"
        await pilot.press("enter")
        assert getattr(app.screen, "run_id", None) == str(run.id)
    app.session.close()


async def test_an_engine_refusal_lands_under_its_field(service: SimulatorService) -> None:
    dev = Principal("dana", Role.DEV, TenantType.MERCHANT, "m1")
    app = app_for(service, dev)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NewSimulationScreen)
        await wait_for(pilot, lambda: screen.patches)
        await pilot.press("ctrl+s")  # internal/default: outside dana's scope
        await wait_for(pilot, lambda: _error(screen, "tenant_id") != "")
        assert "outside the caller's tenant scope" in _error(screen, "tenant_id")
        screen.query_one("#tenant_type", Select).value = "merchant"
        screen.query_one("#tenant_id", Input).value = "m1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is app.home)
        assert len(service.list_runs(dev)) == 1
    app.session.close()
