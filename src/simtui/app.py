"""The simtui application: a keyboard-first dashboard over the simulator engine."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import psycopg
from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from simcore.errors import ConfigError, SimError
from simcore.events import LOGS_CHANNEL, RUNS_CHANNEL, Event
from simcore.model import Role
from simtui import keys
from simtui.messages import (
    ActionDone,
    ActionFailed,
    LiveState,
    LogsArrived,
    RunChanged,
    WorkersChanged,
)
from simtui.screens.base import BaseScreen
from simtui.screens.home import HomeScreen
from simtui.session import Session

if TYPE_CHECKING:
    from textual.command import Provider


def _commands() -> type[Provider]:
    # Imported when the palette first opens: textual.command is not needed to draw the
    # first screen, and start-up time is what an on-call engineer waits through.
    from simtui.commands import SimtuiCommands

    return SimtuiCommands


class SimTUI(App[None]):
    """Self-healing patch simulator dashboard."""

    TITLE = "simtui"
    SUB_TITLE = "self-healing patch simulator"
    # Absolute, so that a subclass defined elsewhere (a benchmark, a test) finds it too.
    CSS_PATH = Path(__file__).parent / "simtui.tcss"
    COMMANDS = App.COMMANDS | {_commands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS: ClassVar = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("colon", "command_palette", "Commands", show=False, id="commands"),
    ]

    def __init__(self, session: Session, *, demo: bool = False) -> None:
        super().__init__()
        self.session = session
        self.demo = demo
        self._demo_launched = False
        self._home: HomeScreen | None = None
        session.on_event = self._on_db_event
        session.on_connection = self._on_connection

    def get_default_screen(self) -> Screen[None]:
        return self.home

    @property
    def home(self) -> HomeScreen:
        # Kept here rather than read from the screen stack: session threads post to it,
        # and the stack is empty while the app shuts down.
        if self._home is None:
            self._home = HomeScreen()
        return self._home

    # -- engine events (called from the session's threads) ----------------------------------

    def _on_db_event(self, event: Event) -> None:
        run_id = event.payload.get("id") or event.payload.get("run_id")
        if event.channel == RUNS_CHANNEL:
            status = event.payload.get("status")
            self.post_message(RunChanged(str(run_id) if run_id else None, status))
        elif event.channel == LOGS_CHANNEL and run_id:
            self.post_message(LogsArrived(str(run_id)))

    def _on_connection(self, connected: bool) -> None:
        self.post_message(LiveState(connected))

    def after_open(self) -> None:
        """From the home screen's thread worker, once the session first opened."""
        self.session.start_live()
        self.start_worker()
        if self.demo and not self._demo_launched:
            self._demo_launched = True
            self._launch_demo()

    def start_worker(self) -> None:
        """From a thread: run the queue in this process if no worker is alive."""
        try:
            if self.session.ensure_worker():
                self.home.post_message(WorkersChanged())
        except (SimError, psycopg.Error) as exc:
            self.home.post_message(ActionFailed(f"no in-process worker: {exc}"))

    def on_run_changed(self, message: RunChanged) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.db_changed(message)

    def on_logs_arrived(self, message: LogsArrived) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.db_changed(message)

    def on_live_state(self, message: LiveState) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.live_changed(message.connected)

    # -- navigation ---------------------------------------------------------------------------

    def open_run(self, run_id: str, *, replace: bool = False) -> None:
        from simtui.screens.run_detail import RunDetailScreen

        if replace and isinstance(self.screen, RunDetailScreen):
            self.switch_screen(RunDetailScreen(run_id))
        else:
            self.push_screen(RunDetailScreen(run_id))

    def open_new_simulation(self) -> None:
        if not keys.allowed(self.session.principal, "new_simulation"):
            self.notify(
                keys.refusal(self.session.principal, "new_simulation"),
                severity="warning",
                markup=False,
            )
            return
        from simtui.screens.new_simulation import NewSimulationScreen

        self.push_screen(NewSimulationScreen())

    def open_patches(self) -> None:
        from simtui.screens.patches import PatchesScreen

        self.push_screen(PatchesScreen())

    def open_journal(self) -> None:
        from simtui.screens.journal import JournalScreen

        self.push_screen(JournalScreen())

    def action_home(self) -> None:
        while len(self.screen_stack) > 1:
            self.pop_screen()

    def action_help(self) -> None:
        from simtui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_refresh(self) -> None:
        self.home.request_refresh(0)

    # -- demo ---------------------------------------------------------------------------------

    def action_demo(self) -> None:
        if not keys.allowed(self.session.principal, "demo"):
            self.notify(
                keys.refusal(self.session.principal, "demo"), severity="warning", markup=False
            )
            return
        self._launch_demo()

    @work(thread=True, exit_on_error=False, group="demo")
    def _launch_demo(self) -> None:
        from simtui.demo import DEMO_PRINCIPAL, launch_demo

        simulator, principal = self.session.open()
        actor = DEMO_PRINCIPAL if self.session.local else principal
        try:
            runs = launch_demo(simulator, actor)
        except (SimError, psycopg.Error) as exc:
            self.home.post_message(ActionFailed(f"demo: {exc}"))
            return
        self.home.post_message(ActionDone(f"demo: {len(runs)} runs launched as {actor.actor}"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simtui",
        description="Terminal dashboard of the self-healing patch simulator. Local mode on "
        "the database (SIMTUI_DATABASE_URL, else the embedded one); API mode when "
        "SIMTUI_API_URL and SIMTUI_TOKEN are set.",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="launch demo runs: the runbook's three templates in python and node, and one "
        "bad patch",
    )
    parser.add_argument(
        "--role",
        choices=[r.value for r in Role],
        help="local mode only: act with this role (auditor: read-only)",
    )
    return parser


KEYMAP_ENV = "SIMTUI_KEYMAP"


def parse_keymap(text: str) -> dict[str, str]:
    """``approve=A,reject=X`` (binding ids, as listed in help) into a Textual keymap."""
    keymap: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        binding_id, sep, keys_ = item.partition("=")
        if not sep or not binding_id.strip() or not keys_.strip():
            raise ConfigError(f"{KEYMAP_ENV}: expected id=key[,id=key...], not {item!r}")
        keymap[binding_id.strip()] = keys_.strip()
        # A write key's twin, which tells a read-only session so, moves with it.
        keymap[f"{binding_id.strip()}.refused"] = keys_.strip()
    return keymap


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        from simcore.config import load_settings

        settings = load_settings()
        keymap = parse_keymap(os.environ.get(KEYMAP_ENV, ""))
        session = Session.from_settings(settings, role=Role(args.role) if args.role else None)
    except SimError as exc:
        print(f"simtui: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    session.prefetch()
    app = SimTUI(session, demo=args.demo)
    if keymap:
        app.set_keymap(keymap)
    try:
        app.run()
    finally:
        session.close()
    sys.exit(app.return_code or 0)


if __name__ == "__main__":
    main()
