"""One run: live log tail, baseline versus patched, verdict and reasons, journal, patch code.

The log is read in pages after the last line shown, one read at a time: a notification
(``simtui_logs``) asks for the next read, and a one-shot timer polls while the run is live in
case notifications are not coming (API mode, lost connection). A page that comes back full
is followed at once by the next one, so a backlog drains without flooding the message queue.
Only the tail of a long log is fetched: the view keeps 5,000 lines anyway.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

import psycopg
from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.timer import Timer
from textual.widgets import Static, TabbedContent, TabPane

from simcore.errors import SimError
from simcore.model import ApprovalStatus, Patch, RunStatus, SdkLanguage
from simcore.rollout import RolloutAction
from simcore.service import RunDetail
from simtui import format as fmt
from simtui.keys import rollout_bindings, write_binding
from simtui.messages import (
    ActionDone,
    LoadFailed,
    LogBatch,
    LogsArrived,
    RunChanged,
    RunLoaded,
)
from simtui.screens.base import BaseScreen
from simtui.widgets.footer import KeysFooter
from simtui.widgets.log_tail import MAX_LINES, LogTail
from simtui.widgets.tables import NavTable, Ordered, Row

LOG_PAGE = 2000
LOG_POLL_LIVE_SECONDS = 5.0
LOG_POLL_SECONDS = 1.0
RUN_POLL_ACTIVE_SECONDS = 5.0
RUN_POLL_DONE_SECONDS = 30.0
"""A finished run still changes: its patch gets approved or rejected (by anyone)."""

DECISIONS = {
    "approved": ApprovalStatus.APPROVED,
    "rejected": ApprovalStatus.REJECTED,
    "staged": ApprovalStatus.STAGED,
    "deployed": ApprovalStatus.DEPLOYED,
    "rolled_back": ApprovalStatus.ROLLED_BACK,
}

METRIC_ROWS = (
    ("success_rate", "success rate", "pct"),
    ("failed_requests", "failed requests", "int"),
    ("avg_latency_ms", "avg latency", "ms"),
    ("p50_latency_ms", "p50 latency", "ms"),
    ("p95_latency_ms", "p95 latency", "ms"),
    ("p99_latency_ms", "p99 latency", "ms"),
    ("retries", "retries", "int"),
    ("http_requests", "HTTP requests", "int"),
    ("duplicate_charges", "duplicate charges", "int"),
    ("wrong_payments", "wrong payments", "int"),
    ("patch_invocations", "patch invocations", "int"),
    ("patch_errors", "patch errors", "int"),
)


def approval_state(detail: RunDetail) -> ApprovalStatus | None:
    """From the run's journal: its latest decision, else pending for a patched success."""
    state: ApprovalStatus | None = None
    for entry in detail.journal:
        state = DECISIONS.get(entry.action, state)
    if state is None and detail.run.status is RunStatus.SUCCESS and detail.run.patch_id:
        return ApprovalStatus.PENDING
    return state


def rollout_percent(detail: RunDetail) -> int | None:
    """The rollout percentage the run's journal leads to, while the patch is staged or deployed."""
    percent: int | None = None
    for entry in detail.journal:
        if entry.action in ("staged", "deployed"):
            percent = int(entry.details.get("to_percent", 100))
        elif entry.action == "rolled_back":
            percent = None
    return percent


def _metric(value: Any, kind: str) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    if kind == "pct":
        return fmt.percent(float(value), 1)
    if kind == "ms":
        return fmt.latency(float(value))
    return str(int(value))


def _delta(base: Any, patched: Any, kind: str) -> str:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (base, patched)):
        return ""
    diff = float(patched) - float(base)
    if diff == 0:
        return "="
    if kind == "pct":
        return f"{diff * 100:+.1f} pt"
    if kind == "ms":
        return f"{diff:+.0f}ms"
    return f"{diff:+.0f}"


JOURNAL_COLUMNS = (
    ("at", "at"),
    ("action", "action"),
    ("actor", "actor"),
    ("details", "details"),
    ("hash", "hash"),
)


