"""The footer of every screen: Textual's compact ``Footer``, rebuilt only when its keys change.

Textual's footer recomposes (removes and mounts all its keys again, each styled twice) on
every "bindings updated" signal: each focus change, each dialog that closes, each
``refresh_bindings``. Most of those leave the keys shown as they were; this one keeps them
then. It looks the same: the same keys, composed by ``Footer.compose``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen


class KeysFooter(Footer):
    def __init__(self, *, compact: bool = True) -> None:
        super().__init__(compact=compact)
        self._composed: Hashable | None = None
        """What the keys shown were composed from; None before the first keys."""
        self._recompose_due = False
        """A recompose is scheduled (after the next refresh) and has not run yet."""

    def _keys(self, screen: Screen[object]) -> Hashable:
        """Everything ``Footer.compose`` reads to draw the keys."""
        app = self.app
        shown = tuple(
            (binding, enabled, tooltip, app.get_key_display(binding))
            for _node, binding, enabled, tooltip in screen.active_bindings.values()
            if binding.show
        )
        palette = None
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            found = screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, tooltip = found
                palette = (binding, enabled, tooltip, app.get_key_display(binding))
        return shown, palette, self.compact

    def compose(self) -> ComposeResult:
        self._recompose_due = False
        if self._bindings_ready:
            self._composed = self._keys(self.screen)
        for widget in super().compose():
            if self.compact and isinstance(widget, FooterKey):
                # What its compact watcher would add once mounted, restyling it a second time.
                widget.add_class("-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen[object]) -> None:
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            if self._recompose_due:
                return  # the recompose on its way composes the keys as they are by then
            if self._composed is not None and self._keys(screen) == self._composed:
                return  # the very keys already shown
            self._recompose_due = True
        super().bindings_changed(screen)
