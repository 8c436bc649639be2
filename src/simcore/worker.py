"""The worker: claims runs, executes them end to end, streams their logs, records results.

Crash safety rests on the lease. While a run is in hand a heartbeat renews its lease; if this
process dies, the lease lapses and the next claim (by any worker) takes the run back. On
SIGTERM the worker stops claiming, lets the runs in hand finish for a grace period, then kills
their sandboxes and gives the runs back to the queue.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol, TypeVar
from uuid import UUID

import psycopg

from simcore import queue
from simcore.artifacts import ArtifactStore, archive_run
from simcore.errors import DatabaseUnavailable, SimError
from simcore.events import RUNS_CHANNEL, Event, Listener
from simcore.model import Patch, RunStatus, Simulation
from simcore.store import Database
from simcore.store import patches as patch_store
from simcore.store import simulations as sim_store

_log = logging.getLogger("simcore.worker")
T = TypeVar("T")

LOG_LINE_MAX = 4096


@dataclass
class LogSink:
    """Collects a run's log lines; a flusher thread moves them to the database in batches."""

    max_lines: int = 20_000
    max_bytes: int = 4 * 1024 * 1024
    lines: list[str] = field(default_factory=list)
    flushed: int = 0
    bytes: int = 0
    truncated: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, line: str) -> None:
        line = line.rstrip("\n")
        if len(line) > LOG_LINE_MAX:
            line = line[:LOG_LINE_MAX] + " …[line cut]"
        with self._lock:
            if self.truncated:
                return
            size = len(line.encode("utf-8", "replace")) + 1
            if len(self.lines) >= self.max_lines or self.bytes + size > self.max_bytes:
                self.truncated = True
                self.lines.append(
                    f"[simcore] log capped at {len(self.lines)} lines / "
                    f"{self.bytes} bytes; the rest was dropped"
                )
                return
            self.lines.append(line)
            self.bytes += size

    def pending(self) -> tuple[int, list[str], bool]:
        with self._lock:
            return self.flushed, self.lines[self.flushed :], self.truncated

    def mark_flushed(self, upto: int) -> None:
        with self._lock:
            self.flushed = max(self.flushed, upto)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines) + ("\n" if self.lines else "")


@dataclass
class RunContext:
    """What an executor gets for one run."""

    run: dict[str, Any]
    simulation: Simulation
    patch: Patch | None
    log: LogSink
    max_run_time_ms: int
    cancelled: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""

    @property
    def run_id(self) -> UUID:
        value = self.run["id"]
        assert isinstance(value, UUID)
        return value

    @property
    def seed(self) -> int:
        return int(self.run["seed"])


class Executor(Protocol):
    def execute(self, ctx: RunContext) -> queue.Outcome:
        """Run to completion; return early (status cancelled) once ``ctx.cancelled`` is set."""
        ...


class NoopExecutor:
    """Does nothing and succeeds: for benchmarks of the queue itself."""

    def execute(self, ctx: RunContext) -> queue.Outcome:
        return queue.Outcome(RunStatus.SUCCESS, metrics={"success_rate": 1.0})


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"


