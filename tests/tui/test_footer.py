"""The footer is rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from simcore.auth import Principal
from simcore.model import Role
from simtui.app import SimTUI
from simtui.screens.note import NoteScreen
from simtui.session import Session
from simtui.widgets.footer import KeysFooter
from simtui.widgets.tables import ApprovalsTable, RunsTable
from tests.tui.frozen import FrozenSimulator
from tests.tui.helpers import home_ready, wait_for


async def test_footer_keys_are_kept_while_unchanged() -> None:
    session = Session.attached(
        FrozenSimulator(), Principal("oncall", Role.OPS), label="frozen", live_events=False
    )
    app = SimTUI(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await home_ready(pilot)
        footer = app.home.query_one(KeysFooter)
        await wait_for(pilot, lambda: bool(footer.query(FooterKey)), what="the keys")
        await pilot.pause()
        keys = list(footer.query(FooterKey))
        assert {k.key for k in keys} >= {"a", "r", "q"}
        assert all(k.has_class("-compact") for k in keys)
        # Another table with the same keys, a dialog opened and closed: the same widgets.
        app.home.query_one(ApprovalsTable).focus()
        await pilot.pause()
        app.home.query_one(RunsTable).focus()
        await pilot.pause()
        app.home.refresh_bindings()
        await pilot.pause()
        app.push_screen(NoteScreen("t", "d", required=False, confirm="ok"))
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.home)
        await pilot.pause()
        assert list(footer.query(FooterKey)) == keys
