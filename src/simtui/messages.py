"""Messages that carry results from thread workers and database events to the screens.

Workers never touch widgets: they post one of these, and the screen applies it on the event
loop. Messages that only matter in their latest form say so with ``can_replace``, so a burst
(a demo launching seven runs, a chatty log) collapses in the queue instead of piling up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from textual.message import Message

# Types only: the home screen imports these messages, and draws its first screen before the
# engine (and its database driver) is loaded.
if TYPE_CHECKING:
    from simcore.auth import Principal
    from simcore.journal import Entry, Verification
    from simcore.model import Patch
    from simcore.service import RunDetail
    from simcore.snapshot import DashboardSnapshot


class SessionOpened(Message):
    """The simulator answered: the role is known, so the write keys can be decided."""

    def __init__(self, principal: Principal) -> None:
        super().__init__()
        self.principal = principal


class WorkersChanged(Message):
    """The in-process worker started."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, WorkersChanged)


class LiveState(Message):
    """The LISTEN connection went up or down (down: the screens poll faster)."""

    def __init__(self, connected: bool) -> None:
        super().__init__()
        self.connected = connected

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LiveState)


class RunChanged(Message):
    """A run was queued or changed status (``simtui_runs``)."""

    def __init__(self, run_id: str | None, status: str | None) -> None:
        super().__init__()
        self.run_id = run_id
        self.status = status

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunChanged) and message.run_id == self.run_id


class LogsArrived(Message):
    """New log lines were stored for a run (``simtui_logs``)."""

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, LogsArrived) and message.run_id == self.run_id


class SnapshotReady(Message):
    def __init__(self, snapshot: DashboardSnapshot) -> None:
        super().__init__()
        self.snapshot = snapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SnapshotReady)


class SnapshotFailed(Message):
    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class HomeReady(Message):
    """The home screen shows its first complete snapshot (start-up is over)."""


class RunLoaded(Message):
    def __init__(self, detail: RunDetail, patch: Patch | None) -> None:
        super().__init__()
        self.detail = detail
        self.patch = patch

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunLoaded) and message.detail.run.id == self.detail.run.id


class LogBatch(Message):
    """Lines of a run's log after ``after_seq``; ``more`` when the page was full."""

    def __init__(self, run_id: UUID, lines: list[tuple[int, str]], more: bool) -> None:
        super().__init__()
        self.run_id = run_id
        self.lines = lines
        self.more = more


class LoadFailed(Message):
    def __init__(self, what: str, error: str) -> None:
        super().__init__()
        self.what = what
        self.error = error


class ActionDone(Message):
    """A write went through (approve, reject, cancel, re-run, launch, demo)."""

    def __init__(self, text: str, run_id: UUID | None = None, *, open_run: bool = False) -> None:
        super().__init__()
        self.text = text
        self.run_id = run_id
        self.open_run = open_run


class ActionFailed(Message):
    """A write was refused; ``field`` names the input at fault when there is one."""

    def __init__(self, text: str, field: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.field = field


class PatchesLoaded(Message):
    def __init__(self, patches: list[Patch], language: str | None = None) -> None:
        super().__init__()
        self.patches = patches
        self.language = language


class JournalLoaded(Message):
    def __init__(self, entries: list[Entry] | None, note: str = "") -> None:
        super().__init__()
        self.entries = entries
        self.note = note


class JournalVerified(Message):
    def __init__(self, verification: Verification) -> None:
        super().__init__()
        self.verification = verification
