"""The run queue, in ``sdk_simulation_runs``: launch, claim with a lease, renew, finish, cancel.

No separate janitor is needed: the claim statement itself takes back runs whose lease expired
(a worker that died), and gives up on a run after ``max_attempts`` claims, ending it ``error``.

A worker's hot path is ``step``: the finish of one run and the claim of the next in one
statement, on a connection of ``open_worker_pool``, with the run change notifications sent
after commit, several at a time (``send_notifications``). ``claim`` and ``finish`` are the
same statements for callers that hold a pooled connection of ``Database``.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from simcore import journal
from simcore.enums import JournalAction, RunStatus
from simcore.errors import Conflict, InvalidInput, NotFound
from simcore.events import LOGS_CHANNEL, RUNS_CHANNEL
from simcore.store import (
    Database,
    patches as patch_store,
    prepared,
    runs as run_store,
    simulations as sim_store,
)

DEFAULT_LEASE = timedelta(seconds=30)
PURGE_AFTER = timedelta(hours=24)
MAX_SEED = 2**63 - 1
DRAWN_SEED_LIMIT = 2**31
"""A seed drawn for a launch without one is below this: short enough to read out and type."""

RUN_COLUMNS = run_store.COLUMNS


@dataclass(frozen=True)
class Launch:
    run: dict[str, Any]
    created: bool
    """False when the idempotency key named a run launched before."""


def _validate_launch(seed: int | None, idempotency_key: str | None) -> None:
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED
    ):
        raise InvalidInput("seed", f"must be an integer from 0 to {MAX_SEED}")
    if idempotency_key is not None and not (
        1 <= len(idempotency_key) <= 255 and idempotency_key.isprintable()
    ):
        raise InvalidInput("idempotency_key", "must be 1 to 255 printable characters")


def launch_run(
    db: Database,
    simulation_id: UUID,
    seed: int | None,
    idempotency_key: str | None,
    actor: str,
    *,
    max_attempts: int = 3,
) -> Launch:
    """Queue a run; the same key (within the simulation's tenant) returns the same run.

    ``seed`` None draws one for a new run. With a key already used, None matches the first
    run's seed, whatever it was: a launch retried as it was first typed (no seed) finds its
    run again instead of conflicting with the seed drawn the first time.
    """
    _validate_launch(seed, idempotency_key)
    explicit = seed is not None
    if seed is None:
        seed = secrets.randbelow(DRAWN_SEED_LIMIT)
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
    if existing["simulation_id"] != simulation_id or (explicit and existing["seed"] != seed):
        raise Conflict(
            f"Idempotency-Key {idempotency_key!r} was already used for run {existing['id']} "
            f"(simulation {existing['simulation_id']}, seed {existing['seed']}); "
            "use a new key for a different launch"
        )
    return Launch(existing, False)


# -- claim and finish ---------------------------------------------------------------------------
#
# Both are parts of one statement built here, so that a worker that has just finished a run
# claims its next one in the same statement: one round trip and one commit per run. Each part
# journals what it does in the same statement (sdk_journal_append is a plain INSERT now,
# sealed later: see simcore.journal), and the claim returns the run's simulation and patch,
# so that executing it needs no other query.

# An expired lease first (that run has waited longest), else the oldest queued run. Each CTE
# reads its own partial index; CTEs are evaluated on demand, so the queued one is only read
# when no lease has expired. The run being finished in the same statement is not "expired",
# whatever its lease says: one statement must not update a row twice.
# The columns are named, not r.*: a prepared statement whose result changes shape (a column
# added by a migration while workers run) would fail until the worker restarted. Only id is
# also a column of the candidate.
_RUN_RETURNING = "r.id, " + RUN_COLUMNS.removeprefix("id, ")
_CLAIM_CTES = f"""
expired AS (
    SELECT id, status, worker_id, attempts, max_attempts FROM sdk_simulation_runs
     WHERE status = 'running' AND lease_until < now() AND id IS DISTINCT FROM %(run)s::uuid
     ORDER BY lease_until LIMIT 1 FOR UPDATE SKIP LOCKED
), fresh AS (
    SELECT id, status, worker_id, attempts, max_attempts FROM sdk_simulation_runs
     WHERE status = 'queued'
     ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED
), candidate AS (
    SELECT id, status AS previous_status, worker_id AS previous_worker,
           attempts >= max_attempts AS gave_up
      FROM (SELECT * FROM expired UNION ALL SELECT * FROM fresh) c LIMIT 1
), claimed AS (
    UPDATE sdk_simulation_runs r SET
        status = CASE WHEN gave_up THEN 'error' ELSE 'running' END,
        error_message = CASE WHEN gave_up
            THEN 'gave up after ' || r.attempts || ' attempts: the worker running it stopped '
                 || 'answering (last: ' || coalesce(r.worker_id, '?') || ')'
            ELSE r.error_message END,
        worker_id = CASE WHEN gave_up THEN r.worker_id ELSE %(worker)s END,
        lease_until = CASE WHEN gave_up THEN NULL ELSE now() + %(lease)s END,
        attempts = r.attempts + (NOT gave_up)::integer,
        started_at = CASE WHEN gave_up THEN r.started_at ELSE now() END
      FROM candidate WHERE r.id = candidate.id
    RETURNING {_RUN_RETURNING}, previous_status, previous_worker
)"""

# One INSERT for the entries of both parts (each INSERT into a table prepares its constraints
# and triggers anew): the finished run's own events and final entry, in that order, then the
# claimed run's `started` (or `error`, when it is out of attempts).
_JOURNAL_CTE = """
journal AS (
    INSERT INTO sdk_simulation_journal (run_id, simulation_id, action, actor, details, created_at)
    SELECT run_id, simulation_id, action, 'system', details, clock_timestamp() FROM ({parts}) e
     ORDER BY part, ord
)"""
_FINISH_ENTRIES = """
    SELECT 1 AS part, ord, done.id AS run_id, done.simulation_id, entry ->> 'action' AS action,
           entry -> 'details' AS details
      FROM done, jsonb_array_elements(%(entries)s::jsonb) WITH ORDINALITY AS e(entry, ord)"""
_CLAIM_ENTRIES = """
    SELECT 2 AS part, 1 AS ord, c.id AS run_id, c.simulation_id,
           CASE WHEN c.status = 'error' THEN 'error' ELSE 'started' END AS action,
           CASE WHEN c.status = 'error'
                THEN jsonb_build_object('reason', c.error_message, 'attempts', c.attempts)
                WHEN c.previous_status = 'running'
                THEN jsonb_build_object('worker_id', %(worker)s::text, 'attempt', c.attempts,
                                        'reclaimed_from', c.previous_worker,
                                        'reason', 'lease expired')
                ELSE jsonb_build_object('worker_id', %(worker)s::text, 'attempt', c.attempts)
           END AS details
      FROM claimed c"""

# Status and result, the journal entries (the run's own events, then the final one, in that
# order), the last log lines, anonymized errors and the approval request: all or nothing. The
# optional parts are left out of the statement when there is nothing for them to write: an
# empty INSERT still opens its table and indexes.
# "(status = 'running') IS TRUE" where a run is found by id: written plainly, the condition
# lets the planner prefer the partial index on running runs (WHERE status = 'running') to the
# primary key, and walk every entry that index still holds for runs finished since the last
# vacuum (82 buffers instead of 3 in a benchmark, with a generic plan); IS TRUE is the same
# test for a NOT NULL column, and does not match the index's predicate.
_FINISH_CTES = """
done AS (
    UPDATE sdk_simulation_runs SET status = %(status)s, metrics = %(metrics)s,
        reasons = %(reasons)s, error_message = %(error)s,
        artifact_s3_key = coalesce(%(artifact)s, artifact_s3_key),
        artifact_error = %(artifact_error)s, sandbox_backend = %(backend)s,
        simulator_version = %(version)s, completed_at = now(){log_counts}
    WHERE id = %(run)s AND worker_id = %(worker)s AND (status = 'running') IS TRUE
    RETURNING id, simulation_id, patch_id, tenant_type, tenant_id, launched_by, status,
              cancel_requested
)"""
_FINISH_LOG_COUNTS = """,
        log_lines = greatest(log_lines, %(log_upto)s), log_bytes = log_bytes + %(log_bytes)s,
        log_truncated = log_truncated OR %(log_truncated)s"""
_FINISH_LOG_CTE = """
done_log AS (
    INSERT INTO sdk_simulation_run_logs (run_id, seq, line)
    SELECT done.id, %(log_first)s + l.ord - 1, l.line
      FROM done, unnest(%(log_lines)s::text[]) WITH ORDINALITY AS l(line, ord)
    ON CONFLICT DO NOTHING
)"""
_FINISH_ERRORS_CTE = """
done_errors AS (
    INSERT INTO sdk_anonymized_errors (run_id, error_signature, category, sdk_language,
                                       frequency, context_hash)
    SELECT done.id, a.error_signature, a.category, a.sdk_language, a.frequency, a.context_hash
      FROM done, jsonb_to_recordset(%(anonymized)s::jsonb) AS a(
          error_signature text, category text, sdk_language text,
          frequency double precision, context_hash text)
)"""
_FINISH_APPROVAL_CTE = """
done_approval AS (
    INSERT INTO sdk_patch_approvals (simulation_run_id, patch_id, tenant_type, tenant_id,
                                     requested_by)
    SELECT done.id, done.patch_id, done.tenant_type, done.tenant_id, done.launched_by
      FROM done WHERE done.patch_id IS NOT NULL
    ON CONFLICT (simulation_run_id) DO NOTHING
)"""


def _columns(listing: str, table: str, prefix: str) -> str:
    return ", ".join(f"{table}.{c.strip()} {prefix}{c.strip()}" for c in listing.split(","))


_DONE_FIELDS = (
    "d.id done_id, d.simulation_id done_simulation_id, d.status done_status, "
    "d.cancel_requested done_cancel_requested"
)
_CLAIMED_FROM = (
    "claimed c JOIN sdk_simulations s ON s.id = c.simulation_id "
    "LEFT JOIN sdk_self_healing_registry p ON p.id = c.patch_id"
)
_CLAIMED_FIELDS = (
    f"c.*, {_columns(sim_store.COLUMNS, 's', 's__')}, {_columns(patch_store.COLUMNS, 'p', 'p__')}"
)


def _minify(statement: str) -> str:
    """Collapse whitespace outside quotes.

    psycopg converts a query's placeholders anew on every call once the query is longer than
    4 KiB: minified, the no-op benchmark's statement (no log lines, no approval) stays under.
    """
    parts = statement.split("'")
    parts[::2] = [re.sub(r"\s+", " ", p) for p in parts[::2]]
    return "'".join(parts).strip()


@functools.cache
def _step_sql(finish: bool, claim: bool, log: bool, errors: bool, approval: bool) -> str:
    """The statement for this combination of parts (each variant is prepared once)."""
    ctes = []
    if finish:
        ctes.append(_FINISH_CTES.replace("{log_counts}", _FINISH_LOG_COUNTS if log else ""))
        ctes += [
            cte
            for cte, wanted in (
                (_FINISH_LOG_CTE, log),
                (_FINISH_ERRORS_CTE, errors),
                (_FINISH_APPROVAL_CTE, approval),
            )
            if wanted
        ]
    if claim:
        ctes.append(_CLAIM_CTES)
    entries = [p for p, wanted in ((_FINISH_ENTRIES, finish), (_CLAIM_ENTRIES, claim)) if wanted]
    ctes.append(_JOURNAL_CTE.format(parts=" UNION ALL ".join(entries)))
    head = "WITH " + ", ".join(ctes) + "\n"
    if not claim:
        tail = f"SELECT {_DONE_FIELDS} FROM (VALUES (1)) AS one(x) LEFT JOIN done d ON true"
    elif not finish:
        tail = f"SELECT {_CLAIMED_FIELDS} FROM {_CLAIMED_FROM}"
    else:
        # A finish always answers one row (done_id NULL: the run was no longer ours).
        # The claim is joined first, so it runs first, right after the statement takes its
        # snapshot. A claimer whose snapshot misses another worker's newer claim of the queue's
        # head follows that run's update chain and keeps a lock on the run until it commits,
        # which holds up that worker's finish of the run; the claim's scan coming before the
        # finish's update and the journal's shortens the time in which that can happen. With
        # 4 workers on 2 cores, the time backends spent waiting on such locks fell by about
        # half, and the benchmark's no-op runs/s rose by a median of 7% over 18 paired rounds.
        tail = (
            f"SELECT {_DONE_FIELDS}, {_CLAIMED_FIELDS} FROM (VALUES (1)) AS one(x) "
            f"LEFT JOIN ({_CLAIMED_FROM}) ON true LEFT JOIN done d ON true"
        )
    return _minify(head + tail)


@dataclass(frozen=True)
class Finish:
    """A run to record as finished, with the log lines not stored yet."""

    run_id: UUID
    outcome: Outcome
    log_first_seq: int = 0
    log_lines: tuple[str, ...] = ()
    log_truncated: bool = False
    patched: bool | None = None
    """Whether the run has a patch (whose success asks for an approval); None: unknown."""


@dataclass(frozen=True)
class Claimed:
    run: dict[str, Any]
    """The run's columns (RUN_COLUMNS), plus previous_status and previous_worker."""
    simulation: dict[str, Any]
    """The simulation's columns (simcore.store.simulations.COLUMNS)."""
    patch: dict[str, Any] | None
    """The patch's columns (simcore.store.patches.COLUMNS), if the run has one."""


@dataclass(frozen=True)
class Step:
    finished: bool | None
    """Whether the finish was recorded (False: the run was no longer ours); None: no finish."""
    claimed: Claimed | None
    notifications: tuple[tuple[str, str], ...] = ()
    """The ``simtui_runs`` events of these changes, for a caller that defers them."""


def _finish_params(finish: Finish) -> dict[str, Any]:
    outcome = finish.outcome
    if not outcome.status.terminal:
        raise ValueError(f"finish needs a final status, not {outcome.status}")
    details: dict[str, Any] = {"status": outcome.status.value, "reasons": list(outcome.reasons)}
    if outcome.metrics is not None:
        details["success_rate"] = outcome.metrics.get("success_rate")
    if outcome.error_message:
        details["error"] = outcome.error_message
    if outcome.artifact_key:
        details["artifact"] = outcome.artifact_key
    if outcome.artifact_error:
        details["archive_missing"] = outcome.artifact_error
    entries = [*outcome.events, (_FINAL_ACTION[outcome.status], details)]
    lines = list(finish.log_lines)
    return {
        "run": finish.run_id,
        "status": outcome.status.value,
        "metrics": Jsonb(outcome.metrics) if outcome.metrics is not None else None,
        "reasons": Jsonb(list(outcome.reasons)),
        "error": outcome.error_message,
        "artifact": outcome.artifact_key,
        "artifact_error": outcome.artifact_error,
        "backend": outcome.sandbox_backend,
        "version": outcome.simulator_version,
        "entries": Jsonb([{"action": a.value, "details": d} for a, d in entries]),
        "log_first": finish.log_first_seq,
        "log_lines": lines,
        "log_upto": finish.log_first_seq + len(lines),
        "log_bytes": _log_bytes(lines),
        "log_truncated": finish.log_truncated,
        "anonymized": Jsonb(
            [{k: e[k] for k in _ANONYMIZED_FIELDS} for e in outcome.anonymized_errors]
        ),
    }


_ANONYMIZED_FIELDS = ("error_signature", "category", "sdk_language", "frequency", "context_hash")


def _run_event(run_id: Any, simulation_id: Any, status: str, cancel_requested: bool) -> str:
    # The payload sdk_runs_notify sends, for the listeners of simtui_runs.
    return json.dumps(
        {
            "id": str(run_id),
            "simulation_id": str(simulation_id),
            "status": status,
            "cancel_requested": bool(cancel_requested),
        }
    )


def step(
    conn: psycopg.Connection[Any],
    worker_id: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    finish: Finish | None = None,
    claim: bool = True,
) -> Step:
    """Finish a run and/or claim the next one, in one statement.

    The caller provides the transaction: an autocommit connection (one statement, one
    transaction) or an open one; either way the connection must say that it journals its own
    changes (``simtui.journaled``, see ``journal.mark_journaled``).
    """
    if finish is None and not claim:
        return Step(None, None)
    params: dict[str, Any] = {"worker": worker_id, "lease": lease, "run": None}
    query = _step_sql(False, claim, False, False, False)
    if finish is not None:
        params.update(_finish_params(finish))
        query = _step_sql(
            True,
            claim,
            bool(finish.log_lines),
            bool(finish.outcome.anonymized_errors),
            finish.outcome.status is RunStatus.SUCCESS and finish.patched is not False,
        )
    # A tuple, split by a layout worked out once per statement: the row is wide (the run,
    # its simulation and patch) and this runs once per run; libpq's prepared statements
    # directly, without a cursor's bookkeeping (see simcore.store.prepared).
    row, columns = prepared.fetch_one(conn, query, params)
    layout = _layout(query, columns)
    events: list[tuple[str, str]] = []
    finished: bool | None = None
    if finish is not None:
        assert row is not None
        done = {name: row[i] for name, i in layout.done}
        finished = done["done_id"] is not None
        if finished:
            events.append(
                (
                    RUNS_CHANNEL,
                    _run_event(
                        done["done_id"],
                        done["done_simulation_id"],
                        done["done_status"],
                        done["done_cancel_requested"],
                    ),
                )
            )
    claimed: Claimed | None = None
    if claim and row is not None and row[layout.run[0][1]] is not None:
        run = {name: row[i] for name, i in layout.run}
        patch = {name: row[i] for name, i in layout.patch}
        claimed = Claimed(
            run,
            {name: row[i] for name, i in layout.simulation},
            patch if patch["id"] is not None else None,
        )
        events.append(
            (
                RUNS_CHANNEL,
                _run_event(run["id"], run["simulation_id"], run["status"], run["cancel_requested"]),
            )
        )
    return Step(finished, claimed, tuple(events))


@dataclass(frozen=True)
class _Layout:
    """Where each part of a step's row is: (key, column index) pairs."""

    done: tuple[tuple[str, int], ...]
    run: tuple[tuple[str, int], ...]
    simulation: tuple[tuple[str, int], ...]
    patch: tuple[tuple[str, int], ...]


_LAYOUTS: dict[str, _Layout] = {}


def _layout(query: str, names: tuple[str, ...]) -> _Layout:
    layout = _LAYOUTS.get(query)
    if layout is None:
        pairs = list(zip(names, range(len(names)), strict=True))
        run = sorted(
            ((n, i) for n, i in pairs if n in _CLAIMED_RUN_KEYS), key=lambda p: p[0] != "id"
        )
        layout = _LAYOUTS[query] = _Layout(
            done=tuple((n, i) for n, i in pairs if n.startswith("done_")),
            run=tuple(run),
            simulation=tuple((n[3:], i) for n, i in pairs if n.startswith("s__")),
            patch=tuple((n[3:], i) for n, i in pairs if n.startswith("p__")),
        )
    return layout


_CLAIMED_RUN_KEYS = frozenset(
    [c.strip() for c in RUN_COLUMNS.split(",")] + ["previous_status", "previous_worker"]
)


def claim(db: Database, worker_id: str, lease: timedelta = DEFAULT_LEASE) -> dict[str, Any] | None:
    """Claim the next run for ``worker_id``; None when nothing is waiting.

    A run that has used all its attempts is ended ``error`` by the claim and the next one is
    tried, so the caller only ever receives a run to execute.
    """
    while True:
        with db.transaction() as conn:
            journal.mark_journaled(conn)
            claimed = step(conn, worker_id, lease=lease).claimed
        if claimed is None:
            return None
        if claimed.run["status"] != RunStatus.ERROR:
            return claimed.run


@dataclass(frozen=True)
class Heartbeat:
    held: bool
    """False when the run is no longer ours (lease lost, cancelled and finished, purged)."""
    cancel_requested: bool = False


_RENEW = (
    "UPDATE sdk_simulation_runs SET lease_until = now() + %s "
    "WHERE id = ANY(%s) AND worker_id = %s AND (status = 'running') IS TRUE "
    "RETURNING id, cancel_requested"
)


def renew_all(
    conn: psycopg.Connection[Any],
    run_ids: list[UUID],
    worker_id: str,
    lease: timedelta = DEFAULT_LEASE,
) -> dict[UUID, Heartbeat]:
    """Renew the leases of all the runs a worker holds, in one statement."""
    if not run_ids:
        return {}
    rows = conn.execute(_RENEW, (lease, run_ids, worker_id)).fetchall()
    held = {r["id"]: Heartbeat(True, bool(r["cancel_requested"])) for r in rows}
    return {rid: held.get(rid, Heartbeat(False)) for rid in run_ids}


def renew(
    db: Database, run_id: UUID, worker_id: str, lease: timedelta = DEFAULT_LEASE
) -> Heartbeat:
    with db.transaction() as conn:
        return renew_all(conn, [run_id], worker_id, lease)[run_id]


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
        result = step(conn, worker_id, finish=Finish(run_id, outcome), claim=False)
    return bool(result.finished)


def release(db: Database, run_id: UUID, worker_id: str, reason: str) -> bool:
    """Give a run back to the queue (worker shutting down); its attempt is not counted."""
    with db.transaction() as conn:
        journal.mark_journaled(conn)
        row = conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'queued', worker_id = NULL, "
            "lease_until = NULL, attempts = greatest(attempts - 1, 0), started_at = NULL "
            "WHERE id = %s AND worker_id = %s AND (status = 'running') IS TRUE "
            "RETURNING simulation_id",
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


def _log_bytes(lines: list[str]) -> int:
    return sum(len(x.encode()) + 1 for x in lines)


_STORE_LOG = """
WITH stored AS (
    INSERT INTO sdk_simulation_run_logs (run_id, seq, line)
    SELECT %(run)s, %(first)s + l.ord - 1, l.line
      FROM unnest(%(lines)s::text[]) WITH ORDINALITY AS l(line, ord)
    ON CONFLICT DO NOTHING
)
UPDATE sdk_simulation_runs SET log_lines = greatest(log_lines, %(upto)s),
       log_bytes = log_bytes + %(bytes)s, log_truncated = log_truncated OR %(truncated)s
 WHERE id = %(run)s
"""


def store_log(
    conn: psycopg.Connection[Any],
    run_id: UUID,
    first_seq: int,
    lines: list[str],
    *,
    truncated: bool = False,
) -> tuple[str, str] | None:
    """Store a batch of log lines in one statement; returns the event that wakes live tails.

    A retried batch is not stored twice (its lines keep their sequence numbers).
    """
    if not lines and not truncated:
        return None
    conn.execute(
        _STORE_LOG,
        {
            "run": run_id,
            "first": first_seq,
            "lines": lines,
            "upto": first_seq + len(lines),
            "bytes": _log_bytes(lines),
            "truncated": truncated,
        },
    )
    return (LOGS_CHANNEL, str(run_id))


def append_log(
    db: Database, run_id: UUID, first_seq: int, lines: list[str], *, truncated: bool = False
) -> None:
    """Store a batch of log lines and wake the live tails."""
    with db.transaction() as conn:
        event = store_log(conn, run_id, first_seq, lines, truncated=truncated)
        if event is not None:
            conn.execute("SELECT pg_notify(%s, %s)", event)


def send_notifications(conn: psycopg.Connection[Any], events: list[tuple[str, str]]) -> None:
    """Send deferred events (channel, payload), all in one statement, after their commit.

    The statement is its own transaction and commits with synchronous_commit off: it writes
    nothing that outlives the server (a notification is delivered at commit, from memory), so
    a crash can lose nothing that a flushed commit would have kept, and the transaction need
    not hold the server-wide notification lock through a WAL flush. Listeners that miss an
    event (a crash, a restart) fall back to polling anyway.
    """
    if not events:
        return
    # Binary parameters: in text, each payload's JSON quotes would be escaped one regular
    # expression substitution at a time (a third of a no-op run's client CPU in a profile).
    conn.execute(
        "SELECT set_config('synchronous_commit', 'off', true), count(pg_notify(e.c, e.p)) "
        "FROM unnest(%b::text[], %b::text[]) AS e(c, p)",
        ([c for c, _ in events], [p for _, p in events]),
    )


def open_worker_pool(
    db: Database, max_size: int, *, name: str = "simcore-worker"
) -> ConnectionPool[psycopg.Connection[Any]]:
    """Connections for a worker's own queue statements: autocommit, one statement each.

    Session settings say that these connections journal their own status changes and send
    their own notifications (``send_notifications``, after commit). A connection is not
    checked at each checkout (that would be a round trip per statement): one that died with a
    server restart fails its statement, is dropped by the pool, and the worker retries.
    """

    def configure(conn: psycopg.Connection[Any]) -> None:
        conn.execute("SET simtui.journaled = 'on'")
        conn.execute("SET simtui.notify = 'deferred'")
        # The same few statements run all day with ids for parameters: plan them once.
        conn.execute("SET plan_cache_mode = force_generic_plan")

    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        db.url,
        min_size=1,
        max_size=max_size,
        kwargs={
            "autocommit": True,
            "row_factory": dict_row,
            "connect_timeout": db.settings.db_connect_timeout_s,
            "prepare_threshold": 0,
        },
        configure=configure,
        open=False,
        name=name,
        reconnect_timeout=60.0,
    )
    try:
        pool.open(wait=True, timeout=float(db.settings.db_connect_timeout_s))
    except BaseException:
        pool.close()
        raise
    return pool


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