class Worker:
    def __init__(
        self,
        db: Database,
        executor: Executor,
        *,
        worker_id: str | None = None,
        concurrency: int = 1,
        lease: timedelta = queue.DEFAULT_LEASE,
        poll_seconds: float = 2.0,
        max_run_time_ms: int = 180_000,
        grace_seconds: float = 20.0,
        purge_every_seconds: float = 60.0,
        flush_seconds: float = 0.2,
        exit_when_idle: bool = False,
        on_event: Callable[[str], None] | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.executor = executor
        self.worker_id = worker_id or default_worker_id()
        self.concurrency = concurrency
        self.lease = lease
        self.poll_seconds = poll_seconds
        self.max_run_time_ms = max_run_time_ms
        self.grace_seconds = grace_seconds
        self.purge_every_seconds = purge_every_seconds
        self.flush_seconds = flush_seconds
        self.exit_when_idle = exit_when_idle
        self.artifacts = artifacts
        self.on_event = on_event or (lambda msg: _log.info("%s", msg))
        self.stopping = threading.Event()
        self._wake = threading.Condition()
        self._in_hand: dict[UUID, RunContext] = {}
        self._in_hand_lock = threading.Lock()
        self._idle_slots = 0
        self.completed = 0

    # -- plumbing ---------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self.on_event(f"worker {self.worker_id}: {message}")

    def _retry(self, what: str, fn: Callable[[], T], *, give_up_after: float = 300.0) -> T:
        """Call ``fn`` until the database answers; workers outlive a database restart."""
        deadline = time.monotonic() + give_up_after
        delay = 0.2
        warned = False
        while True:
            try:
                return fn()
            except (DatabaseUnavailable, psycopg.OperationalError) as exc:
                if time.monotonic() > deadline:
                    raise
                if not warned:
                    self.say(f"database unavailable during {what}, retrying: {exc}")
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _wake_all(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def _on_notify(self, event: Event) -> None:
        if event.payload.get("status") == RunStatus.QUEUED.value:
            self._wake_all()

    # -- main loop --------------------------------------------------------------------------

    def run(self) -> None:
        """Work until ``stop()`` (or until the queue is empty with exit_when_idle)."""
        self.say(f"started, concurrency {self.concurrency}")
        self._retry(
            "registration",
            lambda: queue.register_worker(
                self.db,
                self.worker_id,
                self.concurrency,
                getattr(self.executor, "backend_name", None),
            ),
        )
        listener = Listener(self.db, [RUNS_CHANNEL], self._on_notify, tick_seconds=0.5).start()
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True)
        heartbeat.start()
        slots = [
            threading.Thread(target=self._slot_loop, name=f"slot-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for t in slots:
            t.start()
        last_purge = 0.0
        last_beat = time.monotonic()
        try:
            while any(t.is_alive() for t in slots):
                if time.monotonic() - last_beat > 10:
                    last_beat = time.monotonic()
                    try:
                        queue.worker_heartbeat(self.db, self.worker_id, self.completed)
                    except (SimError, psycopg.Error):
                        pass  # the database is away; runs keep their own leases
                if time.monotonic() - last_purge > self.purge_every_seconds:
                    last_purge = time.monotonic()
                    try:
                        purged = queue.purge_stale(self.db)
                        if purged:
                            self.say(
                                f"purged {purged} run(s) unfinished after 24 h (status timeout)"
                            )
                    except (SimError, psycopg.Error) as exc:
                        self.say(f"purge skipped: {exc}")
                for t in slots:
                    t.join(timeout=0.5)
                if self.stopping.is_set():
                    self._drain()
                    break
        finally:
            self.stopping.set()
            self._wake_all()
            for t in slots:
                t.join(timeout=self.grace_seconds + 10)
            listener.stop()
            try:
                queue.worker_heartbeat(self.db, self.worker_id, self.completed, stopped=True)
            except (SimError, psycopg.Error):
                pass
            self.say(f"stopped after {self.completed} run(s)")

    def stop(self) -> None:
        self.stopping.set()
        self._wake_all()

    def _drain(self) -> None:
        """Give runs in hand the grace period, then cancel the rest for a release."""
        deadline = time.monotonic() + self.grace_seconds
        while time.monotonic() < deadline:
            with self._in_hand_lock:
                if not self._in_hand:
                    return
            time.sleep(0.1)
        with self._in_hand_lock:
            remaining = list(self._in_hand.values())
        for ctx in remaining:
            ctx.cancel_reason = "shutdown"
            ctx.cancelled.set()

    def _slot_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                row = self._retry("claim", lambda: queue.claim(self.db, self.worker_id, self.lease))
            except (SimError, psycopg.Error) as exc:
                self.say(f"claim failed: {exc}")
                row = None
            if row is None:
                if self.exit_when_idle:
                    return
                with self._wake:
                    self._wake.wait(self.poll_seconds)
                continue
            try:
                self._execute(row)
            except Exception:
                # The run keeps its lease until it lapses, then the claim takes it back
                # (bounded by its attempts); this slot goes on with the queue.
                _log.exception("worker slot failed on run %s", row["id"])
                self.say(f"run {row['id']}: internal error, left for the lease to expire")

    def _load(self, row: dict[str, Any]) -> tuple[Simulation, Patch | None]:
        with self.db.transaction() as conn:
            sim_row = sim_store.get(conn, row["simulation_id"])
            assert sim_row is not None
            patch = patch_store.get(conn, row["patch_id"]) if row["patch_id"] else None
        return sim_store.to_simulation(sim_row), patch

    def _execute(self, row: dict[str, Any]) -> None:
        run_id: UUID = row["id"]
        self.say(f"run {run_id} started (attempt {row['attempts']})")
        simulation, patch = self._retry("loading the run", lambda: self._load(row))
        ctx = RunContext(row, simulation, patch, LogSink(), self.max_run_time_ms)
        with self._in_hand_lock:
            self._in_hand[run_id] = ctx
        flusher_stop = threading.Event()
        flusher = threading.Thread(
            target=self._flush_loop, args=(ctx, flusher_stop), name=f"flush-{run_id}", daemon=True
        )
        flusher.start()
        try:
            try:
                outcome = self.executor.execute(ctx)
            except Exception as exc:
                _log.exception("executor failed on run %s", run_id)
                outcome = queue.Outcome(
                    RunStatus.ERROR, error_message=f"internal error: {type(exc).__name__}: {exc}"
                )
            flusher_stop.set()
            flusher.join()
            self._flush(ctx)
            if ctx.cancel_reason == "shutdown":
                released = self._retry(
                    "release",
                    lambda: queue.release(self.db, run_id, self.worker_id, "worker shutting down"),
                )
                self.say(
                    f"run {run_id} released to the queue (shutdown)"
                    if released
                    else f"run {run_id} was no longer ours at shutdown"
                )
                return
            if ctx.cancel_reason == "lost":
                self.say(f"run {run_id}: lease lost, another worker owns it now")
                return
            outcome = self._archive(ctx, outcome)
            if outcome.status is RunStatus.TIMEOUT:
                self.say(
                    f"run {run_id} timeout: killed after {self.max_run_time_ms} ms "
                    "(MAX_RUN_TIME_MS)"
                )
            done = self._retry(
                "finish", lambda: queue.finish(self.db, run_id, self.worker_id, outcome)
            )
            if done:
                self.completed += 1
                self.say(f"run {run_id} {outcome.status.value}")
            else:
                self.say(f"run {run_id}: result discarded, the run is no longer ours")
        finally:
            flusher_stop.set()
            with self._in_hand_lock:
                self._in_hand.pop(run_id, None)

    def _archive(self, ctx: RunContext, outcome: queue.Outcome) -> queue.Outcome:
        """Store ``<run_id>.log`` and ``<run_id>.report.json``; a failure never loses the run."""
        if self.artifacts is None:
            return outcome
        report = outcome.report or {
            "status": outcome.status.value,
            "reasons": list(outcome.reasons),
            "error": outcome.error_message,
        }
        result = archive_run(self.artifacts, str(ctx.run_id), ctx.log.text(), report)
        if result.archived:
            return replace(outcome, artifact_key=result.log_location)
        self.say(
            f"run {ctx.run_id}: archive missing ({result.missing_reason}); the log stays "
            "in the database"
        )
        return replace(outcome, artifact_error=result.missing_reason)

    # -- logs and heartbeats ----------------------------------------------------------------

    def _flush(self, ctx: RunContext) -> None:
        first, lines, truncated = ctx.log.pending()
        if not lines:
            return
        try:
            self._retry(
                "log flush",
                lambda: queue.append_log(self.db, ctx.run_id, first, lines, truncated=truncated),
                give_up_after=30.0,
            )
            ctx.log.mark_flushed(first + len(lines))
        except (SimError, psycopg.Error) as exc:
            self.say(f"run {ctx.run_id}: log lines not stored yet: {exc}")

    def _flush_loop(self, ctx: RunContext, stop: threading.Event) -> None:
        while not stop.wait(self.flush_seconds):
            self._flush(ctx)

    def _heartbeat_loop(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.2)
        while not self.stopping.is_set() or self._in_hand:
            with self._in_hand_lock:
                contexts = list(self._in_hand.values())
            for ctx in contexts:
                try:
                    beat = queue.renew(self.db, ctx.run_id, self.worker_id, self.lease)
                except (SimError, psycopg.Error):
                    continue  # the database is away; the next beat tries again
                if not beat.held:
                    ctx.cancel_reason = ctx.cancel_reason or "lost"
                    ctx.cancelled.set()
                elif beat.cancel_requested and not ctx.cancelled.is_set():
                    ctx.cancel_reason = "cancelled"
                    ctx.cancelled.set()
                    self.say(f"run {ctx.run_id}: cancel requested, killing the sandbox")
            time.sleep(min(interval, 1.0))