class RunDetailScreen(BaseScreen):
    BINDINGS: ClassVar = [
        Binding("escape", "back", "Back", id="detail.back"),
        *write_binding("a", "approve", "Approve", id="approve"),
        *write_binding("r", "reject", "Reject", id="reject"),
        *write_binding("R", "rerun", "Re-run", id="rerun"),
        *write_binding("c", "cancel_run", "Cancel", id="cancel"),
        # Not in the footer, which 80 columns fill already: listed in help (?).
        *rollout_bindings(show=False),
        Binding("f", "follow", "Follow", id="follow"),
        Binding("slash", "search", "Search", id="search"),
        Binding("1", "tab('log')", "Log", show=False, id="tab.log"),
        Binding("2", "tab('result')", "Result", show=False, id="tab.result"),
        Binding("3", "tab('journal')", "Journal", show=False, id="tab.journal"),
        Binding("4", "tab('patch')", "Patch", show=False, id="tab.patch"),
    ]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.detail: RunDetail | None = None
        self.patch: Patch | None = None
        self._log_after: int | None = None
        self._log_reading = False
        self._log_dirty = False
        self._log_timer: Timer | None = None
        self._run_timer: Timer | None = None
        self._stale = False
        self._final_read_done = False

    def compose(self) -> ComposeResult:
        yield Static(f"run {self.run_id} · loading…", id="run-header", markup=False)
        with TabbedContent(id="run-tabs", initial="log"):
            with TabPane("1 Log", id="log"):
                yield LogTail(id="log-tail")
            with TabPane("2 Result", id="result"), VerticalScroll(classes="scroll-body"):
                yield Static("", id="result-body")
            with TabPane("3 Journal", id="journal"):
                yield NavTable(JOURNAL_COLUMNS, id="journal-table")
            with TabPane("4 Patch", id="patch"), VerticalScroll(classes="scroll-body"):
                yield Static("", id="patch-body", markup=False)
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(LogTail).view.focus()
        self.load_run()

    @property
    def is_live(self) -> bool:
        return self.detail is None or not self.detail.run.status.terminal

    # -- reading the run --------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def load_run(self) -> None:
        simulator, principal = self.session.open()
        try:
            detail = simulator.get_run(principal, self.run_id)
            patch = self.patch
            if patch is None and detail.run.patch_id is not None:
                patch = simulator.get_patch(principal, detail.run.patch_id)
        except (SimError, psycopg.Error) as exc:
            self.post_message(LoadFailed("run", str(exc)))
            return
        self.post_message(RunLoaded(detail, patch))

    def on_load_failed(self, message: LoadFailed) -> None:
        message.stop()
        if message.what == "log":
            self._log_reading = False
            self._arm_log(LOG_POLL_SECONDS * 5)
            self.say(f"log: {message.error}", severity="error")
            return
        self.query_one("#run-header", Static).update(f"run {self.run_id}: {message.error}")
        self._arm_run(RUN_POLL_ACTIVE_SECONDS)

    def on_run_loaded(self, message: RunLoaded) -> None:
        message.stop()
        first = self.detail is None
        self.detail = message.detail
        self.patch = message.patch
        with self.app.batch_update():
            self._header()
            self._result()
            self._journal()
            if first:
                self._patch()
        if first:
            run = message.detail.run
            # Only the tail: the view keeps MAX_LINES, so older lines would be dropped anyway.
            start = max(run.log_lines - MAX_LINES, 0)
            tail = self.query_one(LogTail)
            tail.skipped = start
            self._log_after = start - 1
            self.request_log()
        elif not self.is_live and not self._final_read_done:
            self.request_log()
        self.query_one(LogTail).truncated = message.detail.run.log_truncated
        self._arm_run(RUN_POLL_ACTIVE_SECONDS if self.is_live else RUN_POLL_DONE_SECONDS)

    # -- reading the log ----------------------------------------------------------------------

    def request_log(self) -> None:
        if self._log_after is None:
            return
        if self._log_reading:
            self._log_dirty = True
            return
        if self._log_timer is not None:
            self._log_timer.stop()
            self._log_timer = None
        if not self.is_current:
            self._stale = True
            return
        self._log_reading = True
        self._log_dirty = False
        self.read_log(self._log_after)

    @work(thread=True, exclusive=True, exit_on_error=False, group="log")
    def read_log(self, after: int) -> None:
        simulator, principal = self.session.open()
        try:
            lines = simulator.read_log(principal, self.run_id, after, LOG_PAGE)
        except (SimError, psycopg.Error) as exc:
            self.post_message(LoadFailed("log", str(exc)))
            return
        self.post_message(LogBatch(UUID(self.run_id), lines, len(lines) >= LOG_PAGE))

    def on_log_batch(self, message: LogBatch) -> None:
        message.stop()
        self._log_reading = False
        if message.lines:
            self._log_after = message.lines[-1][0]
            self.query_one(LogTail).append(line for _, line in message.lines)
        if message.more or self._log_dirty:
            self.request_log()
            return
        if not self.is_live:
            # The run is over and its last lines are in: nothing more will come.
            self._final_read_done = True
            return
        self._arm_log(LOG_POLL_LIVE_SECONDS if self.session.listening else LOG_POLL_SECONDS)

    # -- timers and events --------------------------------------------------------------------

    def _arm_log(self, delay: float) -> None:
        if self._log_timer is not None:
            self._log_timer.stop()
        self._log_timer = self.set_timer(delay, self._log_tick, name="log-poll")

    def _log_tick(self) -> None:
        self._log_timer = None
        self.request_log()

    def _arm_run(self, delay: float) -> None:
        if self._run_timer is not None:
            self._run_timer.stop()
        self._run_timer = self.set_timer(delay, self._run_tick, name="run-poll")

    def _run_tick(self) -> None:
        self._run_timer = None
        if not self.is_current:
            self._stale = True
            return
        self.load_run()

    def on_screen_resume(self) -> None:
        if self._stale:
            self._stale = False
            self.load_run()
            self.request_log()

    def db_changed(self, message: RunChanged | LogsArrived) -> None:
        if message.run_id != self.run_id:
            return
        if isinstance(message, LogsArrived):
            self.request_log()
        elif self.is_current:
            self.load_run()
        else:
            self._stale = True

    # -- drawing ------------------------------------------------------------------------------

    def _header(self) -> None:
        detail = self.detail
        assert detail is not None
        run, sim = detail.run, detail.simulation
        state = approval_state(detail)
        slug = fmt.patch_name(
            self.patch.slug if self.patch else None,
            sim.scenario.error.value,
            sim.sdk_language.value,
        )
        line = Text.assemble(
            f"run {fmt.short_id(run.id)} · ",
            fmt.status_text(run.status),
            f" · {sim.name} · {sim.sdk_language.value} · seed {run.seed} · patch {slug}",
        )
        if state is not None:
            line.append(" · approval ")
            line.append_text(fmt.approval_text(state))
            percent = rollout_percent(detail)
            if percent is not None and state in (ApprovalStatus.STAGED, ApprovalStatus.DEPLOYED):
                line.append(f" {percent}%")
        second: str
        if run.status is RunStatus.RUNNING and run.started_at is not None:
            elapsed = (datetime.now(UTC) - run.started_at).total_seconds()
            second = f"running on {run.worker_id} for {fmt.span(elapsed)}"
            if run.cancel_requested:
                second += " · cancel requested"
        elif run.status is RunStatus.QUEUED:
            second = f"queued since {run.run_at.astimezone().strftime('%H:%M:%S')}"
        elif run.reasons:
            second = "; ".join(run.reasons)
        else:
            second = run.error_message or ""
        self.query_one("#run-header", Static).update(Text.assemble(line, "\n", second))

    def _result(self) -> None:
        detail = self.detail
        assert detail is not None
        run = detail.run
        parts: list[RenderableType] = []
        verdict = Text.assemble("verdict ", fmt.status_text(run.status))
        parts.append(verdict)
        for reason in run.reasons:
            parts.append(Text(f"  · {reason}"))
        if run.error_message and run.status is not RunStatus.SUCCESS:
            parts.append(Text(f"  · {run.error_message}"))
        metrics = run.metrics or {}
        baseline = metrics.get("baseline") or {}
        if metrics:
            table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
            table.add_column("metric")
            table.add_column("baseline", justify="right")
            table.add_column("patched", justify="right")
            table.add_column("change", justify="right")
            for key, label, kind in METRIC_ROWS:
                if key not in metrics and key not in baseline:
                    continue
                table.add_row(
                    label,
                    _metric(baseline.get(key), kind),
                    _metric(metrics.get(key), kind),
                    _delta(baseline.get(key), metrics.get(key), kind),
                )
            table.add_row("regressions", "", _metric(metrics.get("regressions"), "int"), "")
            parts.append(Text(""))
            parts.append(table)
        else:
            parts.append(Text("no metrics yet" if self.is_live else "no metrics recorded"))
        facts = Table(box=None, pad_edge=False, show_header=False, show_edge=False)
        facts.add_column(style="bold")
        facts.add_column()
        facts.add_row("artifact", self._artifact())
        facts.add_row("seed", str(run.seed))
        facts.add_row("launched by", run.launched_by)
        facts.add_row("attempts", f"{run.attempts} of {run.max_attempts}")
        facts.add_row("worker", run.worker_id or "-")
        facts.add_row("sandbox", run.sandbox_backend or "-")
        facts.add_row("duration", fmt.span(run.duration_ms / 1000 if run.duration_ms else None))
        facts.add_row("log", f"{run.log_lines} lines" + (" (capped)" if run.log_truncated else ""))
        facts.add_row("simulator", run.simulator_version or "-")
        facts.add_row("run id", str(run.id))
        parts.extend([Text(""), facts])
        self.query_one("#result-body", Static).update(Group(*parts))

    def _artifact(self) -> str:
        run = self.detail.run if self.detail else None
        if run is None or not run.artifact_s3_key:
            return "not archived: the log and the result are in the database"
        settings = self.session.settings
        if settings is None:
            return run.artifact_s3_key
        location = settings.artifacts_location.rstrip("/")
        return f"{location}/{run.artifact_s3_key}"

    def _journal(self) -> None:
        detail = self.detail
        assert detail is not None
        table = self.query_one("#journal-table", NavTable)
        # Oldest first (the order is negated): the journal reads as a story.
        rows = [
            Row(
                str(e.id),
                (
                    Ordered(e.created_at.astimezone().strftime("%m-%d %H:%M:%S"), -float(e.id)),
                    e.action,
                    Text(e.actor),
                    Text(fmt.clip(json.dumps(e.details, sort_keys=True, default=str), 70)),
                    e.hash[:10],
                ),
                -float(e.id),
            )
            for e in detail.journal
        ]
        table.sync(rows)

    def _patch(self) -> None:
        body = self.query_one("#patch-body", Static)
        patch = self.patch
        if patch is None:
            body.update("this run has no patch: baseline only")
            return
        lexer = "javascript" if patch.sdk_language is SdkLanguage.NODE else "python"
        head = Text.assemble(
            (patch.slug or str(patch.id), "bold"),
            f"  v{patch.version} · {patch.severity.value} · source {patch.source.value}"
            f" · {patch.sdk_language.value} · error {patch.error_signature}",
            "" if patch.active else " · INACTIVE",
        )
        parts: list[RenderableType] = [head, Text(patch.description), Text(""), Text("patch:")]
        parts.append(
            Syntax(
                patch.patch_code,
                lexer,
                line_numbers=True,
                background_color="default",
                word_wrap=True,
            )
        )
        if patch.rollback_code.strip():
            parts += [
                Text(""),
                Text("rollback:"),
                Syntax(
                    patch.rollback_code,
                    lexer,
                    line_numbers=True,
                    background_color="default",
                    word_wrap=True,
                ),
            ]
        body.update(Group(*parts))

    # -- actions ------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def action_follow(self) -> None:
        tail = self.query_one(LogTail)
        tail.set_follow(not tail.follow)
        self.query_one(TabbedContent).active = "log"
        self.say("following the log" if tail.follow else "log paused", timeout=2)

    def action_search(self) -> None:
        self.query_one(TabbedContent).active = "log"
        self.query_one(LogTail).open_search()

    def _describe(self) -> str:
        if self.detail is None:
            return f"run {self.run_id}"
        run, sim = self.detail.run, self.detail.simulation
        rate = fmt.percent((run.metrics or {}).get("success_rate"))
        return (
            f"{sim.name} · {sim.sdk_language.value} · {run.status.value} · patch "
            f"{self.patch.slug if self.patch else '-'} · success {rate}"
        )

    def _pending(self) -> bool:
        if self.detail is None:
            self.say("still loading", severity="warning")
            return False
        state = approval_state(self.detail)
        if state is ApprovalStatus.PENDING:
            return True
        why = (
            f"its patch is already {state.value}"
            if state
            else f"it is {self.detail.run.status.value}"
            + ("" if self.detail.run.patch_id else " and ran without a patch")
        )
        self.say(f"no pending approval: {why}", severity="warning")
        return False

    def action_approve(self) -> None:
        if self._pending():
            self.ask_approve(self.run_id, self._describe())

    def action_reject(self) -> None:
        if self._pending():
            self.ask_reject(self.run_id, self._describe())

    def _rollout(self, action: RolloutAction) -> None:
        if self.detail is None:
            self.say("still loading", severity="warning")
            return
        state = approval_state(self.detail)
        self.start_rollout(self.run_id, state, action, self._describe())

    def action_rerun(self) -> None:
        self.rerun(self.run_id)

    def action_cancel_run(self) -> None:
        if self.detail is not None and self.detail.run.status.terminal:
            self.say(
                f"run is already {self.detail.run.status.value}: nothing to cancel",
                severity="warning",
            )
            return
        self.ask_cancel(self.run_id, self._describe())

    def on_action_done(self, message: ActionDone) -> None:
        message.stop()
        self.say(message.text)
        if message.open_run and message.run_id is not None:
            self.tui.open_run(str(message.run_id), replace=True)
            return
        self.load_run()
        self.tui.home.request_refresh(0)
