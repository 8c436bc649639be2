"""Patches, journal, help, the command palette and the demo."""

from __future__ import annotations

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, Static

from simcore.errors import ConfigError
from simcore.service import SimulatorService
from simtui.app import main, parse_keymap
from simtui.screens.help import HelpScreen
from simtui.screens.journal import JournalScreen
from simtui.screens.patches import PatchesScreen
from simtui.widgets.tables import NavTable, RunsTable
from tests.tui.helpers import (
    APPROVER,
    AUDITOR,
    app_for,
    finished_run,
    home_ready,
    plain,
    wait_for,
)


async def test_patch_registry(service: SimulatorService) -> None:
    app = app_for(service, AUDITOR)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("p")
        screen = app.screen
        assert isinstance(screen, PatchesScreen)
        table = screen.query_one("#patch-list", NavTable)
        await wait_for(pilot, lambda: table.row_count == 16, what="the built-in patches")
        code = screen.query_one("#patch-view", Static)
        await wait_for(pilot, lambda: "ctx.retry()" in plain(code))
        await pilot.press("slash", *"force-xof node", "enter")
        await wait_for(pilot, lambda: table.row_count == 1)
        assert "BAD:" in plain(code) and 'ctx.request.body.currency = "XOF";' in plain(code)
        await pilot.press("escape", "escape")
        assert app.screen is app.home
    app.session.close()


async def test_journal_screen_verifies_the_chain(service: SimulatorService) -> None:
    finished_run(service)
    app = app_for(service, AUDITOR)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("J")
        screen = app.screen
        assert isinstance(screen, JournalScreen)
        status = screen.query_one("#journal-status", Static)
        await wait_for(pilot, lambda: "chain intact" in str(status.render()))
        assert "journal verified: 2 entries" in str(status.render())
        table = screen.query_one("#journal-list", NavTable)
        await wait_for(pilot, lambda: table.row_count == 2)
        await pilot.press("enter")
        await wait_for(pilot, lambda: getattr(app.screen, "run_id", None) is not None)
    app.session.close()


async def test_help_lists_the_keys_of_the_screen(service: SimulatorService) -> None:
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("question_mark")
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        keys = plain(screen.query_one("#help-keys", Static))
        for expected in ("Approve", "Reject", "Filter", "Quit", "command palette"):
            assert expected in keys
        await pilot.press("escape")
        assert app.screen is app.home
    app.session.close()


async def test_palette_launches_the_demo_as_another_person(service: SimulatorService) -> None:
    app = app_for(service)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await pilot.press("colon")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        app.screen.query_one(Input).value = "launch demo"
        await pilot.pause(0.3)
        await pilot.press("enter")
        table = app.home.query_one(RunsTable)
        await wait_for(pilot, lambda: table.row_count == 7, what="seven demo runs")
    runs = service.list_runs(APPROVER)
    assert {r.launched_by for r in runs} == {"ops:demo"}
    names = {service.get_simulation(APPROVER, r.simulation_id).name for r in runs}
    assert "Timeout Network (python, bad patch)" in names
    assert "HMAC Signature (node)" in names and "Invalid Currency (python)" in names
    app.session.close()


async def test_demo_flag(service: SimulatorService) -> None:
    app = app_for(service, demo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await home_ready(pilot)
        await wait_for(pilot, lambda: len(service.list_runs(APPROVER)) == 7)
    app.session.close()


def test_main_reports_bad_settings_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAX_RUN_TIME_MS", "soon")
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("simtui: error: MAX_RUN_TIME_MS:")
    monkeypatch.delenv("MAX_RUN_TIME_MS")
    monkeypatch.setenv("SIMTUI_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SIMTUI_TOKEN", "t")
    with pytest.raises(SystemExit) as exit_:
        main(["--role", "auditor"])
    assert exit_.value.code == 2
    assert "--role: only in local mode" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--api", "http://127.0.0.1:9"], "simtui: error: token: API mode needs one: --token T"),
        (["--token", "t"], "simtui: error: token: API mode only: give the API too (--api URL)"),
        (["--api", "notaurl", "--token", "t"], "expected http(s)://host[:port], not 'notaurl'"),
    ],
)
def test_api_flags_are_checked_before_the_screen_opens(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    said: str,
) -> None:
    for name in ("SIMTUI_API_URL", "SIMTUI_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and said in err


def test_keymap_from_the_environment() -> None:
    assert parse_keymap("approve=A, reject=X") == {
        "approve": "A",
        "approve.refused": "A",
        "reject": "X",
        "reject.refused": "X",
    }
    assert parse_keymap("") == {}
    with pytest.raises(ConfigError, match="SIMTUI_KEYMAP: expected id=key"):
        parse_keymap("approve")
