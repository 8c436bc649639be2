"""Asks for the note that goes with a decision: an approval, a rejection, a rollout step.

When the note is required (a rejection, a rollback), the engine refuses an empty one, and
so does this dialog, before anything is sent, with the same field and reason.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from simcore.approvals import MAX_NOTES

NOTE_REQUIRED = "a rejection needs a note saying why"


class NoteScreen(ModalScreen[str | None]):
    """Dismissed with the note (``""`` when optional and left empty), or None if cancelled."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="note.cancel"),
    ]

    def __init__(
        self,
        title: str,
        detail: str,
        *,
        required: bool,
        confirm: str,
        field: str = "approval_notes",
        required_message: str = NOTE_REQUIRED,
        placeholder: str | None = None,
        max_length: int = MAX_NOTES,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.detail = detail
        self.required = required
        self.confirm = confirm
        self.field = field
        """The engine's name for what is typed, so that both say the same on an empty one."""
        self.required_message = required_message
        self.placeholder = placeholder or ("note (required)" if required else "note (optional)")
        self.max_length = max_length

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.title_text, id="dialog-title", markup=False)
            yield Static(self.detail, id="dialog-detail", markup=False)
            yield Input(placeholder=self.placeholder, max_length=self.max_length, id="note-input")
            yield Static("", id="note-error", classes="field-error", markup=False)
            yield Static(f"enter: {self.confirm}    esc: cancel", id="dialog-keys")

    def on_mount(self) -> None:
        self.query_one("#note-input", Input).focus()

    @on(Input.Submitted, "#note-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        note = event.value.strip()
        if self.required and not note:
            self.query_one("#note-error", Static).update(f"{self.field}: {self.required_message}")
            return
        self.dismiss(note)

    def action_cancel(self) -> None:
        self.dismiss(None)
