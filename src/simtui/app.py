"""The simtui application: keyboard-first dashboard over the simulator engine."""

from __future__ import annotations

import sys

from textual.app import App
from textual.binding import Binding

from simcore.config import Settings, load_settings
from simcore.errors import SimError
from simtui.screens.home import HomeScreen


class SimTUI(App[None]):
    """Self-healing patch simulator dashboard."""

    TITLE = "simtui"
    SUB_TITLE = "self-healing patch simulator"
    CSS_PATH = "simtui.tcss"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def on_mount(self) -> None:
        self.push_screen(HomeScreen(self.settings))


def main() -> None:
    try:
        settings = load_settings()
    except SimError as exc:
        print(f"simtui: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    SimTUI(settings).run()


if __name__ == "__main__":
    main()
