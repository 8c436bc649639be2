"""Screenshots of the main screens at 80x24 and 160x48, over a frozen data set.

Update after a deliberate change with ``pytest tests/tui/test_snapshots.py
--snapshot-update`` and look at the report before committing the SVGs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from simcore.auth import Principal
from simcore.model import Role
from simtui.app import SimTUI
from simtui.screens.new_simulation import NewSimulationScreen
from simtui.screens.run_detail import RunDetailScreen
from simtui.session import Session
from simtui.widgets.log_tail import LogTail
from tests.tui.frozen import LOG, FrozenSimulator, _id
from tests.tui.helpers import home_ready, wait_for

OPS = Principal("oncall", Role.OPS)
AUDITOR = Principal("audrey", Role.AUDITOR)

Compare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _app(principal: Principal = OPS) -> SimTUI:
    session = Session.attached(FrozenSimulator(), principal, label="frozen", live_events=False)
    return SimTUI(session)


async def _detail(pilot: Pilot[Any]) -> None:
    await home_ready(pilot)
    app = pilot.app
    assert isinstance(app, SimTUI)
    app.open_run(str(_id("r3")))
    await wait_for(pilot, lambda: isinstance(app.screen, RunDetailScreen))
    screen = app.screen
    assert isinstance(screen, RunDetailScreen)
    await wait_for(pilot, lambda: screen.query_one(LogTail).received == len(LOG))
    # The Log measures its lines in a thread worker: wait for it, or the scrollbars differ.
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_home_80x24(snap_compare: Compare) -> None:
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=home_ready)


def test_home_160x48(snap_compare: Compare) -> None:
    assert snap_compare(_app(), terminal_size=(160, 48), run_before=home_ready)


def test_home_auditor_no_color_80x24(
    snap_compare: Compare, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(_app(AUDITOR), terminal_size=(80, 24), run_before=home_ready)


def test_run_detail_80x24(snap_compare: Compare) -> None:
    assert snap_compare(_app(), terminal_size=(80, 24), run_before=_detail)


def test_run_result_160x48(snap_compare: Compare) -> None:
    async def result(pilot: Pilot[Any]) -> None:
        await _detail(pilot)
        await pilot.press("2")
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(160, 48), run_before=result)


def test_new_simulation_with_an_error_80x24(snap_compare: Compare) -> None:
    async def form(pilot: Pilot[Any]) -> None:
        await home_ready(pilot)
        await pilot.press("n")
        screen = pilot.app.screen
        assert isinstance(screen, NewSimulationScreen)
        await wait_for(pilot, lambda: screen.patches)
        box = screen.query_one("#total_requests", Input)
        box.value = "lots"
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(80, 24), run_before=form)
