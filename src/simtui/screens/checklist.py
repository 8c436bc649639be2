"""The runbook's daily checklist: each item with a pass/fail mark and its figures.

One read of ``checklist`` (the engine evaluates every item in one consistent transaction), in
a thread worker; ``r`` reads it again. Below the items: the highlighted item's figures, and
what it lists (runs to review with their reasons, stuck runs, pending approvals, canaries);
``enter`` on a listed run opens it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

import psycopg
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from simcore.checklist import Checklist, Item
from simcore.errors import SimError
from simtui import format as fmt
from simtui.screens.base import BaseScreen
from simtui.widgets.footer import KeysFooter
from simtui.widgets.tables import NavTable, Ordered, Row

ITEM_COLUMNS = (
    ("", "mark"),
    ("item", "item"),
    ("figures", "summary"),
)
ENTRY_COLUMNS = (
    ("run", "run"),
    ("what", "what"),
    ("details", "details"),
)
PASS, FAIL = "✓", "✗"


class ChecklistLoaded(Message):
    def __init__(self, checklist: Checklist | None, error: str | None = None) -> None:
        super().__init__()
        self.checklist = checklist
        self.error = error


def figure(name: str, value: Any) -> str:
    """One figure as a person reads it: rates in %, ages as durations."""
    label = name.removesuffix("_seconds").replace("_", " ")
    if name.endswith("_seconds"):
        return f"{label} {fmt.span(float(value)) if isinstance(value, int | float) else '-'}"
    if value is None:
        return f"{label} -"
    if isinstance(value, float) and ("rate" in name or name == "target") and value <= 1:
        return f"{label} {fmt.percent(value, 1)}"
    if isinstance(value, list):
        return f"{label} {', '.join(str(v) for v in value)}"
    if isinstance(value, Mapping):
        return f"{label} {json.dumps(value, sort_keys=True, default=str)}"
    return f"{label} {value}"


def entry_cells(key: str, entry: Mapping[str, Any]) -> tuple[str, str]:
    """What a listed entry is, and its details, for the item it belongs to."""
    if key == "failed_runs":
        name, language = str(entry.get("simulation")), str(entry.get("sdk_language"))
        # The templates' names already end with the language: "HMAC Signature (python)".
        what = f"{entry.get('status')} · {name}" + ("" if language in name else f" ({language})")
        return what, "; ".join(entry.get("reasons") or ()) or "no reason recorded"
    if key == "stuck_runs":
        return (
            f"{entry.get('status')} for {fmt.span(entry.get('age_seconds'))}",
            f"since {entry.get('since')} · worker {entry.get('worker_id') or '-'}",
        )
    if key == "pending_approvals":
        return (
            f"patch {entry.get('patch')} ({entry.get('sdk_language')})",
            f"{fmt.percent(entry.get('baseline_success_rate'))} → "
            f"{fmt.percent(entry.get('success_rate'))} · by {entry.get('requested_by')} · "
            f"waiting {fmt.span(entry.get('waiting_seconds'))}",
        )
    if key == "canary":
        return (
            f"{entry.get('patch')} {entry.get('status')} {entry.get('rollout_percentage')}%",
            f"{entry.get('decision')}: {entry.get('reason')}",
        )
    rest = {k: v for k, v in entry.items() if k != "run_id"}
    return key, json.dumps(rest, sort_keys=True, default=str)


class ChecklistScreen(BaseScreen):
    DEFAULT_CSS = """
    ChecklistScreen #checklist-status {
        height: 1;
        padding: 0 1;
        background: $boost;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    ChecklistScreen #checklist-status.-failed {
        background: $error;
        color: $text;
    }
    ChecklistScreen #checklist-figures {
        height: auto;
        max-height: 4;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back", id="checklist.back"),
        Binding("r", "reload", "Refresh", id="checklist.refresh"),
        # The home screen's refresh key does the same here.
        Binding("ctrl+r", "reload", "Refresh", show=False, id="checklist.refresh-ctrl"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.checklist: Checklist | None = None
        self.run_of: dict[str, str] = {}
        """Entry row key -> run id: enter opens the run an entry is about."""

    def compose(self) -> ComposeResult:
        yield Static("checklist: reading…", id="checklist-status", markup=False)
        with Vertical(classes="pane", id="checklist-items-pane"):
            yield NavTable(ITEM_COLUMNS, id="checklist-items")
        yield Static("", id="checklist-figures", markup=False)
        with Vertical(classes="pane", id="checklist-entries-pane"):
            yield NavTable(ENTRY_COLUMNS, id="checklist-entries")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#checklist-items-pane").border_title = "Daily checklist"
        self.query_one("#checklist-entries-pane").border_title = "Listed"
        self.query_one("#checklist-items", NavTable).focus()
        self.load()

    def action_reload(self) -> None:
        self.query_one("#checklist-status", Static).update("checklist: reading…")
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="checklist")
    def load(self) -> None:
        simulator, principal = self.session.open()
        try:
            checklist = simulator.checklist(principal)
        except (SimError, psycopg.Error) as exc:
            self.post_message(ChecklistLoaded(None, str(exc)))
            return
        self.post_message(ChecklistLoaded(checklist))

    def on_checklist_loaded(self, message: ChecklistLoaded) -> None:
        status = self.query_one("#checklist-status", Static)
        checklist = message.checklist
        if checklist is None:
            status.add_class("-failed")
            status.update(f"checklist: {message.error}")
            return
        self.checklist = checklist
        failed = checklist.failed
        total = len(checklist.items)
        at = checklist.at.astimezone().strftime("%H:%M:%S")
        # Scope and time first: the list of failed items is what 80 columns may cut.
        line = (
            f"{FAIL} {len(failed)} of {total} items fail · {checklist.scope} · at {at}: "
            + ", ".join(failed)
            if failed
            else f"{PASS} all {total} items pass · {checklist.scope} · at {at}"
        )
        status.set_class(bool(failed), "-failed")
        status.update(line)
        table = self.query_one("#checklist-items", NavTable)
        table.sync([self._item_row(item, total - i) for i, item in enumerate(checklist.items)])
        self._show_item(table.selected_key)

    @staticmethod
    def _item_row(item: Item, order: int) -> Row:
        style = "" if item.ok else "bold red"
        return Row(
            item.key,
            (
                Ordered(PASS if item.ok else FAIL, float(order)),
                Text(item.title, style=style),
                Text(item.summary, style=style),
            ),
            float(order),
        )

    def _item(self, key: str | None) -> Item | None:
        if self.checklist is None or key is None:
            return None
        try:
            return self.checklist.item(key)
        except KeyError:
            return None

    def _show_item(self, key: str | None) -> None:
        item = self._item(key)
        figures = self.query_one("#checklist-figures", Static)
        entries = self.query_one("#checklist-entries", NavTable)
        pane = self.query_one("#checklist-entries-pane")
        if item is None:
            figures.update("")
            entries.sync([])
            return
        mark = PASS if item.ok else FAIL
        numbers = " · ".join(figure(k, v) for k, v in item.figures.items())
        figures.update(f"{mark} {item.title}: {item.summary}\n{numbers}")
        rows = []
        self.run_of = {}
        count = len(item.entries)
        for i, entry in enumerate(item.entries):
            row_key = f"{item.key}:{i}"
            run_id = entry.get("run_id")
            if run_id:
                self.run_of[row_key] = str(run_id)
            what, details = entry_cells(item.key, entry)
            rows.append(
                Row(
                    row_key,
                    (
                        Ordered(fmt.short_id(run_id) if run_id else "-", float(count - i)),
                        Text(what),
                        Text(details),
                    ),
                    float(count - i),
                )
            )
        entries.sync(rows)
        pane.border_title = Text(
            f"{item.title}: {count} listed" if count else f"{item.title}: nothing listed"
        )

    @on(DataTable.RowHighlighted, "#checklist-items")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_item(event.row_key.value)

    @on(DataTable.RowSelected, "#checklist-items")
    def _item_selected(self, event: DataTable.RowSelected) -> None:
        entries = self.query_one("#checklist-entries", NavTable)
        if entries.row_count:
            entries.focus()

    @on(DataTable.RowSelected, "#checklist-entries")
    def _entry_selected(self, event: DataTable.RowSelected) -> None:
        run_id = self.run_of.get(event.row_key.value or "")
        if run_id is not None:
            self.tui.open_run(run_id)

    def action_back(self) -> None:
        self.app.pop_screen()
