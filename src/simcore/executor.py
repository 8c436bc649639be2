"""The worker's executor: one queued run through ``run_simulation`` in a sandbox.

It adds to the bare simulation what a run in the queue needs: the log goes to the run's log
sink (and from there to the database and the artifact store), a cancel from ops kills the
sandbox, and the report's events become journal entries.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from simcore import queue, sira
from simcore.config import Settings
from simcore.enums import JournalAction, RunStatus
from simcore.errors import SimError
from simcore.runner import run_simulation
from simcore.sandbox.base import Sandbox, SandboxBackend, SandboxSpec
from simcore.store import Database
from simcore.worker import RunContext, Worker


class _TrackingBackend:
    """Wraps a backend to keep a handle on the sandboxes it starts, so they can be killed."""

    def __init__(self, inner: SandboxBackend, run_id: str | None = None) -> None:
        self.inner = inner
        self.run_id = run_id
        self.name = inner.name
        self.parallel_phases: bool = getattr(inner, "parallel_phases", False)
        self.sandboxes: list[Sandbox] = []
        self._lock = threading.Lock()
        self._killed = False

    def check(self) -> str:
        return self.inner.check()

    def start(self, spec: SandboxSpec) -> Sandbox:
        if self.run_id is not None and spec.run_id is None:
            spec = replace(spec, run_id=self.run_id)
        sandbox = self.inner.start(spec)
        with self._lock:
            self.sandboxes.append(sandbox)
            if self._killed:
                sandbox.kill()
        return sandbox

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            for sandbox in self.sandboxes:
                sandbox.kill()


def select_backend(settings: Settings) -> SandboxBackend:
    """The sandbox backend the settings ask for (``auto``: docker if an engine answers)."""
    from simcore.sandbox.selection import select

    return select(settings.sandbox)


def journal_events(events: dict[str, Any]) -> tuple[tuple[JournalAction, dict[str, Any]], ...]:
    """Journal entries for what the patch did: applied (counted), each rollback."""
    counts: dict[str, dict[str, int]] = events.get("counts", {})
    patched = counts.get("patched", {})
    out: list[tuple[JournalAction, dict[str, Any]]] = []
    applied = patched.get("patch_applied", 0)
    if applied:
        out.append(
            (
                JournalAction.APPLIED_PATCH,
                {"count": applied, "errors": patched.get("patch_error", 0)},
            )
        )
    for event in events.get("notable", []):
        if event.get("name") == "rollback":
            out.append(
                (
                    JournalAction.ROLLBACK,
                    {
                        "phase": event.get("phase"),
                        "op_id": event.get("op_id"),
                        "detail": event.get("detail"),
                    },
                )
            )
    return tuple(out)


class SandboxExecutor:
    def __init__(self, backend: SandboxBackend) -> None:
        self.backend = backend
        self.backend_name = backend.name

    def execute(self, ctx: RunContext) -> queue.Outcome:
        tracking = _TrackingBackend(self.backend, str(ctx.run_id))
        stop_watch = threading.Event()

        def watch_cancel() -> None:
            while not stop_watch.is_set():
                if ctx.cancelled.wait(0.2):
                    tracking.kill()
                    return

        watcher = threading.Thread(target=watch_cancel, name="cancel-watch", daemon=True)
        watcher.start()
        try:
            report = run_simulation(
                ctx.simulation.scenario,
                ctx.simulation.sdk_language,
                ctx.seed,
                ctx.patch,
                tracking,
                ctx.max_run_time_ms,
                on_log=ctx.log.write,
            )
        except SimError as exc:
            return queue.Outcome(
                RunStatus.ERROR, error_message=str(exc), sandbox_backend=self.backend.name
            )
        finally:
            stop_watch.set()
            watcher.join(timeout=1)
        if ctx.cancelled.is_set():
            return queue.Outcome(
                RunStatus.CANCELLED,
                error_message=f"sandbox killed ({ctx.cancel_reason})",
                sandbox_backend=self.backend.name,
                events=((JournalAction.KILLED, {"reason": ctx.cancel_reason}),),
            )
        events = journal_events(report.events)
        if report.status is RunStatus.TIMEOUT:
            events += (
                (
                    JournalAction.KILLED,
                    {"reason": "MAX_RUN_TIME_MS", "max_run_time_ms": ctx.max_run_time_ms},
                ),
            )
        error = "; ".join(report.reasons) if report.status is RunStatus.ERROR else None
        anonymized: tuple[dict[str, Any], ...] = ()
        if report.error_events:
            # Only a signature, a frequency and a hash of the redacted context leave here.
            records = sira.anonymize_errors(
                report.error_events,
                total_requests=ctx.simulation.scenario.total_requests,
                sdk_language=ctx.simulation.sdk_language,
            )
            anonymized = tuple(r.to_row() for r in records)
        return queue.Outcome(
            report.status,
            metrics=report.metrics or None,
            reasons=report.reasons,
            error_message=error,
            sandbox_backend=self.backend.name,
            simulator_version=report.simulator_version,
            events=events,
            report=report.to_dict(),
            anonymized_errors=anonymized,
        )


def make_executor(settings: Settings) -> SandboxExecutor:
    return SandboxExecutor(select_backend(settings))


def make_worker(settings: Settings, db: Database, **kwargs: Any) -> Worker:
    """A worker wired as configured: sandbox backend, artifact store, run time limit."""
    from simcore.artifacts import open_store

    kwargs.setdefault("max_run_time_ms", settings.max_run_time_ms)
    return Worker(db, make_executor(settings), artifacts=open_store(settings), **kwargs)
