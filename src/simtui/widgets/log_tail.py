"""A run's log, live: bounded, followable, filterable.

The view keeps at most ``MAX_LINES`` lines (k9s caps its log buffer for the same reason: an
unbounded one grows without end on a chatty run and slows every redraw). ``f`` toggles
following the end; ``/`` filters the lines shown to those containing the text typed
(case aside).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Log, Static

MAX_LINES = 5000


class LogView(Log):
    BINDINGS = [
        Binding("j", "scroll_down", "Down", show=False, id="log.down"),
        Binding("k", "scroll_up", "Up", show=False, id="log.up"),
        Binding("g", "scroll_home", "Top", show=False, id="log.top"),
        Binding("G", "scroll_end", "Bottom", show=False, id="log.bottom"),
    ]


class LogTail(Vertical):
    BINDINGS = [
        Binding("escape", "close_search", "Clear filter", id="log.clear-filter"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.buffer: deque[str] = deque(maxlen=MAX_LINES)
        self.follow = True
        self.needle = ""
        self.received = 0
        self.skipped = 0
        """Lines before the first one read (only the tail of a long log is fetched)."""
        self.truncated = False

    def compose(self) -> ComposeResult:
        yield LogView(id="log-view", max_lines=MAX_LINES, highlight=False)
        yield Input(placeholder="filter: text to find, esc clears", id="log-search")
        yield Static("", id="log-status", markup=False)

    def on_mount(self) -> None:
        self.query_one("#log-search", Input).display = False
        self._status()

    @property
    def view(self) -> LogView:
        return self.query_one("#log-view", LogView)

    def _matches(self, line: str) -> bool:
        return not self.needle or self.needle.lower() in line.lower()

    def append(self, lines: Iterable[str]) -> None:
        batch = list(lines)
        self.received += len(batch)
        self.buffer.extend(batch)
        shown = [line for line in batch if self._matches(line)]
        if shown:
            view = self.view
            view.write_lines(shown, scroll_end=False)
            if self.follow:
                # Following means the end, whatever the scroll position says: Log's own
                # scroll_end only scrolls if it is already at the end, and lines written
                # before the first layout left it at the top (the end was then row 0).
                # Not immediate: scrolled once the new size is laid out.
                view.scroll_end(animate=False, x_axis=False)
        self._status()

    def set_follow(self, follow: bool) -> None:
        self.follow = follow
        self.view.auto_scroll = follow
        if follow:
            self.view.scroll_end(animate=False)
        self._status()

    def set_filter(self, needle: str) -> None:
        if needle == self.needle:
            return
        self.needle = needle
        view = self.view
        view.clear()
        view.write_lines([line for line in self.buffer if self._matches(line)], scroll_end=True)
        self._status()

    def open_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.display = True
        search.value = self.needle
        search.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close_search":
            # Only while filtering: otherwise escape goes on to the screen (back).
            return bool(self.needle) or self.query_one("#log-search", Input).has_focus
        return True

    def action_close_search(self) -> None:
        search = self.query_one("#log-search", Input)
        search.value = ""
        search.display = False
        self.set_filter("")
        self.view.focus()

    @on(Input.Changed, "#log-search")
    def _search_changed(self, event: Input.Changed) -> None:
        self.set_filter(event.value.strip())

    @on(Input.Submitted, "#log-search")
    def _search_done(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.needle:
            event.input.display = False
        self.view.focus()

    def _status(self) -> None:
        parts = ["following" if self.follow else "paused (f follows)"]
        held = len(self.buffer)
        if self.needle:
            shown = sum(1 for line in self.buffer if self._matches(line))
            parts.append(f"filter {self.needle!r}: {shown}/{held} lines")
        else:
            parts.append(f"{held} lines")
        earlier = self.skipped + max(self.received - held, 0)
        if earlier:
            parts.append(f"{earlier} earlier lines not kept (last {MAX_LINES} shown)")
        if self.truncated:
            parts.append("log capped by the worker")
        self.query_one("#log-status", Static).update(" · ".join(parts), layout=False)
