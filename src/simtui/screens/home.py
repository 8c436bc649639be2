"""Home: the queue, success rates, recent runs, the approval queue, KPIs and alerts, live.

Refreshing: one snapshot read at a time, in a thread worker. A database event (LISTEN) asks
for a refresh soon; a one-shot timer, re-armed when each refresh ends, is the fallback
(slow while LISTEN is up, since then it only has to move ages and time windows along; fast
when updates must be polled). While another screen or a dialog is on top, nothing is read:
the screen is marked stale and catches up when it is shown again.

The approval queue also lists the patches in rollout (staged, deployed) with their canary:
those are read after each snapshot, in a worker of their own, so that they never delay it.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Input, Static
from textual.worker import Worker, WorkerState, get_current_worker

from simcore.approvals import Approval
from simcore.enums import ApprovalStatus, RunStatus
from simcore.errors import SimError
from simcore.rollout import RolloutAction
from simcore.snapshot import DashboardSnapshot, RecentRun
from simtui import format as fmt, keys
from simtui.keys import ROLLOUT_ACTIONS, rollout_bindings, write_binding
from simtui.messages import (
    ActionDone,
    HomeReady,
    LogsArrived,
    RunChanged,
    SessionOpened,
    SnapshotFailed,
    SnapshotReady,
    WorkersChanged,
)
from simtui.rollouts import Rollouts, read_rollouts
from simtui.screens.base import BaseScreen
from simtui.session import database_error
from simtui.widgets.charts import QueueChart, SuccessChart
from simtui.widgets.footer import KeysFooter
from simtui.widgets.tables import ApprovalsTable, LanguageTable, RunsTable, state_text
from simtui.widgets.tiles import AlertBanner, KpiBar

POLL_LIVE_SECONDS = 30.0
"""With LISTEN up, changes arrive as events: the timer only moves ages and time windows."""
POLL_SECONDS = 2.0
"""Local mode without LISTEN (connection lost): polling is all there is."""
POLL_API_SECONDS = 5.0
"""API mode: each poll lists runs and approvals over HTTP."""
EVENT_DELAY_SECONDS = 0.15
"""Events come in bursts (a run queued, claimed, finished): one refresh takes them all."""
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)
ROLLOUTS_EVERY_SECONDS = 5.0
"""The rollouts change by their own keys (no database event) and by canary observations: a
burst of run events needs no new read of them, a step taken here or ctrl+r does."""
ROLLOUT_STATES = (ApprovalStatus.APPROVED, ApprovalStatus.STAGED, ApprovalStatus.DEPLOYED)
"""An approval in one of these can take a rollout step: the footer then shows the keys."""


class RolloutsRead(Message):
    """The staged and deployed patches with their canary, or why they could not be read."""

    def __init__(self, rollouts: Rollouts | None, error: str | None = None) -> None:
        super().__init__()
        self.rollouts = rollouts
        self.error = error

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RolloutsRead)


class HomeScreen(BaseScreen):
    AUTO_FOCUS = "#recent-runs"
    """Focused as the screen is composed: focusing the first table and then this one in
    on_mount would restyle both panes twice before the first paint."""
    BINDINGS: ClassVar = [
        *write_binding("a", "approve", "Approve", id="approve"),
        *write_binding("r", "reject", "Reject", id="reject"),
        *write_binding("n", "new_simulation", "New", id="new"),
        *write_binding("R", "rerun", "Re-run", id="rerun"),
        *write_binding("c", "cancel_run", "Cancel", id="cancel"),
        Binding("slash", "filter", "Filter", id="filter"),
        *rollout_bindings(),
        Binding("p", "patches", "Patches", show=False, id="patches"),
        Binding("J", "journal", "Journal", show=False, id="journal"),
        Binding("C", "checklist", "Checklist", show=False, id="checklist"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="refresh"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear-filter"),
    ]

    def __init__(self) -> None:
        super().__init__(id="home")
        self.snapshot: DashboardSnapshot | None = None
        self.rollouts: Rollouts | None = None
        """None until first read (and in a session that cannot read them)."""
        self.rollouts_error: str | None = None
        self._rollout_keys_shown = False
        self._rollouts_read_at: float | None = None
        self._under_dialog = False
        """A dialog (not another screen) covers this one."""
        self._resumed = False
        self.last_error: str | None = None
        self._timer: Timer | None = None
        self._due: float = 0.0
        self._refreshing = False
        self._dirty = False
        self._stale = False
        self._failures = 0
        self._ready_sent = False
        self._opened = False
        self._select_after: str | None = None
        self._status_shown = ""
        self._titles_shown: dict[str, str] = {}
        self.needle = ""

    def compose(self) -> ComposeResult:
        yield Static("connecting…", id="status-line", markup=False)
        yield AlertBanner(id="alerts")
        yield KpiBar(id="kpis")
        with Horizontal(id="charts"):
            with Vertical(id="queue-pane", classes="pane"):
                yield QueueChart(id="queue-chart")
            with Vertical(id="success-pane", classes="pane"):
                yield SuccessChart(id="success-chart")
            with Vertical(id="lang-pane", classes="pane"):
                yield LanguageTable(id="languages")
        with Horizontal(id="tables"):
            with Vertical(id="runs-pane", classes="pane"):
                yield RunsTable(id="recent-runs")
            with Vertical(id="approvals-pane", classes="pane"):
                yield ApprovalsTable(id="approvals")
        yield Input(placeholder="filter runs: words to find, esc clears", id="runs-filter")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one("#runs-filter", Input).display = False
        self._titles(None)
        # Now, not after the next refresh as focus() would: the runs are drawn once, focused.
        self.set_focus(self.query_one(RunsTable))
        snapshot = self.session.take_prefetched()
        if snapshot is None:
            self.request_refresh(0)
            return
        # The snapshot read while the app loaded is here: shown before the first paint, the
        # first screen is drawn once, full, rather than empty and then again.
        self._refreshing = True
        # Read by a thread of this process, which opened the session; else by a child
        # process, and this one opens its session after the first paint.
        opened = self.session.is_open
        if opened:
            self._opened = True
            self.refresh_bindings()  # as SessionOpened does
        self.on_snapshot_ready(SnapshotReady(snapshot))
        if opened:
            self.tui.after_open()

    # -- scheduling ---------------------------------------------------------------------------

    def _poll_interval(self) -> float:
        if self.session.listening:
            return POLL_LIVE_SECONDS
        return POLL_SECONDS if self.session.local else POLL_API_SECONDS

    def request_refresh(self, delay: float) -> None:
        """Refresh in ``delay`` seconds (or sooner if already due sooner); never two at once."""
        if self._refreshing:
            self._dirty = True
            return
        delay = max(delay, 0.001)  # a zero-interval Timer divides by zero
        due = time.monotonic() + delay
        if self._timer is not None:
            if due >= self._due:
                return
            self._timer.stop()
        self._due = due
        self._timer = self.set_timer(delay, self._tick, name="home-refresh")

    def _tick(self) -> None:
        self._timer = None
        if not self.is_current:
            # A dialog or another screen is on top: read nothing now, catch up on resume.
            self._stale = True
            return
        self._refreshing = True
        self._dirty = False
        self.refresh_snapshot()

    def _finished(self) -> None:
        self._refreshing = False
        if self._dirty:
            self._dirty = False
            self.request_refresh(EVENT_DELAY_SECONDS)
        else:
            self.request_refresh(self._poll_interval())

    def on_screen_suspend(self) -> None:
        # By now the screen that covers this one is on top of the stack.
        self._under_dialog = isinstance(self.app.screen, ModalScreen)

    def on_screen_resume(self, event: events.ScreenResume) -> None:
        first, self._resumed = not self._resumed, True
        if first:
            # Its first resume follows its mount, which styled every widget: Textual's own
            # handler (called after this one) would style them all a second time.
            event.refresh_styles = False
        elif self.snapshot is not None and not self._under_dialog:
            # A rollout step may have been taken on the screen that was on top, and it sends
            # no database event: read the rollouts again now. Not after a dialog: a step or
            # decision confirmed there is taken here, and its ActionDone reads them again
            # once it committed (a read now would only slow that commit down).
            self._rollouts_read_at = time.monotonic()
            self.refresh_rollouts()
        self._under_dialog = False
        if self._stale:
            self._stale = False
            self.request_refresh(0)

    def db_changed(self, message: RunChanged | LogsArrived) -> None:
        if isinstance(message, RunChanged):
            self.request_refresh(EVENT_DELAY_SECONDS)

    def live_changed(self, connected: bool) -> None:
        self._status()
        if not connected:
            self.request_refresh(POLL_SECONDS)

    def action_refresh(self) -> None:
        self._rollouts_read_at = None
        self.request_refresh(0)

    # -- reading ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="snapshot")
    def refresh_snapshot(self) -> None:
        session = self.session
        # Not session.is_open: main() may have opened it already (prefetch) for us.
        first = not self._opened
        try:
            if first and not session.is_open:
                early = session.take_prefetched(wait=None)
                if early is not None:
                    # Read by another process while this one loaded: shown now, and the
                    # session opens after the first paint (_first_paint_done), so that
                    # loading the engine does not slow the paint down.
                    self.post_message(SnapshotReady(early))
                    return
            snapshot = session.snapshot()
            if first:
                _, principal = session.open()
                self._opened = True
                self.post_message(SessionOpened(principal))
        except SimError as exc:
            self.post_message(SnapshotFailed(str(exc)))
            return
        except database_error() as exc:  # the connection broke mid-read: say so, retry
            self.post_message(SnapshotFailed(f"database error: {exc}".strip()))
            return
        self.post_message(SnapshotReady(snapshot))
        if first:
            # After the first snapshot is on its way: starting a worker (which may probe a
            # sandbox engine) must not delay the first screen.
            self.tui.after_open()
        elif snapshot.workers_alive == 0 and snapshot.queued and not session.in_process_worker:
            # The worker that was alive went away: take over so that runs still progress.
            self.tui.start_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="rollouts")
    def refresh_rollouts(self) -> None:
        simulator, principal = self.session.open()
        try:
            rollouts = read_rollouts(simulator, principal)
        except (SimError, database_error()) as exc:
            self.post_message(RolloutsRead(None, str(exc)))
            return
        if not get_current_worker().is_cancelled:  # a newer read is on its way
            self.post_message(RolloutsRead(rollouts))

    def on_rollouts_read(self, message: RolloutsRead) -> None:
        self.rollouts_error = message.error
        if message.rollouts is not None:
            self.rollouts = message.rollouts
        if self.snapshot is not None:
            self._show_approvals(self.snapshot)
            self._titles(self.snapshot)
            self._update_rollout_keys()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "snapshot" and event.state in (
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            # A bug, not a database error (those come back as SnapshotFailed): say so and
            # keep going rather than freeze the dashboard.
            error = event.worker.error
            self.on_snapshot_failed(SnapshotFailed(f"internal error: {error!r}"))

    def on_snapshot_failed(self, message: SnapshotFailed) -> None:
        self.last_error = message.error
        self._failures += 1
        self._status()
        self._refreshing = False
        self.request_refresh(RETRY_SECONDS[min(self._failures, len(RETRY_SECONDS)) - 1])

    def on_session_opened(self, message: SessionOpened) -> None:
        self.refresh_bindings()

    def on_workers_changed(self, message: WorkersChanged) -> None:
        self._status()

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.last_error = None
        self._failures = 0
        self.show(message.snapshot)
        self._finished()
        if not self._ready_sent:
            self._ready_sent = True
            # After the next paint: "ready" means on screen, not just in the widgets. The
            # rollouts are read then: their thread would only slow the first paint down.
            self.call_after_refresh(self._first_paint_done)
            return
        self._read_rollouts_if_due()

    def _first_paint_done(self) -> None:
        self.app.post_message(HomeReady())
        if not self._opened:  # the first snapshot came from the prefetch child
            self.request_refresh(0)
        # Queued behind HomeReady rather than started now: the app hears that the screen
        # is up before the rollouts' thread starts taking turns with it.
        self.call_later(self._read_rollouts_if_due)

    def _read_rollouts_if_due(self) -> None:
        last = self._rollouts_read_at
        if last is None or time.monotonic() - last >= ROLLOUTS_EVERY_SECONDS:
            self._rollouts_read_at = time.monotonic()
            self.refresh_rollouts()

    # -- drawing ------------------------------------------------------------------------------

    def show(self, snapshot: DashboardSnapshot) -> None:
        self.snapshot = snapshot
        now = snapshot.taken_at
        with self.app.batch_update():
            self.query_one(AlertBanner).show(snapshot.alerts)
            self.query_one(KpiBar).show(snapshot.kpis)
            oldest = snapshot.oldest_queued_age_seconds
            self.query_one(QueueChart).show(
                snapshot.queue_history,
                now,
                f"oldest waiting {fmt.span(oldest)}" if oldest is not None else "queue empty",
            )
            rate = snapshot.kpi("success_rate")
            self.query_one(SuccessChart).show(
                snapshot.success_history, now, f"{rate.sample} runs finished"
            )
            self.query_one(LanguageTable).show(snapshot.by_language)
            self.query_one(RunsTable).show(snapshot.recent_runs, now, self.needle)
            self._show_approvals(snapshot)
            self._titles(snapshot)
            self._status()
        if self._select_after and self.query_one(RunsTable).select_key(self._select_after):
            self._select_after = None
            self.query_one(RunsTable).focus()
        self._update_rollout_keys()

    def _queue(self, snapshot: DashboardSnapshot) -> list[Approval]:
        """The pending approvals of the snapshot and the patches in rollout, once each."""
        shown = {a.id: a for a in snapshot.approvals}
        # The rollouts were read after the snapshot: where both have a row, theirs is newer.
        shown.update({a.id: a for a in self.rollouts.approvals} if self.rollouts else {})
        return list(shown.values())

    def _show_approvals(self, snapshot: DashboardSnapshot) -> None:
        canary = self.rollouts.canary if self.rollouts else None
        self.query_one(ApprovalsTable).show(self._queue(snapshot), snapshot.taken_at, canary)

    def _approvals_title(self, snap: DashboardSnapshot) -> str:
        title = f"Pending approvals ({snap.pending_approvals})"
        if self.rollouts_error is not None:
            return title + f" · rollouts unavailable: {self.rollouts_error}"
        rows = self.rollouts.approvals if self.rollouts else ()
        staged = sum(a.status is ApprovalStatus.STAGED for a in rows)
        deployed = len(rows) - staged
        if staged:
            title += f" · staged {staged}"
        if deployed:
            title += f" · deployed {deployed}"
        return title

    def _titles(self, snap: DashboardSnapshot | None) -> None:
        titles = {
            "#lang-pane": "By language 7d",
            "#queue-pane": "Queue",
            "#success-pane": "Success 24h",
            "#runs-pane": "Recent runs",
            "#approvals-pane": "Pending approvals",
        }
        if snap is not None:
            rate = snap.kpi("success_rate")
            shown = self.query_one(RunsTable).row_count
            runs = f"Recent runs ({shown}"
            if self.needle:
                runs += f" matching {self.needle!r}"
            titles.update(
                {
                    "#queue-pane": f"Queue {snap.queued} · running {snap.running}",
                    "#success-pane": f"Success 24h {fmt.percent(rate.value, 1)}",
                    "#runs-pane": runs + ")",
                    "#approvals-pane": self._approvals_title(snap),
                }
            )
        for selector, title in titles.items():
            if self._titles_shown.get(selector) != title:
                self._titles_shown[selector] = title
                # Text, not a str: a str would be read as markup (the filter is typed).
                self.query_one(selector).border_title = Text(title)

    def _status(self) -> None:
        session = self.session
        principal = session.principal
        parts = []
        if principal is not None:
            parts.append(principal.actor)
            if principal.role.value == "auditor":
                parts.append("read-only: auditor")
        parts.append(session.label)
        snap = self.snapshot
        if self.last_error is not None:
            line = self.query_one("#status-line", Static)
            unavailable = "API" if session.label.startswith("API") else "database"
            self._status_text(f"{unavailable} unavailable: {self.last_error}")
            line.add_class("error")
            return
        if snap is not None:
            parts.append(session.workers_label(snap))
            if session.local:
                parts.append("live" if session.listening else "polling")
            else:
                parts.append("polling")
            if snap.scope != "all tenants":
                parts.append(f"scope {snap.scope}")
            if snap.partial:
                parts.append(snap.partial)
            # To the minute: a line that changed on every refresh would repaint for nothing.
            parts.append(f"at {snap.taken_at.astimezone().strftime('%H:%M')}")
        self.query_one("#status-line", Static).remove_class("error")
        self._status_text(" · ".join(parts))

    def _status_text(self, text: str) -> None:
        # One line of fixed height: no layout pass, and nothing at all when unchanged.
        if text != self._status_shown:
            self._status_shown = text
            self.query_one("#status-line", Static).update(text, layout=False)

    # -- selection ----------------------------------------------------------------------------

    def _selected_run(self) -> RecentRun | str | None:
        """The run the keys act on: the highlighted approval's, else the highlighted run."""
        focused = self.focused
        approvals = self.query_one(ApprovalsTable)
        if focused is approvals and approvals.selected_run:
            run_id = approvals.selected_run
            return self._recent(run_id) or run_id
        key = self.query_one(RunsTable).selected_key
        return self._recent(key) if key else None

    def _recent(self, run_id: str) -> RecentRun | None:
        if self.snapshot is None:
            return None
        for run in self.snapshot.recent_runs:
            if str(run.id) == run_id:
                return run
        return None

    def _describe(self, run: RecentRun | str) -> str:
        if isinstance(run, str):
            for approval in self.snapshot.approvals if self.snapshot else ():
                if str(approval.simulation_run_id) == run:
                    return (
                        f"{approval.simulation_name} · {approval.sdk_language} · patch "
                        f"{approval.patch_slug} · {fmt.percent(approval.baseline_success_rate)}"
                        f" → {fmt.percent(approval.success_rate)}"
                    )
            return f"run {run}"
        return (
            f"{run.simulation_name} · {run.sdk_language} · {run.status.value} · patch "
            f"{run.patch_slug or '-'} · success {fmt.percent(run.success_rate)}"
        )

    def _pending_target(self) -> str | None:
        """The run whose patch a/r decide, or None after saying why there is none."""
        run = self._selected_run()
        if run is None:
            self.say("no run selected", severity="warning")
            return None
        if isinstance(run, RecentRun):
            if run.approval_status is not ApprovalStatus.PENDING:
                why = (
                    f"its patch is already {run.approval_status.value}"
                    if run.approval_status
                    else f"it is {run.status.value}"
                    + (" and ran without a patch" if not run.patch_slug else "")
                )
                self.say(
                    f"run {fmt.short_id(run.id)} has no pending approval: {why}",
                    severity="warning",
                )
                return None
            return str(run.id)
        return run

    # -- actions ------------------------------------------------------------------------------

    def action_approve(self) -> None:
        run_id = self._pending_target()
        if run_id is not None:
            self.ask_approve(run_id, self._describe(self._recent(run_id) or run_id))

    def action_reject(self) -> None:
        run_id = self._pending_target()
        if run_id is not None:
            self.ask_reject(run_id, self._describe(self._recent(run_id) or run_id))

    def action_rerun(self) -> None:
        run = self._selected_run()
        if run is None:
            self.say("no run selected", severity="warning")
            return
        self.rerun(str(run.id) if isinstance(run, RecentRun) else run)

    def action_cancel_run(self) -> None:
        run = self._selected_run()
        if run is None:
            self.say("no run selected", severity="warning")
            return
        if isinstance(run, RecentRun) and run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
            self.say(
                f"run {fmt.short_id(run.id)} is already {run.status.value}: nothing to cancel",
                severity="warning",
            )
            return
        run_id = str(run.id) if isinstance(run, RecentRun) else run
        self.ask_cancel(run_id, self._describe(run))

    def _highlighted_rollout(self) -> tuple[str, ApprovalStatus | None, str] | str:
        """The run, its approval's state and a description for s/P/b; else why there is none.

        The highlighted approval when the queue has the focus, else the highlighted run: an
        approved patch has left the queue of decisions, and is staged from its run.
        """
        approvals = self.query_one(ApprovalsTable)
        if self.focused is approvals:
            approval = approvals.selected_approval
            if approval is None:
                return "no approval selected"
            return str(approval.simulation_run_id), approval.status, self._approval_text(approval)
        key = self.query_one(RunsTable).selected_key
        run = self._recent(key) if key else None
        if run is None:
            return "no run selected"
        status = run.approval_status
        for approval in self._queue(self.snapshot) if self.snapshot else ():
            if str(approval.simulation_run_id) == str(run.id):
                status = approval.status  # the queue's row may be newer than the run's
        return str(run.id), status, self._describe(run)

    def _approval_text(self, a: Approval) -> str:
        return (
            f"{a.simulation_name} · {a.sdk_language} · patch "
            f"{fmt.patch_name(a.patch_slug, a.error, a.sdk_language)} · {state_text(a).plain} · "
            f"{fmt.percent(a.baseline_success_rate)} → {fmt.percent(a.success_rate)}"
        )

    def _rollout(self, action: RolloutAction) -> None:
        target = self._highlighted_rollout()
        if isinstance(target, str):
            self.say(target, severity="warning")
            return
        run_id, status, what = target
        canary = self.rollouts.canary.get(run_id) if self.rollouts else None
        self.start_rollout(run_id, status, action, what, canary)

    def action_checklist(self) -> None:
        from simtui.screens.checklist import ChecklistScreen

        self.app.push_screen(ChecklistScreen())

    def action_new_simulation(self) -> None:
        self.tui.open_new_simulation()

    def action_patches(self) -> None:
        self.tui.open_patches()

    def action_journal(self) -> None:
        self.tui.open_journal()

    def action_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.display = True
        box.value = self.needle
        box.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "clear_filter":
            return bool(self.needle) or self.query_one("#runs-filter", Input).has_focus
        # The rollout keys are in the footer only while the highlighted approval or run can
        # take a step; otherwise their hidden twin answers the key (see action_refuse).
        if action in ROLLOUT_ACTIONS:
            return keys.allowed(self.session.principal, action) and self._rollout_keys_shown
        if action == "refuse" and parameters and parameters[0] in ROLLOUT_ACTIONS:
            may = keys.allowed(self.session.principal, str(parameters[0]))
            return not (may and self._rollout_keys_shown)
        return super().check_action(action, parameters)

    def action_refuse(self, action: str) -> None:
        if action in ROLLOUT_ACTIONS and keys.allowed(self.session.principal, action):
            # Ops pressed a rollout key the footer does not show here: do it all the same,
            # so that a step the state refuses is answered with the engine's reason.
            self._rollout(RolloutAction(action))
            return
        super().action_refuse(action)

    def _update_rollout_keys(self) -> None:
        target = self._highlighted_rollout()
        shown = not isinstance(target, str) and target[1] in ROLLOUT_STATES
        if shown != self._rollout_keys_shown:
            self._rollout_keys_shown = shown
            self.refresh_bindings()

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._update_rollout_keys()

    def on_descendant_focus(self) -> None:
        self._update_rollout_keys()

    def action_clear_filter(self) -> None:
        box = self.query_one("#runs-filter", Input)
        box.value = ""
        box.display = False
        self._set_filter("")
        self.query_one(RunsTable).focus()

    def _set_filter(self, needle: str) -> None:
        self.needle = needle
        if self.snapshot is not None:
            self.query_one(RunsTable).show(
                self.snapshot.recent_runs, self.snapshot.taken_at, needle
            )
            self._titles(self.snapshot)

    @on(Input.Changed, "#runs-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._set_filter(event.value.strip())

    @on(Input.Submitted, "#runs-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        if not self.needle:
            event.input.display = False
        self.query_one(RunsTable).focus()

    @on(DataTable.RowSelected)
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        key = event.row_key.value
        if key is None:
            return
        if isinstance(table, ApprovalsTable):
            run_id = table.run_of.get(key)
            if run_id:
                self.tui.open_run(run_id)
        elif isinstance(table, LanguageTable):
            self.query_one("#runs-filter", Input).display = True
            self.query_one("#runs-filter", Input).value = key
            self.query_one(RunsTable).focus()
        else:
            self.tui.open_run(key)

    def select_run_when_shown(self, run_id: str) -> None:
        self._select_after = run_id
        if self.query_one(RunsTable).select_key(run_id):
            self._select_after = None

    def on_action_done(self, message: ActionDone) -> None:
        message.stop()
        self.say(message.text)
        if message.open_run and message.run_id is not None:
            self.select_run_when_shown(str(message.run_id))
        self._rollouts_read_at = None  # a step taken here shows at once
        self.request_refresh(0)
