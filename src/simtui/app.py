"""The simtui application: a keyboard-first dashboard over the simulator engine."""

from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding

from simcore.errors import SimError
from simtui import terminal_guard
from simtui.launch import KEYMAP_ENV, main, parse_keymap, prepare
from simtui.session import Session

# Only what defining the app needs is imported here: the screens and the engine under them
# are imported by the first screen, while the session opens in the background.
if TYPE_CHECKING:
    from textual.command import Provider
    from textual.screen import Screen

    from simcore.events import Event
    from simtui.messages import HomeReady, LiveState, LogsArrived, RunChanged
    from simtui.screens.home import HomeScreen


__all__ = ["KEYMAP_ENV", "SimTUI", "main", "parse_keymap", "prepare"]
"""The command's entry points live in simtui.launch (which does not import Textual)."""

GC_PAUSE_LIMIT_SECONDS = 10.0
"""The garbage collector resumes then if the first full home screen has not come yet."""


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

    def __init__(self, session: Session, *, demo: bool = False, gc_paused: bool = False) -> None:
        terminal_guard.install()  # before any text is made: names and notes are drawn raw
        super().__init__()
        self.session = session
        self.demo = demo
        self._gc_paused = gc_paused
        """prepare() paused the garbage collector; it resumes with the first full screen."""
        self._demo_launched = False
        self._home: HomeScreen | None = None
        # Going live (LISTEN, the in-process worker, the demo) waits for both the session to
        # open and the first full home screen to be painted; whichever comes second starts it.
        self._live_lock = threading.Lock()
        self._session_opened = False
        self._home_painted = False
        session.on_event = self._on_db_event
        session.on_connection = self._on_connection

    def get_default_screen(self) -> Screen[None]:
        home = self.home
        # The breakpoint classes that the screen's first Resize gives it, given before it is
        # styled: given then, they would style every widget on it a second time. Without an
        # update: the screen is styled when it is registered, right after this.
        for size, own, default in (
            (self.size.width, home.HORIZONTAL_BREAKPOINTS, self.HORIZONTAL_BREAKPOINTS),
            (self.size.height, home.VERTICAL_BREAKPOINTS, self.VERTICAL_BREAKPOINTS),
        ):
            for low, name in sorted((default if own is None else own) or [], reverse=True):
                if size >= low:
                    home.add_class(name, update=False)
                    break
        return home

    @property
    def home(self) -> HomeScreen:
        # Kept here rather than read from the screen stack: session threads post to it,
        # and the stack is empty while the app shuts down.
        if self._home is None:
            from simtui.screens.home import HomeScreen

            self._home = HomeScreen()
        return self._home

    # -- engine events (called from the session's threads) ----------------------------------

    def _on_db_event(self, event: Event) -> None:
        from simcore.events import LOGS_CHANNEL, RUNS_CHANNEL
        from simtui.messages import LogsArrived, RunChanged

        run_id = event.payload.get("id") or event.payload.get("run_id")
        if event.channel == RUNS_CHANNEL:
            status = event.payload.get("status")
            self.post_message(RunChanged(str(run_id) if run_id else None, status))
        elif event.channel == LOGS_CHANNEL and run_id:
            self.post_message(LogsArrived(str(run_id)))

    def _on_connection(self, connected: bool) -> None:
        from simtui.messages import LiveState

        self.post_message(LiveState(connected))

    def after_open(self) -> None:
        """From the home screen's thread worker, once the session first opened.

        Going live starts a LISTEN thread and the in-process worker (threads, a connection
        each, a sandbox probe): done while the first screen is still being drawn, it takes
        the processor from it. So it waits for the first full home screen.
        """
        with self._live_lock:
            self._session_opened = True
            now = self._home_painted
        if now:
            self._go_live()

    def on_mount(self) -> None:
        if self._gc_paused:
            # Should the first screen never come (a database that does not answer), the
            # collector does not stay off for the session.
            self.set_timer(GC_PAUSE_LIMIT_SECONDS, self._resume_gc)

    def on_home_ready(self, message: HomeReady) -> None:
        with self._live_lock:
            first, self._home_painted = not self._home_painted, True
            now = first and self._session_opened
        if now:
            self._go_live_soon()
        self._resume_gc()

    def _resume_gc(self) -> None:
        if not self._gc_paused:
            return
        self._gc_paused = False
        # What start-up left is collected once, and what survives (modules, classes, the
        # screen) is kept out of every later collection: an idle dashboard collects less.
        gc.collect()
        gc.freeze()
        gc.enable()

    @work(thread=True, exit_on_error=False, group="live")
    def _go_live_soon(self) -> None:
        self._go_live()

    def _go_live(self) -> None:
        """From a thread: LISTEN, run the queue if no worker does, launch the demo runs."""
        self.session.start_live()
        self.start_worker()
        if self.demo and not self._demo_launched:
            self._demo_launched = True
            self._launch_demo()

    def start_worker(self) -> None:
        """From a thread: run the queue in this process if no worker is alive."""
        import psycopg

        from simtui.messages import ActionFailed, WorkersChanged

        try:
            if self.session.ensure_worker():
                self.home.post_message(WorkersChanged())
        except (SimError, psycopg.Error) as exc:
            self.home.post_message(ActionFailed(f"no in-process worker: {exc}"))

    def on_run_changed(self, message: RunChanged) -> None:
        from simtui.screens.base import BaseScreen

        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.db_changed(message)

    def on_logs_arrived(self, message: LogsArrived) -> None:
        from simtui.screens.base import BaseScreen

        for screen in self.screen_stack:
            if isinstance(screen, BaseScreen):
                screen.db_changed(message)

    def on_live_state(self, message: LiveState) -> None:
        from simtui.screens.base import BaseScreen

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
        from simtui import keys

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
        from simtui import keys

        if not keys.allowed(self.session.principal, "demo"):
            self.notify(
                keys.refusal(self.session.principal, "demo"), severity="warning", markup=False
            )
            return
        self._launch_demo()

    @work(thread=True, exit_on_error=False, group="demo")
    def _launch_demo(self) -> None:
        import psycopg

        from simtui.demo import DEMO_PRINCIPAL, launch_demo
        from simtui.messages import ActionDone, ActionFailed

        simulator, principal = self.session.open()
        actor = DEMO_PRINCIPAL if self.session.local else principal
        try:
            runs = launch_demo(simulator, actor)
        except (SimError, psycopg.Error) as exc:
            self.home.post_message(ActionFailed(f"demo: {exc}"))
            return
        self.home.post_message(ActionDone(f"demo: {len(runs)} runs launched as {actor.actor}"))


if __name__ == "__main__":
    main()
