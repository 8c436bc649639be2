"""The command palette (``:`` or ctrl+p): screens, actions, and the recent runs by name.

Write actions are offered only to a role that may do them, as in the footer.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from simtui import keys
from simtui.format import short_id

if TYPE_CHECKING:
    from simtui.app import SimTUI

Command = tuple[str, str, Callable[[], object]]


class SimtuiCommands(Provider):
    @property
    def tui(self) -> SimTUI:
        return cast("SimTUI", self.app)

    def _commands(self) -> list[Command]:
        app = self.tui
        principal = app.session.principal
        commands: list[Command] = [
            ("Home", "the dashboard (esc from anywhere)", app.action_home),
            ("Patch registry", "patches by language and error, with their code", app.open_patches),
            ("Journal", "the audit journal, and whether its hash chain verifies", app.open_journal),
            ("Help", "keys and panes", app.action_help),
            ("Refresh", "read the dashboard again now", app.action_refresh),
        ]
        if keys.allowed(principal, "new_simulation"):
            commands.append(
                (
                    "New simulation",
                    "from a template, with a patch and a seed",
                    app.open_new_simulation,
                )
            )
        if keys.allowed(principal, "demo"):
            commands.append(
                (
                    "Launch demo runs",
                    "the runbook's three templates in python and node, plus one bad patch",
                    app.action_demo,
                )
            )
        snapshot = app.home.snapshot
        for run in snapshot.recent_runs if snapshot else ():
            commands.append(
                (
                    f"Open run {short_id(run.id)} {run.simulation_name}",
                    f"{run.status.value} · {run.sdk_language} · seed {run.seed}",
                    partial(app.open_run, str(run.id)),
                )
            )
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            if not name.startswith("Open run"):
                yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> AsyncGenerator[Hit, None]:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
