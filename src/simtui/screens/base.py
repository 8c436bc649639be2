"""What every full screen shares: write keys guarded by role, and the actions on a run.

Approve, reject, re-run and cancel are the same whether they are pressed on the home screen
(on the selected run or approval) or in a run's detail, so they live here once. Each write
runs in a thread worker and reports back with ``ActionDone`` / ``ActionFailed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import psycopg
from textual import work
from textual.notifications import SeverityLevel
from textual.screen import Screen

from simcore.errors import SimError
from simtui import keys
from simtui.format import short_id
from simtui.messages import ActionDone, ActionFailed, LogsArrived, RunChanged
from simtui.screens.confirm import ConfirmScreen
from simtui.screens.note import NoteScreen
from simtui.session import Session

if TYPE_CHECKING:
    from simtui.app import SimTUI


class BaseScreen(Screen[None]):
    @property
    def tui(self) -> SimTUI:
        return cast("SimTUI", self.app)

    @property
    def session(self) -> Session:
        return self.tui.session

    # -- role guard -------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        principal = self.session.principal
        if action == "refuse":
            return not keys.allowed(principal, str(parameters[0]))
        return keys.allowed(principal, action)

    def say(
        self, text: str, *, severity: SeverityLevel = "information", timeout: float = 5
    ) -> None:
        """A notification; never markup, since the text names runs, patches and errors."""
        self.notify(text, severity=severity, timeout=timeout, markup=False)

    def action_refuse(self, action: str) -> None:
        self.say(keys.refusal(self.session.principal, action), severity="warning")

    # -- live updates (called by the app) ----------------------------------------------------

    def db_changed(self, message: RunChanged | LogsArrived) -> None:
        """A run or a log changed in the database."""

    def live_changed(self, connected: bool) -> None:
        """The LISTEN connection went up or down."""

    # -- actions on a run ---------------------------------------------------------------------

    def ask_approve(self, run_id: str, what: str) -> None:
        def decided(note: str | None) -> None:
            if note is not None:
                self.decide(run_id, True, note or None)

        self.app.push_screen(
            NoteScreen(
                f"Approve the patch of run {short_id(run_id)}?",
                what,
                required=False,
                confirm="approve",
            ),
            decided,
        )

    def ask_reject(self, run_id: str, what: str) -> None:
        def decided(note: str | None) -> None:
            if note is not None:
                self.decide(run_id, False, note)

        self.app.push_screen(
            NoteScreen(
                f"Reject the patch of run {short_id(run_id)}?",
                what,
                required=True,
                confirm="reject",
            ),
            decided,
        )

    @work(thread=True, exit_on_error=False, group="write")
    def decide(self, run_id: str, approve: bool, note: str | None) -> None:
        simulator, principal = self.session.open()
        try:
            if approve:
                approval = simulator.approve_patch(principal, run_id, note)
            else:
                approval = simulator.reject_patch(principal, run_id, note)
        except (SimError, psycopg.Error) as exc:
            self.post_message(ActionFailed(str(exc), getattr(exc, "field", None)))
            return
        verb = "approved" if approve else "rejected"
        slug = approval.patch_slug or short_id(approval.patch_id)
        self.post_message(
            ActionDone(f"{verb}: patch {slug} (run {short_id(run_id)})", approval.simulation_run_id)
        )

    def ask_cancel(self, run_id: str, what: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.cancel(run_id)

        self.app.push_screen(ConfirmScreen(f"Cancel run {short_id(run_id)}?", what), answered)

    @work(thread=True, exit_on_error=False, group="write")
    def cancel(self, run_id: str) -> None:
        simulator, principal = self.session.open()
        try:
            run = simulator.cancel_run(principal, run_id)
        except (SimError, psycopg.Error) as exc:
            self.post_message(ActionFailed(str(exc)))
            return
        state = "cancelled" if run.status.terminal else "cancel requested (the sandbox is killed)"
        self.post_message(ActionDone(f"run {short_id(run_id)}: {state}", run.id))

    @work(thread=True, exit_on_error=False, group="write")
    def rerun(self, run_id: str) -> None:
        simulator, principal = self.session.open()
        try:
            launch = simulator.rerun(principal, run_id)
        except (SimError, psycopg.Error) as exc:
            self.post_message(ActionFailed(str(exc)))
            return
        self.post_message(
            ActionDone(
                f"re-run of {short_id(run_id)} queued as {short_id(launch.run.id)} "
                f"(seed {launch.run.seed})",
                launch.run.id,
                open_run=True,
            )
        )

    def on_action_failed(self, message: ActionFailed) -> None:
        message.stop()
        self.say(message.text, severity="error", timeout=8)
