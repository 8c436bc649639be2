"""The run queue, in ``sdk_simulation_runs``: launch, claim with a lease, renew, finish, cancel.

No separate janitor is needed: the claim statement itself takes back runs whose lease expired
(a worker that died), and gives up on a run after ``max_attempts`` claims, ending it ``error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from simcore import journal
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.model import JournalAction, RunStatus
from simcore.store import Database

DEFAULT_LEASE = timedelta(seconds=30)
PURGE_AFTER = timedelta(hours=24)
MAX_SEED = 2**63 - 1

RUN_COLUMNS = (
    "id, simulation_id, tenant_type, tenant_id, idempotency_key, seed, status, patch_id, "
    "metrics, reasons, artifact_s3_key, run_at, started_at, completed_at, worker_id, "
    "lease_until, attempts, max_attempts, cancel_requested, error_message, sandbox_backend, "
    "simulator_version, launched_by, log_lines, log_bytes, log_truncated, artifact_error"
)


@dataclass(frozen=True)
class Launch:
    run: dict[str, Any]
    created: bool
    """False when the idempotency key named a run launched before."""


def _validate_launch(seed: int, idempotency_key: str | None) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise InvalidInput("seed", f"must be an integer from 0 to {MAX_SEED}")
    if idempotency_key is not None and not (
        1 <= len(idempotency_key) <= 255 and idempotency_key.isprintable()
    ):
        raise InvalidInput("idempotency_key", "must be 1 to 255 printable characters")


def launch_run(
    db: Database,
    simulation_id: UUID,
    seed: int,
    idempotency_key: str | None,
    actor: str,
    *,
    max_attempts: int = 3,
) -> Launch:
    """Queue a run; the same key (within the simulation's tenant) returns the same run."""
    _validate_launch(seed, idempotency_key)
    with db.transaction() as conn:
        journal.mark_journaled(conn)
        sim = conn.execute(
            "SELECT id, tenant_type, tenant_id, patch_reference FROM sdk_simulations WHERE id = %s",
            (simulation_id,),
        ).fetchone()
        if sim is None:
            raise NotFound(f"simulation {simulation_id} not found")
        row = conn.execute(
            f"INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, tenant_id, "
            f"idempotency_key, seed, patch_id, launched_by, max_attempts) "
            f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            f"ON CONFLICT (tenant_type, tenant_id, idempotency_key) "
            f"WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING {RUN_COLUMNS}",
            (
                simulation_id,
                sim["tenant_type"],
                sim["tenant_id"],
                idempotency_key,
                seed,
                sim["patch_reference"],
                actor,
                max_attempts,
            ),
        ).fetchone()
        if row is not None:
            journal.append(
                conn,
                JournalAction.QUEUED,
                actor,
                run_id=row["id"],
                simulation_id=simulation_id,
                details={
                    "seed": seed,
                    "idempotency_key": idempotency_key,
                    "patch_id": str(row["patch_id"]) if row["patch_id"] else None,
                },
            )
            return Launch(row, True)
        existing = conn.execute(
            f"SELECT {RUN_COLUMNS} FROM sdk_simulation_runs WHERE tenant_type = %s "
            f"AND tenant_id = %s AND idempotency_key = %s",
            (sim["tenant_type"], sim["tenant_id"], idempotency_key),
        ).fetchone()
    assert existing is not None
    if existing["simulation_id"] != simulation_id or existing["seed"] != seed:
        raise Conflict(
            f"Idempotency-Key {idempotency_key!r} was already used for run {existing['id']} "
            f"(simulation {existing['simulation_id']}, seed {existing['seed']}); "
            "use a new key for a different launch"
        )
    return Launch(existing, False)


# One statement: an expired lease first (that run has waited longest), else the oldest
# queued run. Each CTE reads its own partial index; CTEs are evaluated on demand, so the
# queued one is only read when no lease has expired.
_CLAIM = f"""
WITH expired AS (
    SELECT id, status, worker_id FROM sdk_simulation_runs
     WHERE status = 'running' AND lease_until < now()
     ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED
), fresh AS (
    SELECT id, status, worker_id FROM sdk_simulation_runs
     WHERE status = 'queued'
     ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
), candidate AS (
    SELECT id, status AS previous_status, worker_id AS previous_worker FROM (
        SELECT * FROM expired UNION ALL SELECT * FROM fresh
    ) c LIMIT 1
)
UPDATE sdk_simulation_runs r SET
    status = CASE WHEN r.attempts >= r.max_attempts THEN 'error' ELSE 'running' END,
    error_message = CASE WHEN r.attempts >= r.max_attempts
        THEN 'gave up after ' || r.attempts || ' attempts: the worker running it stopped '
             || 'answering (last: ' || coalesce(r.worker_id, '?') || ')'
        ELSE r.error_message END,
    worker_id = CASE WHEN r.attempts >= r.max_attempts THEN r.worker_id ELSE %(worker)s END,
    lease_until = CASE WHEN r.attempts >= r.max_attempts THEN NULL
                       ELSE now() + %(lease)s END,
    attempts = CASE WHEN r.attempts >= r.max_attempts THEN r.attempts ELSE r.attempts + 1 END,
    started_at = CASE WHEN r.attempts >= r.max_attempts THEN r.started_at ELSE now() END
FROM candidate
WHERE r.id = candidate.id
RETURNING {", ".join("r." + c.strip() for c in RUN_COLUMNS.split(","))},
          candidate.previous_status, candidate.previous_worker
"""


def claim(db: Database, worker_id: str, lease: timedelta = DEFAULT_LEASE) -> dict[str, Any] | None:
    """Claim the next run for ``worker_id``; None when nothing is waiting.

    A run that has used all its attempts is ended ``error`` by the claim and the next one is
    tried, so the caller only ever receives a run to execute.
    """
    while True:
        with db.transaction() as conn:
            journal.mark_journaled(conn)
            row = conn.execute(_CLAIM, {"worker": worker_id, "lease": lease}).fetchone()
            if row is None:
                return None
            if row["status"] == RunStatus.ERROR:
                journal.append(
                    conn,
                    JournalAction.ERROR,
                    "system",
                    run_id=row["id"],
                    simulation_id=row["simulation_id"],
                    details={"reason": row["error_message"], "attempts": row["attempts"]},
                )
                continue
            details: dict[str, Any] = {"worker_id": worker_id, "attempt": row["attempts"]}
            if row["previous_status"] == RunStatus.RUNNING:
                details["reclaimed_from"] = row["previous_worker"]
                details["reason"] = "lease expired"
            journal.append(
                conn,
                JournalAction.STARTED,
                "system",
                run_id=row["id"],
                simulation_id=row["simulation_id"],
                details=details,
            )
            return row


@dataclass(frozen=True)
class Heartbeat:
    held: bool
    """False when the run is no longer ours (lease lost, cancelled and finished, purged)."""
    cancel_requested: bool = False


def renew(
    db: Database, run_id: UUID, worker_id: str, lease: timedelta = DEFAULT_LEASE
) -> Heartbeat:
    with db.transaction() as conn:
        row = conn.execute(
            "UPDATE sdk_simulation_runs SET lease_until = now() + %s "
            "WHERE id = %s AND worker_id = %s AND status = 'running' "
            "RETURNING cancel_requested",
            (lease, run_id, worker_id),
        ).fetchone()
    if row is None:
        return Heartbeat(False)
    return Heartbeat(True, bool(row["cancel_requested"]))


@dataclass(frozen=True)
class Outcome:
    status: RunStatus
    metrics: dict[str, Any] | None = None
    reasons: tuple[str, ...] = ()
    error_message: str | None = None
    artifact_key: str | None = None
    sandbox_backend: str | None = None
    simulator_version: str | None = None
    events: tuple[tuple[JournalAction, dict[str, Any]], ...] = ()
    """Journal entries the run produced on its way (applied_patch, rollback, killed...)."""
    report: dict[str, Any] | None = None
    """The full report, archived beside the log."""
    anonymized_errors: tuple[dict[str, Any], ...] = ()
    """Rows for ``sdk_anonymized_errors`` (already anonymized: no raw context)."""
    artifact_error: str | None = None


_FINAL_ACTION = {
    RunStatus.SUCCESS: JournalAction.COMPLETED,
    RunStatus.PARTIAL_SUCCESS: JournalAction.COMPLETED,
    RunStatus.FAILED: JournalAction.FAILED,
    RunStatus.TIMEOUT: JournalAction.TIMEOUT,
    RunStatus.CANCELLED: JournalAction.CANCELLED,
    RunStatus.ERROR: JournalAction.ERROR,
}


def finish(db: Database, run_id: UUID, worker_id: str, outcome: Outcome) -> bool:
    """Record a run's result; False (and nothing written) if the run is no longer ours."""
    if not outcome.status.terminal:
        raise ValueError(f"finish needs a final status, not {outcome.status}")
    with db.transaction() as conn:
        journal.mark_journaled(conn)
        row = conn.execute(
            "UPDATE sdk_simulation_runs SET status = %s, metrics = %s, reasons = %s, "
            "error_message = %s, artifact_s3_key = coalesce(%s, artifact_s3_key), "
            "artifact_error = %s, "
            "sandbox_backend = %s, simulator_version = %s, completed_at = now() "
            "WHERE id = %s AND worker_id = %s AND status = 'running' "
            "RETURNING simulation_id, patch_id, tenant_type, tenant_id, launched_by",
            (
                outcome.status.value,
                Jsonb(outcome.metrics) if outcome.metrics is not None else None,
                Jsonb(list(outcome.reasons)),
                outcome.error_message,
                outcome.artifact_key,
                outcome.artifact_error,
                outcome.sandbox_backend,
                outcome.simulator_version,
                run_id,
                worker_id,
            ),
        ).fetchone()
        if row is None:
            return False
        for action, details in outcome.events:
            journal.append(
                conn,
                action,
                "system",
                run_id=run_id,
                simulation_id=row["simulation_id"],
                details=details,
            )
        details = {"status": outcome.status.value, "reasons": list(outcome.reasons)}
        if outcome.metrics is not None:
            details["success_rate"] = outcome.metrics.get("success_rate")
        if outcome.error_message:
            details["error"] = outcome.error_message
        if outcome.artifact_key:
            details["artifact"] = outcome.artifact_key
        if outcome.artifact_error:
            details["archive_missing"] = outcome.artifact_error
        journal.append(
            conn,
            _FINAL_ACTION[outcome.status],
            "system",
            run_id=run_id,
            simulation_id=row["simulation_id"],
            details=details,
        )
        if outcome.anonymized_errors:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO sdk_anonymized_errors (run_id, error_signature, category, "
                    "sdk_language, frequency, context_hash) VALUES (%s, %s, %s, %s, %s, %s)",
                    [
                        (
                            run_id,
                            e["error_signature"],
                            e["category"],
                            e["sdk_language"],
                            e["frequency"],
                            e["context_hash"],
                        )
                        for e in outcome.anonymized_errors
                    ],
                )
        if outcome.status is RunStatus.SUCCESS and row["patch_id"] is not None:
            conn.execute(
                "INSERT INTO sdk_patch_approvals (simulation_run_id, patch_id, tenant_type, "
                "tenant_id, requested_by) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (simulation_run_id) DO NOTHING",
                (run_id, row["patch_id"], row["tenant_type"], row["tenant_id"], row["launched_by"]),
            )
    return True


def release(db: Database, run_id: UUID, worker_id: str, reason: str) -> bool:
    """Give a run back to the queue (worker shutting down); its attempt is not counted."""
    with db.transaction() as conn:
        journal.mark_journaled(conn)
        row = conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'queued', worker_id = NULL, "
            "lease_until = NULL, attempts = greatest(attempts - 1, 0), started_at = NULL "
            "WHERE id = %s AND worker_id = %s AND status = 'running' RETURNING simulation_id",
            (run_id, worker_id),
        ).fetchone()
        if row is None:
            return False
        journal.append(
            conn,
            JournalAction.RELEASED,
            "system",
            run_id=run_id,
            simulation_id=row["simulation_id"],
            details={"worker_id": worker_id, "reason": reason},
        )
    return True


