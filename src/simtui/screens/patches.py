"""The patch registry: every patch by language and error, with its code highlighted."""

from __future__ import annotations

from typing import ClassVar

import psycopg
from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from simcore.errors import SimError
from simcore.model import Patch, SdkLanguage
from simtui import format as fmt
from simtui.messages import LoadFailed, PatchesLoaded
from simtui.screens.base import BaseScreen
from simtui.widgets.footer import KeysFooter
from simtui.widgets.tables import NavTable, Ordered, Row

COLUMNS = (
    ("patch", "slug"),
    ("lang", "lang"),
    ("error", "error"),
    ("severity", "severity"),
    ("source", "source"),
    ("state", "state"),
)


def render_patch(patch: Patch) -> RenderableType:
    lexer = "javascript" if patch.sdk_language is SdkLanguage.NODE else "python"
    parts: list[RenderableType] = [
        Text.assemble(
            (patch.slug or str(patch.id), "bold"),
            f"  v{patch.version} · {patch.severity.value} · {patch.source.value}",
            "" if patch.active else " · INACTIVE",
        ),
        Text(patch.description),
        Syntax(
            patch.patch_code, lexer, line_numbers=True, background_color="default", word_wrap=True
        ),
    ]
    if patch.rollback_code.strip():
        parts += [
            Text("rollback:"),
            Syntax(
                patch.rollback_code,
                lexer,
                line_numbers=True,
                background_color="default",
                word_wrap=True,
            ),
        ]
    return Group(*parts)


class PatchesScreen(BaseScreen):
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back", id="patches.back"),
        Binding("slash", "filter", "Filter", id="patches.filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.patches: list[Patch] = []
        self.needle = ""

    def compose(self) -> ComposeResult:
        yield Static("Patch registry · loading…", id="run-header", markup=False)
        with Vertical(id="patches-body"):
            with Vertical(classes="pane", id="patch-list-pane"):
                yield NavTable(COLUMNS, id="patch-list")
            with VerticalScroll(classes="pane scroll-body", id="patch-code"):
                yield Static("", id="patch-view")
        yield Input(placeholder="filter: words to find, esc clears", id="runs-filter")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#runs-filter", Input).display = False
        self.query_one("#patch-list-pane").border_title = "Patches"
        self.query_one("#patch-code").border_title = "Code"
        self.query_one("#patch-list", NavTable).focus()
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="patches")
    def load(self) -> None:
        simulator, principal = self.session.open()
        try:
            patches = simulator.list_patches(principal, include_inactive=True)
        except (SimError, psycopg.Error) as exc:
            self.post_message(LoadFailed("patches", str(exc)))
            return
        self.post_message(PatchesLoaded(patches))

    def on_load_failed(self, message: LoadFailed) -> None:
        self.query_one("#run-header", Static).update(f"Patch registry: {message.error}")

    def on_patches_loaded(self, message: PatchesLoaded) -> None:
        self.patches = message.patches
        self._show()

    def _matches(self, patch: Patch) -> bool:
        hay = " ".join(
            (
                patch.slug or "",
                patch.sdk_language.value,
                patch.error_signature,
                patch.source.value,
                patch.description,
            )
        ).lower()
        return all(part in hay for part in self.needle.lower().split())

    def _show(self) -> None:
        shown = [p for p in self.patches if self._matches(p)]
        count = len(shown)
        rows = [
            Row(
                str(p.id),
                (
                    Ordered(fmt.patch_name(p.slug, p.error_signature), float(count - i)),
                    p.sdk_language.value,
                    p.error_signature,
                    p.severity.value,
                    p.source.value,
                    "active" if p.active else "inactive",
                ),
                float(count - i),
            )
            for i, p in enumerate(shown)
        ]
        table = self.query_one("#patch-list", NavTable)
        table.sync(rows)
        title = f"Patch registry · {len(self.patches)} patches"
        if self.needle:
            title += f" · {count} matching {self.needle!r}"
        self.query_one("#run-header", Static).update(title)
        self._show_code(table.selected_key)

    def _show_code(self, key: str | None) -> None:
        view = self.query_one("#patch-view", Static)
        for patch in self.patches:
            if str(patch.id) == key:
                view.update(render_patch(patch))
                return
        view.update("")

    @on(DataTable.RowHighlighted, "#patch-list")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_code(event.row_key.value)

    @on(DataTable.RowSelected, "#patch-list")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.query_one("#patch-code").focus()

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#runs-filter")
    def _filter(self, event: Input.Changed) -> None:
        self.needle = event.value.strip()
        self._show()

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        self.query_one("#patch-list", NavTable).focus()

    def action_back(self) -> None:
        box = self.query_one("#runs-filter", Input)
        if box.display:
            box.value = ""
            box.display = False
            self.query_one("#patch-list", NavTable).focus()
            return
        self.app.pop_screen()
