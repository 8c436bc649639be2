"""The audit journal: its latest entries, and whether the hash chain verifies.

Verification walks the whole chain and recomputes every hash, so it runs in a thread worker
and the screen says "verifying" until it is done; ``v`` runs it again.
"""

from __future__ import annotations

import json
from typing import ClassVar

import psycopg
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from simcore.dashboard import journal_tail
from simcore.errors import SimError
from simtui import format as fmt
from simtui.messages import JournalLoaded, JournalVerified, LoadFailed
from simtui.screens.base import BaseScreen
from simtui.widgets.footer import KeysFooter
from simtui.widgets.tables import NavTable, Ordered, Row

COLUMNS = (
    ("at", "at"),
    ("action", "action"),
    ("actor", "actor"),
    ("run", "run"),
    ("details", "details"),
    ("hash", "hash"),
)
TAIL = 300


class JournalScreen(BaseScreen):
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back", id="journal.back"),
        Binding("v", "verify", "Verify", id="journal.verify"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.run_of: dict[str, str] = {}
        """Entry id -> run id: enter opens the run an entry is about."""

    def compose(self) -> ComposeResult:
        yield Static("journal: verifying the hash chain…", id="journal-status", markup=False)
        with Vertical(classes="pane", id="journal-pane"):
            yield NavTable(COLUMNS, id="journal-list")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#journal-pane").border_title = f"Latest entries (up to {TAIL})"
        self.query_one("#journal-list", NavTable).focus()
        self.action_verify()
        self.load()

    def action_verify(self) -> None:
        status = self.query_one("#journal-status", Static)
        status.remove_class("-broken")
        status.update("journal: verifying the hash chain…")
        self.verify()

    @work(thread=True, exclusive=True, exit_on_error=False, group="verify")
    def verify(self) -> None:
        simulator, principal = self.session.open()
        try:
            result = simulator.verify_journal(principal)
        except (SimError, psycopg.Error) as exc:
            self.post_message(LoadFailed("verify", str(exc)))
            return
        self.post_message(JournalVerified(result))

    @work(thread=True, exclusive=True, exit_on_error=False, group="journal")
    def load(self) -> None:
        session = self.session
        _, principal = session.open()
        service = session.service
        if service is None:
            self.post_message(
                JournalLoaded(None, "API mode: each run's entries are in its detail (enter)")
            )
            return
        try:
            with service.db.transaction() as conn:
                entries = journal_tail(conn, principal, TAIL)
        except (SimError, psycopg.Error) as exc:
            self.post_message(LoadFailed("journal", str(exc)))
            return
        self.post_message(JournalLoaded(entries))

    def on_load_failed(self, message: LoadFailed) -> None:
        status = self.query_one("#journal-status", Static)
        status.update(f"journal: {message.what}: {message.error}")

    def on_journal_verified(self, message: JournalVerified) -> None:
        status = self.query_one("#journal-status", Static)
        result = message.verification
        status.set_class(not result.ok, "-broken")
        status.update(("✓ " if result.ok else "✗ ") + result.describe())

    def on_journal_loaded(self, message: JournalLoaded) -> None:
        table = self.query_one("#journal-list", NavTable)
        if message.entries is None:
            table.display = False
            self.query_one("#journal-pane").border_title = Text(message.note)
            return
        rows = [
            Row(
                str(e.id),
                (
                    Ordered(e.created_at.astimezone().strftime("%m-%d %H:%M:%S"), float(e.id)),
                    e.action,
                    Text(e.actor),
                    fmt.short_id(e.run_id) if e.run_id else "-",
                    Text(fmt.clip(json.dumps(e.details, sort_keys=True, default=str), 60)),
                    e.hash[:10],
                ),
                float(e.id),
            )
            for e in message.entries
        ]
        self.run_of = {str(e.id): str(e.run_id) for e in message.entries if e.run_id}
        table.sync(rows)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        run_id = self.run_of.get(event.row_key.value or "")
        if run_id is not None:
            self.tui.open_run(run_id)

    def action_back(self) -> None:
        self.app.pop_screen()