def cancel_run(db: Database, run_id: UUID, actor: str) -> dict[str, Any]:
    """Cancel a queued run at once; ask the worker of a running run to kill its sandbox."""
    with db.transaction() as conn:
        journal.mark_journaled(conn)
        row = conn.execute(
            "SELECT id, simulation_id, status, worker_id FROM sdk_simulation_runs "
            "WHERE id = %s FOR UPDATE",
            (run_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        status = RunStatus(row["status"])
        if status.terminal:
            raise Conflict(f"run {run_id} is already {status.value}: nothing to cancel")
        if status is RunStatus.QUEUED:
            conn.execute(
                "UPDATE sdk_simulation_runs SET status = 'cancelled', "
                "error_message = %s WHERE id = %s",
                (f"cancelled by {actor} before it started", run_id),
            )
            journal.append(
                conn,
                JournalAction.CANCELLED,
                actor,
                run_id=run_id,
                simulation_id=row["simulation_id"],
                details={"was": "queued"},
            )
        else:
            conn.execute(
                "UPDATE sdk_simulation_runs SET cancel_requested = true, "
                "error_message = %s WHERE id = %s",
                (f"cancelled by {actor}", run_id),
            )
            journal.append(
                conn,
                JournalAction.CANCELLED,
                actor,
                run_id=run_id,
                simulation_id=row["simulation_id"],
                details={"was": "running", "worker_id": row["worker_id"], "requested": True},
            )
        result = conn.execute(
            f"SELECT {RUN_COLUMNS} FROM sdk_simulation_runs WHERE id = %s", (run_id,)
        ).fetchone()
    assert result is not None
    return result


def purge_stale(db: Database, older_than: timedelta = PURGE_AFTER) -> int:
    """The runbook's 24-hour purge: unfinished runs older than the limit end ``timeout``."""
    with db.transaction() as conn:
        journal.mark_journaled(conn)
        rows = conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'timeout', error_message = %s "
            "WHERE status IN ('queued', 'running') AND run_at < now() - %s "
            "RETURNING id, simulation_id, status",
            (f"not finished within {older_than}: purged", older_than),
        ).fetchall()
        for row in rows:
            journal.append(
                conn,
                JournalAction.TIMEOUT,
                "system",
                run_id=row["id"],
                simulation_id=row["simulation_id"],
                details={"reason": "purged", "older_than_s": int(older_than.total_seconds())},
            )
    return len(rows)


def append_log(
    db: Database, run_id: UUID, first_seq: int, lines: list[str], *, truncated: bool = False
) -> None:
    """Store a batch of log lines and wake the live tails."""
    if not lines and not truncated:
        return
    with db.transaction() as conn:
        if lines:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO sdk_simulation_run_logs (run_id, seq, line) "
                    "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                    [(run_id, first_seq + i, line) for i, line in enumerate(lines)],
                )
        conn.execute(
            "UPDATE sdk_simulation_runs SET log_lines = greatest(log_lines, %s), "
            "log_bytes = log_bytes + %s, log_truncated = log_truncated OR %s WHERE id = %s",
            (first_seq + len(lines), sum(len(x.encode()) + 1 for x in lines), truncated, run_id),
        )
        conn.execute("SELECT pg_notify('simtui_logs', %s)", (str(run_id),))


