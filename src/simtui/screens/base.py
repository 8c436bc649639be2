"""What every full screen shares: write keys guarded by role, and the actions on a run.

Approve, reject, re-run and cancel are the same whether they are pressed on the home screen
(on the selected run or approval) or in a run's detail, so they live here once; so do the
rollout's stage, promote and roll back. Each write runs in a thread worker and reports back
with ``ActionDone`` / ``ActionFailed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import work
from textual.notifications import SeverityLevel
from textual.screen import Screen

from simcore import rollout
from simcore.enums import ApprovalStatus
from simcore.errors import Conflict, SimError
from simcore.rollout import MAX_REASON, RolloutAction
from simtui import keys, rollouts
from simtui.format import short_id
from simtui.messages import ActionDone, ActionFailed, LogsArrived, RunChanged
from simtui.rollouts import VERB, Canary
from simtui.screens.confirm import ConfirmScreen
from simtui.screens.note import NoteScreen
from simtui.session import Session, database_error

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
        except (SimError, database_error()) as exc:
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
        except (SimError, database_error()) as exc:
            self.post_message(ActionFailed(str(exc)))
            return
        state = "cancelled" if run.status.terminal else "cancel requested (the sandbox is killed)"
        self.post_message(ActionDone(f"run {short_id(run_id)}: {state}", run.id))

    @work(thread=True, exit_on_error=False, group="write")
    def rerun(self, run_id: str) -> None:
        simulator, principal = self.session.open()
        try:
            launch = simulator.rerun(principal, run_id)
        except (SimError, database_error()) as exc:
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

    # -- the rollout after approval -------------------------------------------------------------

    def _rollout(self, action: RolloutAction) -> None:
        """Take ``action`` on the run this screen points at (a screen with rollout keys
        says which run that is, then calls ``start_rollout``)."""
        self.say(f"{VERB[action]}: open the run or the approval queue first", severity="warning")

    def action_stage(self) -> None:
        self._rollout(RolloutAction.STAGE)

    def action_promote(self) -> None:
        self._rollout(RolloutAction.PROMOTE)

    def action_rollback(self) -> None:
        self._rollout(RolloutAction.ROLLBACK)

    def start_rollout(
        self,
        run_id: str,
        status: ApprovalStatus | None,
        action: RolloutAction,
        what: str,
        canary: Canary | None = None,
    ) -> None:
        """Ask for confirmation (and a reason) before a rollout step, if the step is legal.

        ``status`` is the approval's state as shown; None: the run has no approval. A step
        the state machine refuses is said at once, in the engine's own words (its
        ``check``), rather than after a dialog; the engine checks again when it commits, so
        a state that moved meanwhile is refused then, also in its words.
        """
        short = short_id(run_id)
        if status is None:
            self.say(
                f"run {short} has no approval request (only a successful patched run has)",
                severity="warning",
            )
            return
        try:
            rollout.check(status, action, f"the patch of run {short}")
        except Conflict as exc:
            self.say(str(exc), severity="warning")
            return
        required = action is RolloutAction.ROLLBACK
        default = rollouts.default_reason(action, canary)
        lines = [what, self._step_text(status, action, canary)]
        if canary is not None:
            lines.append(f"canary: {canary.label} ({canary.reason})")
        if not required:
            lines.append(f"an empty reason is journaled as: {default}")

        def answered(note: str | None) -> None:
            if note is not None:
                self.rollout_step(run_id, action, note or default)

        self.app.push_screen(
            NoteScreen(
                f"{VERB[action].capitalize()} the patch of run {short}?",
                "\n".join(lines),
                required=required,
                confirm=VERB[action],
                field="reason",
                # The engine's words for an empty reason (simcore.rollout).
                required_message="say why (it goes to the journal)",
                placeholder="reason (required)" if required else "reason (optional)",
                max_length=MAX_REASON,
            ),
            answered,
        )

    def _step_text(
        self, status: ApprovalStatus, action: RolloutAction, canary: Canary | None
    ) -> str:
        settings = self.session.settings
        if action is RolloutAction.STAGE:
            first = f"{settings.rollout_steps[0]}%" if settings else "the plan's first step"
            return f"{status.value} → staged at {first}; the rollout hook runs"
        if action is RolloutAction.PROMOTE:
            after = canary.next_percentage if canary is not None else None
            to = f"{after}%" if after is not None else "the next step of its plan"
            return f"{status.value} → {to} (100% is deployed); the rollout hook runs"
        return f"{status.value} → rolled back at 0%; the rollout hook runs"

    @work(thread=True, exit_on_error=False, group="write")
    def rollout_step(self, run_id: str, action: RolloutAction, reason: str) -> None:
        simulator, principal = self.session.open()
        try:
            result = rollouts.transition(simulator, principal, run_id, action, reason)
        except (SimError, database_error()) as exc:
            # An illegal step, a failed hook (the state stays), a lost connection: all said.
            self.post_message(ActionFailed(str(exc), getattr(exc, "field", None)))
            return
        self.post_message(ActionDone(rollouts.describe(result), result.rollout.run_id))

    def on_action_failed(self, message: ActionFailed) -> None:
        message.stop()
        self.say(message.text, severity="error", timeout=8)
