"""The worker: claims runs, executes them end to end, streams their logs, records results.

Crash safety rests on the lease. While a run is in hand a heartbeat renews its lease; if this
process dies, the lease lapses and the next claim (by any worker) takes the run back. On
SIGTERM the worker stops claiming, lets the runs in hand finish for a grace period, then kills
their sandboxes and gives the runs back to the queue.

Per run, a slot makes one round trip: one statement (``queue.step``) records the run it has
just executed (status, result, journal entries, its last log lines) and claims the next,
returning its simulation and patch. The rest is shared by all the runs in hand and paced by
time, not by runs: log lines and lease renewals (one statement for all runs, from one thread),
change notifications (sent after commit, a few at a time) and sealing of the journal.
"""

from __future__ import annotations

import functools
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
from psycopg_pool import ConnectionPool

from simcore import journal, queue
from simcore.artifacts import ArtifactStore, archive_run
from simcore.errors import DatabaseUnavailable, SimError
from simcore.events import RUNS_CHANNEL, Event, Listener
from simcore.model import Patch, RunStatus, Simulation
from simcore.store import Database, patches as patch_store, simulations as sim_store

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
    flush_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while lines are being stored, so that no two writers store the same ones."""

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


class _Deferred:
    """Sends the notifications of a worker's changes after their commit, a few at a time.

    A transaction that NOTIFYs holds a server-wide lock through its commit; sending from a
    separate statement every ``every`` seconds keeps the runs' own commits out of that line.
    Listeners see a change at most that much later; one lost with the database falls back on
    their polling.
    """

    def __init__(self, send: Callable[[list[tuple[str, str]]], None], every: float) -> None:
        self._send = send
        self._every = every
        self._pending: list[tuple[str, str]] = []
        self._cond = threading.Condition()
        self._closing = False
        # Set with _closing; a separate event so that a push (once per run) never wakes the
        # thread in the middle of its pause, while close ends the pause at once.
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)

    def start(self) -> _Deferred:
        self._thread.start()
        return self

    def push(self, events: tuple[tuple[str, str], ...]) -> None:
        if events:
            with self._cond:
                self._pending.extend(events)
                self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._closed.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return
                closing = self._closing
            if not closing:
                self._closed.wait(self._every)  # let the next few runs' changes join this one
            with self._cond:
                batch, self._pending = self._pending, []
            try:
                self._send(batch)
            except (SimError, psycopg.Error) as exc:
                _log.debug("%d notification(s) not sent: %s", len(batch), exc)


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
        seal_every_seconds: float = 0.5,
        notify_every_seconds: float = 0.1,
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
        self.seal_every_seconds = seal_every_seconds
        self.notify_every_seconds = notify_every_seconds
        self.on_event = on_event or (lambda msg: _log.info("%s", msg))
        self.stopping = threading.Event()
        self._wake = threading.Condition()
        self._tick = threading.Event()
        self._in_hand: dict[UUID, RunContext] = {}
        self._in_hand_lock = threading.Lock()
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._slot_pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._deferred: _Deferred | None = None
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

    @property
    def pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """Connections for the upkeep (``queue.open_worker_pool``), open while it runs.

        Log batches, lease renewals, notifications and seals go here; the slots' own
        statements have ``slot_pool``.
        """
        if self._pool is None:
            raise RuntimeError("the worker is not running")
        return self._pool

    @property
    def slot_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """Connections for the slots' statements (``queue.step``), open while it runs."""
        if self._slot_pool is None:
            raise RuntimeError("the worker is not running")
        return self._slot_pool

    def _send_deferred(self, events: list[tuple[str, str]]) -> None:
        with self.pool.connection() as conn:
            queue.send_notifications(conn, events)

    def _notify(self, events: tuple[tuple[str, str], ...]) -> None:
        if self._deferred is not None:
            self._deferred.push(events)

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
        # A slot holds a connection for one statement at a time: a few serve many slots. The
        # upkeep has connections of its own, so that it never takes the one a slot last used:
        # a pool hands out its connections in turn, and a statement sent to a server process
        # that has just run the same one costs it less. With one slot and a shared pool of
        # three, the no-op benchmark's step took 1,200-1,290 us of server CPU when the
        # connections took turns against 830 us on one connection.
        self._slot_pool = self._retry(
            "connecting",
            lambda: queue.open_worker_pool(
                self.db, min(self.concurrency, 8), name="simcore-worker-slots"
            ),
        )
        try:
            self._pool = self._retry("connecting", lambda: queue.open_worker_pool(self.db, 2))
        except BaseException:
            self._slot_pool.close()
            raise
        self._deferred = _Deferred(self._send_deferred, self.notify_every_seconds).start()
        # Slots only wait for new runs when they do not exit on an empty queue.
        listener = (
            None
            if self.exit_when_idle
            else Listener(self.db, [RUNS_CHANNEL], self._on_notify, tick_seconds=0.5).start()
        )
        upkeep = threading.Thread(target=self._upkeep_loop, name="upkeep", daemon=True)
        upkeep.start()
        slots = [
            threading.Thread(target=self._slot_loop, name=f"slot-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for t in slots:
            t.start()
        last_purge = 0.0
        last_beat = time.monotonic()
        last_seal = time.monotonic()
        sealed_upto = 0
        try:
            while any(t.is_alive() for t in slots):
                if self._tick.wait(0.25):
                    self._tick.clear()
                if self.stopping.is_set():
                    self._drain()
                    break
                now = time.monotonic()
                if now - last_beat > 10:
                    last_beat = now
                    try:
                        queue.worker_heartbeat(self.db, self.worker_id, self.completed)
                    except (SimError, psycopg.Error):
                        pass  # the database is away; runs keep their own leases
                if now - last_purge > self.purge_every_seconds:
                    last_purge = now
                    try:
                        purged = queue.purge_stale(self.db)
                        if purged:
                            self.say(
                                f"purged {purged} run(s) unfinished after 24 h (status timeout)"
                            )
                    except (SimError, psycopg.Error) as exc:
                        self.say(f"purge skipped: {exc}")
                # Seal what this worker journaled (and anyone else's entries with it) every
                # so often, off the slots' path; now and then even when idle, for the
                # entries of launches and approvals.
                since = now - last_seal
                if since > 10 * self.seal_every_seconds or (
                    since > self.seal_every_seconds and self.completed != sealed_upto
                ):
                    last_seal, sealed_upto = now, self.completed
                    self._seal()
        finally:
            self.stopping.set()
            self._wake_all()
            for t in slots:
                t.join(timeout=self.grace_seconds + 10)
            upkeep.join(timeout=5)
            self._seal(wait=True)
            self._deferred.close()
            if listener is not None:
                listener.stop()
            self._pool.close()
            self._slot_pool.close()
            try:
                queue.worker_heartbeat(self.db, self.worker_id, self.completed, stopped=True)
            except (SimError, psycopg.Error):
                pass
            self.say(f"stopped after {self.completed} run(s)")

    def stop(self) -> None:
        self.stopping.set()
        self._tick.set()
        self._wake_all()

    def _seal(self, *, wait: bool = False) -> None:
        """Seal the journal's committed entries, unless another sealer is at it already.

        With ``wait`` (a worker stopping), wait for that sealer and seal after it: it may
        have read the unsealed entries before this worker's last ones were committed.
        """
        try:
            with self.pool.connection() as conn:
                while journal.seal_once(conn, wait=wait) == journal.SEAL_BATCH:
                    pass
        except (SimError, psycopg.Error) as exc:
            _log.debug("journal not sealed this time: %s", exc)

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

    # -- one slot: finish, claim, execute ---------------------------------------------------

    def _slot_loop(self) -> None:
        try:
            self._slot()
        finally:
            self._tick.set()

    def _slot(self) -> None:
        # The run just executed, recorded together with the claim of the next one.
        finishing: tuple[RunContext, queue.Outcome] | None = None
        while True:
            claim = not self.stopping.is_set()
            if finishing is None and not claim:
                return
            what = "claim" if finishing is None else "finish"
            try:
                result: queue.Step | None = self._retry(
                    what, functools.partial(self._step, finishing, claim)
                )
            except (SimError, psycopg.Error) as exc:
                self.say(f"{what} failed: {exc}")
                result = None
            if finishing is not None:
                self._finished(*finishing, result.finished if result is not None else None)
                finishing = None
            claimed = result.claimed if result is not None else None
            if claimed is None:
                if self.exit_when_idle:
                    return
                with self._wake:
                    self._wake.wait(self.poll_seconds)
                continue
            if claimed.run["status"] == RunStatus.ERROR:
                continue  # out of attempts: the claim ended it and journaled why
            try:
                finishing = self._execute(claimed)
            except Exception:
                # The run keeps its lease until it lapses, then the claim takes it back
                # (bounded by its attempts); this slot goes on with the queue.
                _log.exception("worker slot failed on run %s", claimed.run["id"])
                self.say(f"run {claimed.run['id']}: internal error, left for the lease to expire")
                with self._in_hand_lock:
                    self._in_hand.pop(claimed.run["id"], None)

    def _step(self, finishing: tuple[RunContext, queue.Outcome] | None, claim: bool) -> queue.Step:
        """One statement: finish the run just executed (with its last log lines), claim."""
        if finishing is None:
            with self.slot_pool.connection() as conn:
                result = queue.step(conn, self.worker_id, lease=self.lease, claim=claim)
        else:
            ctx, outcome = finishing
            # The flusher must not store the same lines meanwhile.
            with ctx.log.flush_lock:
                first, lines, truncated = ctx.log.pending()
                finish = queue.Finish(
                    ctx.run_id,
                    outcome,
                    first,
                    tuple(lines),
                    truncated,
                    patched=ctx.run["patch_id"] is not None,
                )
                with self.slot_pool.connection() as conn:
                    result = queue.step(
                        conn, self.worker_id, lease=self.lease, finish=finish, claim=claim
                    )
                if result.finished:
                    ctx.log.mark_flushed(first + len(lines))
        self._notify(result.notifications)
        return result

    def _finished(self, ctx: RunContext, outcome: queue.Outcome, done: bool | None) -> None:
        with self._in_hand_lock:
            self._in_hand.pop(ctx.run_id, None)
            if done:
                self.completed += 1
        if done:
            self.say(f"run {ctx.run_id} {outcome.status.value}")
        elif done is not None:
            self.say(f"run {ctx.run_id}: result discarded, the run is no longer ours")
        else:
            # Its lease lapses and the claim takes it back (bounded by its attempts).
            self.say(f"run {ctx.run_id}: result not recorded, left for the lease to expire")

    def _execute(self, claimed: queue.Claimed) -> tuple[RunContext, queue.Outcome] | None:
        """Execute a claimed run; returns what to finish, or None if it is not ours to finish."""
        row = claimed.run
        run_id: UUID = row["id"]
        self.say(f"run {run_id} started (attempt {row['attempts']})")
        simulation = sim_store.to_simulation(claimed.simulation)
        patch = patch_store.to_patch(claimed.patch) if claimed.patch is not None else None
        ctx = RunContext(row, simulation, patch, LogSink(), self.max_run_time_ms)
        with self._in_hand_lock:
            self._in_hand[run_id] = ctx
        try:
            outcome = self.executor.execute(ctx)
        except Exception as exc:
            _log.exception("executor failed on run %s", run_id)
            outcome = queue.Outcome(
                RunStatus.ERROR, error_message=f"internal error: {type(exc).__name__}: {exc}"
            )
        if ctx.cancel_reason in ("shutdown", "lost"):
            try:
                self._flush(ctx, retry=True)
                if ctx.cancel_reason == "lost":
                    self.say(f"run {run_id}: lease lost, another worker owns it now")
                    return None
                released = self._retry(
                    "release",
                    lambda: queue.release(self.db, run_id, self.worker_id, "worker shutting down"),
                )
                self.say(
                    f"run {run_id} released to the queue (shutdown)"
                    if released
                    else f"run {run_id} was no longer ours at shutdown"
                )
                return None
            finally:
                with self._in_hand_lock:
                    self._in_hand.pop(run_id, None)
        outcome = self._archive(ctx, outcome)
        if outcome.status is RunStatus.TIMEOUT:
            self.say(
                f"run {run_id} timeout: killed after {self.max_run_time_ms} ms (MAX_RUN_TIME_MS)"
            )
        return ctx, outcome

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

    # -- logs and leases --------------------------------------------------------------------

    def _flush(self, ctx: RunContext, *, retry: bool = False) -> None:
        def store() -> None:
            with ctx.log.flush_lock:
                first, lines, truncated = ctx.log.pending()
                if not lines:
                    return
                with self.pool.connection() as conn:
                    event = queue.store_log(conn, ctx.run_id, first, lines, truncated=truncated)
                ctx.log.mark_flushed(first + len(lines))
            if event is not None:
                self._notify((event,))

        try:
            if retry:
                self._retry("log flush", store, give_up_after=30.0)
            else:
                store()
        except (SimError, psycopg.Error) as exc:
            self.say(f"run {ctx.run_id}: log lines not stored yet: {exc}")

    def _upkeep_loop(self) -> None:
        """Streams the logs of the runs in hand, and renews their leases, all runs at once."""
        interval = min(max(self.lease.total_seconds() / 3, 0.2), 1.0)
        last_renew = time.monotonic()
        while not self.stopping.is_set() or self._in_hand:
            if self.stopping.is_set():
                time.sleep(self.flush_seconds)  # runs in hand: their logs until they end
            else:
                self.stopping.wait(self.flush_seconds)  # a stop ends the wait at once
            with self._in_hand_lock:
                contexts = list(self._in_hand.values())
            for ctx in contexts:
                self._flush(ctx)
            if time.monotonic() - last_renew < interval or not contexts:
                continue
            last_renew = time.monotonic()
            try:
                with self.pool.connection() as conn:
                    beats = queue.renew_all(
                        conn, [c.run_id for c in contexts], self.worker_id, self.lease
                    )
            except (SimError, psycopg.Error):
                continue  # the database is away; the next beat tries again
            for ctx in contexts:
                beat = beats[ctx.run_id]
                if not beat.held:
                    ctx.cancel_reason = ctx.cancel_reason or "lost"
                    ctx.cancelled.set()
                elif beat.cancel_requested and not ctx.cancelled.is_set():
                    ctx.cancel_reason = "cancelled"
                    ctx.cancelled.set()
                    self.say(f"run {ctx.run_id}: cancel requested, killing the sandbox")