def read_log(
    conn: psycopg.Connection[Any], run_id: UUID, after_seq: int = -1, limit: int = 5000
) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT seq, line FROM sdk_simulation_run_logs WHERE run_id = %s AND seq > %s "
        "ORDER BY seq LIMIT %s",
        (run_id, after_seq, limit),
    ).fetchall()
    return [(int(r["seq"]), str(r["line"])) for r in rows]


def register_worker(db: Database, worker_id: str, concurrency: int, sandbox: str | None) -> None:
    import os
    import socket

    with db.transaction() as conn:
        conn.execute(
            "INSERT INTO sdk_simulation_workers (worker_id, hostname, pid, concurrency, "
            "sandbox) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (worker_id) DO UPDATE SET "
            "heartbeat_at = now(), stopped_at = NULL",
            (worker_id, socket.gethostname(), os.getpid(), concurrency, sandbox),
        )


def worker_heartbeat(
    db: Database, worker_id: str, runs_done: int, *, stopped: bool = False
) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE sdk_simulation_workers SET heartbeat_at = now(), runs_done = %s, "
            "stopped_at = CASE WHEN %s THEN now() END WHERE worker_id = %s",
            (runs_done, stopped, worker_id),
        )


def live_workers(
    conn: psycopg.Connection[Any], within: timedelta = timedelta(seconds=90)
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = conn.execute(
        "SELECT worker_id, hostname, pid, concurrency, sandbox, started_at, heartbeat_at, "
        "runs_done FROM sdk_simulation_workers WHERE stopped_at IS NULL "
        "AND heartbeat_at > now() - %s ORDER BY started_at",
        (within,),
    ).fetchall()
    return rows
