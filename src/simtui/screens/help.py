"""Help (``?``): the Markdown guide, then the keys of the screen it was opened from.

The key table is built from the live bindings, so it cannot drift from what the keys do,
and it lists only what this session may do.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING, ClassVar, cast

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Markdown, Static

from simcore.auth import Principal
from simtui import keys
from simtui.widgets.footer import KeysFooter

if TYPE_CHECKING:
    from simtui.app import SimTUI

EXTRA_KEYS = (
    ("tab / shift+tab", "next / previous pane"),
    ("j / k, ↓ / ↑", "move in a table or a log"),
    ("g / G", "top / bottom"),
    ("ctrl+p or :", "command palette"),
)


def _works_hidden(binding_id: str, principal: Principal | None) -> bool:
    """A rollout key's twin is enabled where the footer hides the key, and still does it
    for a role that may (see HomeScreen.check_action): help lists it then."""
    action = binding_id.removesuffix(".refused")
    return action in keys.ROLLOUT_ACTIONS and keys.allowed(principal, action)


class HelpScreen(Screen[None]):
    BINDINGS: ClassVar = [
        Binding("escape", "app.pop_screen", "Back", id="help.back"),
        Binding("j", "scroll('down')", "Down", show=False, id="help.down"),
        Binding("k", "scroll('up')", "Up", show=False, id="help.up"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__(id="help")
        self.under = under

    def _keys(self) -> Table:
        rows: list[tuple[str, str]] = []
        seen: set[str] = set()
        principal = cast("SimTUI", self.app).session.principal
        for active in self.under.active_bindings.values():
            binding = active.binding
            # Ours carry an id; the widgets' own (cursor keys...) are summed up below.
            if not binding.id or not active.enabled:
                continue
            if binding.action.startswith("refuse") and not _works_hidden(binding.id, principal):
                continue
            name = self.app.get_key_display(binding)
            if name not in seen:
                seen.add(name)
                rows.append((name, binding.description))
        rows.extend(EXTRA_KEYS)
        title = type(self.under).__name__.removesuffix("Screen") or "Screen"
        table = Table(
            title=f"Keys here ({title})",
            title_justify="left",
            box=None,
            show_header=False,
            pad_edge=False,
        )
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for key, description in rows:
            table.add_row(key, description)
        return table

    def compose(self) -> ComposeResult:
        guide = files("simtui").joinpath("help.md").read_text(encoding="utf-8")
        with VerticalScroll(id="help-body"):
            yield Static(self._keys(), id="help-keys")
            yield Markdown(guide)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#help-body").focus()

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#help-body", VerticalScroll)
        if direction == "down":
            body.scroll_down()
        else:
            body.scroll_up()
