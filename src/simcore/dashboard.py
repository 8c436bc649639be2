"""The dashboard snapshot: what an on-call engineer reads at a glance, in one consistent read.

``build_snapshot`` reads everything in one REPEATABLE READ, READ ONLY transaction (so the
tiles, the charts and the tables agree with each other) and in six statements, each bounded by
an index or a time window, so that it stays cheap with hundreds of thousands of runs:

- levels: the queue (partial indexes on ``status = 'queued'`` / ``'running'``), live workers,
  pending approvals, the approval rate and the SIRA exports (``sdk_anon_errors_exported_idx``);
- the last 24 h of finished runs, by 10-minute bucket: success over time, the 24 h KPIs and
  the 10-minute figures of SimulatorHighFailureRate;
- the runbook's "success rate par SDK language" query over 7 days (kept up to a minute when
  it is slow to read: see ``_by_language``);
- queue depth over the last hour, rebuilt from each run's run_at / started_at / completed_at;
- the most recent runs (``LIMIT``), and the pending approvals (``simcore.approvals``).

The finished runs and the rates by language are index-only scans of ``sdk_runs_recent_idx``
(``run_at``, with the columns they read included: migration 0008).

Windows rest on the runbook's own purge: a run unfinished after 24 h is ended ``timeout``, so
every run that finished in the last 24 h was launched in the last 25 h, and a bound on
``run_at`` (indexed) loses nothing.

``approximate`` builds the same snapshot from lists of runs and approvals, for an API server
that does not serve the snapshot itself; it says so in ``partial``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from simcore import approvals
from simcore.approvals import Approval
from simcore.auth import Permission, Principal
from simcore.journal import Entry
from simcore.metrics import VERDICT_STATUSES
from simcore.model import ApprovalStatus, Run, RunStatus, Simulation
from simcore.snapshot import (
    APPROVAL_WINDOW,
    APPROVED_STATUSES,
    DECIDED_STATUSES,
    HIGH_FAILURE_RATE,
    HIGH_FAILURE_WINDOW,
    KPI_APPROVAL_RATE,
    KPI_AVG_RUN_SECONDS,
    KPI_QUEUE_DEPTH,
    KPI_SIRA_EXPORTS_PER_DAY,
    KPI_SUCCESS_RATE,
    LANGUAGE_WINDOW,
    PENDING_APPROVALS,
    QUEUE_HISTORY_MINUTES,
    QUEUE_STUCK_AGE,
    QUEUE_STUCK_DEPTH,
    RECENT_RUNS,
    SUCCESS_BUCKET,
    SUCCESS_WINDOW,
    WORKER_ALIVE,
    Alert,
    Comparison,
    DashboardSnapshot,
    Kpi,
    LanguageRate,
    QueuePoint,
    RatePoint,
    RecentRun,
)

# -- figures shared by the exact and the approximate snapshot ---------------------------------


def _kpis(
    *,
    finished: int,
    succeeded: int,
    duration_sum: float,
    duration_count: int,
    queued: int,
    approved: int,
    decided: int,
    sira_exports: int | None,
) -> tuple[Kpi, ...]:
    return (
        Kpi(
            "success_rate",
            "success",
            succeeded / finished if finished else None,
            KPI_SUCCESS_RATE,
            Comparison.ABOVE,
            "24h",
            finished,
        ),
        Kpi(
            "avg_run_seconds",
            "avg run",
            duration_sum / duration_count if duration_count else None,
            KPI_AVG_RUN_SECONDS,
            Comparison.BELOW,
            "24h",
            duration_count,
        ),
        Kpi(
            "queue_depth", "queue", float(queued), KPI_QUEUE_DEPTH, Comparison.BELOW, "now", queued
        ),
        Kpi(
            "approval_rate",
            "approval",
            approved / decided if decided else None,
            KPI_APPROVAL_RATE,
            Comparison.ABOVE,
            "7d",
            decided,
        ),
        Kpi(
            "sira_exports",
            "SIRA/day",
            float(sira_exports) if sira_exports is not None else None,
            KPI_SIRA_EXPORTS_PER_DAY,
            Comparison.ABOVE,
            "24h",
            sira_exports or 0,
        ),
    )


def _span(seconds: float) -> str:
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _alerts(
    *, recent_finished: int, recent_failed: int, queued: int, oldest_queued: float | None
) -> tuple[Alert, ...]:
    rate = recent_failed / recent_finished if recent_finished else 0.0
    window = _span(HIGH_FAILURE_WINDOW.total_seconds())
    # Short enough for one line of an 80-column banner, with the alert's name before it.
    high = Alert(
        "SimulatorHighFailureRate",
        "warning",
        recent_finished > 0 and rate > HIGH_FAILURE_RATE,
        f"{recent_failed}/{recent_finished} failed in {window}: {rate:.0%} "
        f"(limit {HIGH_FAILURE_RATE:.0%})",
        {"failed": recent_failed, "finished": recent_finished, "failure_rate": rate},
    )
    age = oldest_queued or 0.0
    stuck = Alert(
        "SimulatorQueueStuck",
        "critical",
        queued > QUEUE_STUCK_DEPTH and age > QUEUE_STUCK_AGE.total_seconds(),
        f"{queued} queued, oldest {_span(age)} "
        f"(limit {QUEUE_STUCK_DEPTH}, {_span(QUEUE_STUCK_AGE.total_seconds())})",
        {"queued": queued, "oldest_queued_age_seconds": age},
    )
    return (high, stuck)


def _scope_label(principal: Principal) -> str:
    if principal.tenant_type is None:
        return "all tenants"
    return f"{principal.tenant_type.value}/{principal.tenant_id or '*'}"


# -- the exact snapshot, from the database ----------------------------------------------------


def _scope(principal: Principal, alias: str = "") -> sql.Composable:
    """`` AND tenant_type = ... AND tenant_id = ...`` for a scoped principal, else nothing.

    Composed rather than written as ``(%s IS NULL OR ...)`` so that the planner sees plain
    predicates and keeps to the partial indexes.
    """
    if principal.tenant_type is None:
        return sql.SQL("")
    prefix = sql.SQL(alias + ".") if alias else sql.SQL("")
    clause = sql.SQL(" AND {}tenant_type = %(tt)s").format(prefix)
    if principal.tenant_id is not None:
        clause = clause + sql.SQL(" AND {}tenant_id = %(ti)s").format(prefix)
    return clause


_VERDICT = sql.SQL(", ").join(sql.Literal(s) for s in VERDICT_STATUSES)
_DECIDED = sql.SQL(", ").join(sql.Literal(s) for s in DECIDED_STATUSES)
_APPROVED = sql.SQL(", ").join(sql.Literal(s) for s in APPROVED_STATUSES)

_LEVELS = """
SELECT now() AS now,
  (SELECT count(*) FROM sdk_simulation_runs WHERE status = 'queued'{scope}) AS queued,
  (SELECT min(run_at) FROM sdk_simulation_runs WHERE status = 'queued'{scope}) AS oldest_queued,
  (SELECT count(*) FROM sdk_simulation_runs WHERE status = 'running'{scope}) AS running,
  (SELECT count(*) FROM sdk_simulation_workers
    WHERE stopped_at IS NULL AND heartbeat_at > now() - %(alive)s) AS workers,
  (SELECT count(*) FROM sdk_patch_approvals WHERE status = 'pending'{scope}) AS pending,
  (SELECT count(*) FROM sdk_patch_approvals
    WHERE status IN ({decided}) AND created_at > now() - %(approval_window)s{scope}) AS decided,
  (SELECT count(*) FROM sdk_patch_approvals
    WHERE status IN ({approved}) AND created_at > now() - %(approval_window)s{scope}) AS approved,
  (SELECT count(*) FROM sdk_anonymized_errors e
    WHERE e.exported_to_sira AND e.exported_at > now() - interval '24 hours'{sira_scope})
    AS sira_exports
"""

# Bucketed by completion time; ``recent`` splits off the alert's last 10 minutes so that one
# pass over the window gives the chart, the 24 h KPIs and the alert.
_FINISHED = """
SELECT date_bin(%(bucket)s, completed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS at,
       completed_at > now() - %(alert_window)s AS recent,
       count(*) AS finished,
       count(*) FILTER (WHERE status = 'success') AS succeeded,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       count(*) FILTER (WHERE started_at IS NOT NULL) AS timed,
       coalesce(sum(greatest(extract(epoch FROM completed_at - started_at), 0))
                FILTER (WHERE started_at IS NOT NULL), 0)::float8 AS duration_sum
  FROM sdk_simulation_runs
 WHERE run_at > now() - %(window)s - interval '1 hour'
   AND completed_at > now() - %(window)s
   AND status IN ({verdict}){scope}
 GROUP BY 1, 2
 ORDER BY 1
"""

# The runbook's query, with the metric read from ``metrics_success_rate`` (migration 0008: the
# JSON's success_rate, stored when the run is written) rather than from the JSON of every run.
# Runs are counted by simulation first: every column it reads is in ``sdk_runs_recent_idx``, so
# this is an index-only scan, and the join then meets a few rows per simulation.
_BY_LANGUAGE = """
SELECT s.sdk_language,
       sum(sr.runs)::bigint AS total_runs,
       sum(sr.successful)::bigint AS successful,
       sum(sr.rate_sum) / nullif(sum(sr.rates), 0) AS avg_success_rate
  FROM (SELECT simulation_id, count(*) AS runs,
               count(*) FILTER (WHERE status = 'success') AS successful,
               sum(metrics_success_rate) AS rate_sum, count(metrics_success_rate) AS rates
          FROM sdk_simulation_runs
         WHERE run_at > now() - %(language_window)s{scope}
         GROUP BY simulation_id) sr
  JOIN sdk_simulations s ON sr.simulation_id = s.id
 GROUP BY s.sdk_language
 ORDER BY s.sdk_language
"""

LANGUAGE_CACHE_SECONDS = 60.0
LANGUAGE_SLOW_SECONDS = 0.025
_language_cache: dict[tuple[str, ...], tuple[float, tuple[LanguageRate, ...]]] = {}
_language_lock = threading.Lock()


def _by_language(
    conn: psycopg.Connection[Any], principal: Principal, params: Mapping[str, Any]
) -> tuple[LanguageRate, ...]:
    """The 7-day rates by language, kept up to a minute when they are slow to read.

    Over a week of a busy installation this statement reads tens of thousands of runs' JSON,
    and a dashboard refreshes on every run that changes; a minute-old 7-day rate is the same
    figure. On a small installation the statement is fast and is read every time, so a new
    run shows up at once.
    """
    info = conn.info
    key = (str(info.host), str(info.port), str(info.dbname), _scope_label(principal))
    now = time.monotonic()
    with _language_lock:
        cached = _language_cache.get(key)
    if cached is not None and now - cached[0] < LANGUAGE_CACHE_SECONDS:
        return cached[1]
    started = time.perf_counter()
    rates = tuple(
        LanguageRate(
            str(r["sdk_language"]),
            int(r["total_runs"]),
            int(r["successful"]),
            float(r["avg_success_rate"]) if r["avg_success_rate"] is not None else None,
        )
        for r in conn.execute(_q(_BY_LANGUAGE, principal), params).fetchall()
    )
    with _language_lock:
        if time.perf_counter() - started > LANGUAGE_SLOW_SECONDS:
            _language_cache[key] = (now, rates)
        else:
            _language_cache.pop(key, None)
    return rates


# A run counts as queued at ``t`` from run_at until it starts (or is cancelled), and as
# running from started_at until it completes. Runs launched more than an hour before the
# chart began and finished since are left out: that is a run that waited over an hour, which
# the SimulatorQueueStuck alert will already have shown.
_QUEUE_HISTORY = """
WITH points AS (
    SELECT generate_series(date_trunc('minute', now()) - %(history)s,
                           date_trunc('minute', now()), interval '1 minute') AS at
    UNION ALL SELECT now()
), r AS (
    SELECT id, run_at, started_at, completed_at FROM sdk_simulation_runs
     WHERE run_at > now() - %(history)s - interval '1 hour'{scope}
    UNION
    SELECT id, run_at, started_at, completed_at FROM sdk_simulation_runs
     WHERE status = 'queued'{scope}
    UNION
    SELECT id, run_at, started_at, completed_at FROM sdk_simulation_runs
     WHERE status = 'running'{scope}
)
SELECT p.at,
       count(r.id) FILTER (WHERE r.run_at <= p.at
                           AND (r.started_at IS NULL OR r.started_at > p.at)
                           AND (r.completed_at IS NULL OR r.completed_at > p.at)) AS queued,
       count(r.id) FILTER (WHERE r.started_at <= p.at
                           AND (r.completed_at IS NULL OR r.completed_at > p.at)) AS running
  FROM points p LEFT JOIN r ON r.run_at <= p.at
 GROUP BY p.at
 ORDER BY p.at
"""

_RECENT = """
SELECT r.id, r.simulation_id, s.name AS simulation_name, s.sdk_language,
       s.scenario ->> 'error' AS error, r.status, r.seed, r.run_at, r.started_at,
       r.completed_at,
       CASE WHEN jsonb_typeof(r.metrics -> 'success_rate') = 'number'
            THEN (r.metrics ->> 'success_rate')::float8 END AS success_rate,
       CASE WHEN jsonb_typeof(r.metrics -> 'avg_latency_ms') = 'number'
            THEN (r.metrics ->> 'avg_latency_ms')::float8 END AS avg_latency_ms,
       a.status AS approval_status, p.slug AS patch_slug, r.launched_by, r.tenant_type,
       r.tenant_id, r.error_message
  FROM (SELECT * FROM sdk_simulation_runs WHERE true{scope}
         ORDER BY run_at DESC LIMIT %(recent)s) r
  JOIN sdk_simulations s ON s.id = r.simulation_id
  LEFT JOIN sdk_patch_approvals a ON a.simulation_run_id = r.id
  LEFT JOIN sdk_self_healing_registry p ON p.id = r.patch_id
 ORDER BY r.run_at DESC, r.id
"""


def _q(
    template: str, principal: Principal, alias: str = "", **extra: sql.Composable
) -> sql.Composed:
    return sql.SQL(template).format(scope=_scope(principal, alias), **extra)


def build_snapshot(
    conn: psycopg.Connection[Any],
    principal: Principal,
    *,
    recent_limit: int = RECENT_RUNS,
    approvals_limit: int = PENDING_APPROVALS,
) -> DashboardSnapshot:
    """Read the snapshot; call at the start of a transaction (it sets the isolation level)."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    params: dict[str, Any] = {
        "tt": principal.tenant_type.value if principal.tenant_type else None,
        "ti": principal.tenant_id,
        "alive": WORKER_ALIVE,
        "approval_window": APPROVAL_WINDOW,
        "bucket": SUCCESS_BUCKET,
        "alert_window": HIGH_FAILURE_WINDOW,
        "window": SUCCESS_WINDOW,
        "language_window": LANGUAGE_WINDOW,
        "history": timedelta(minutes=QUEUE_HISTORY_MINUTES - 1),
        "recent": recent_limit,
    }
    sira_scope: sql.Composable = sql.SQL("")
    if principal.tenant_type is not None:
        sira_scope = sql.SQL(
            " AND EXISTS (SELECT 1 FROM sdk_simulation_runs r WHERE r.id = e.run_id{})"
        ).format(_scope(principal, "r"))
    levels = conn.execute(
        _q(_LEVELS, principal, decided=_DECIDED, approved=_APPROVED, sira_scope=sira_scope),
        params,
    ).fetchone()
    assert levels is not None
    now: datetime = levels["now"]
    queued = int(levels["queued"])
    oldest = levels["oldest_queued"]
    oldest_age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else None

    finished_rows = conn.execute(_q(_FINISHED, principal, verdict=_VERDICT), params).fetchall()
    history = _rate_points(finished_rows)
    totals = _sum(finished_rows, ("finished", "succeeded", "timed", "duration_sum"))
    recent = _sum([r for r in finished_rows if r["recent"]], ("finished", "failed"))

    by_language = _by_language(conn, principal, params)
    queue_history = tuple(
        QueuePoint(r["at"], int(r["queued"]), int(r["running"]))
        for r in conn.execute(_q(_QUEUE_HISTORY, principal), params).fetchall()
    )
    recent_runs = tuple(
        _recent_run(r) for r in conn.execute(_q(_RECENT, principal), params).fetchall()
    )
    pending = tuple(
        approvals.list_scoped(
            conn,
            status=ApprovalStatus.PENDING,
            tenant_type=params["tt"],
            tenant_id=params["ti"],
            limit=approvals_limit,
        )
    )
    return DashboardSnapshot(
        taken_at=now,
        queued=queued,
        running=int(levels["running"]),
        oldest_queued_age_seconds=oldest_age,
        workers_alive=int(levels["workers"]),
        pending_approvals=int(levels["pending"]),
        queue_history=queue_history,
        success_history=history,
        by_language=by_language,
        recent_runs=recent_runs,
        approvals=pending,
        kpis=_kpis(
            finished=int(totals["finished"]),
            succeeded=int(totals["succeeded"]),
            duration_sum=float(totals["duration_sum"]),
            duration_count=int(totals["timed"]),
            queued=queued,
            approved=int(levels["approved"]),
            decided=int(levels["decided"]),
            sira_exports=int(levels["sira_exports"]),
        ),
        alerts=_alerts(
            recent_finished=int(recent["finished"]),
            recent_failed=int(recent["failed"]),
            queued=queued,
            oldest_queued=oldest_age,
        ),
        scope=_scope_label(principal),
    )


def _sum(rows: Iterable[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, float]:
    totals = dict.fromkeys(keys, 0.0)
    for row in rows:
        for key in keys:
            totals[key] += float(row[key])
    return totals


def _rate_points(rows: Sequence[Mapping[str, Any]]) -> tuple[RatePoint, ...]:
    merged: dict[datetime, list[int]] = {}
    for row in rows:
        counts = merged.setdefault(row["at"], [0, 0, 0])
        counts[0] += int(row["finished"])
        counts[1] += int(row["succeeded"])
        counts[2] += int(row["failed"])
    return tuple(RatePoint(at, *counts) for at, counts in sorted(merged.items()))


def _recent_run(row: Mapping[str, Any]) -> RecentRun:
    approval = row["approval_status"]
    return RecentRun(
        id=row["id"],
        simulation_id=row["simulation_id"],
        simulation_name=row["simulation_name"],
        sdk_language=row["sdk_language"],
        error=row["error"],
        status=RunStatus(row["status"]),
        seed=int(row["seed"]),
        run_at=row["run_at"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
        success_rate=row["success_rate"],
        avg_latency_ms=row["avg_latency_ms"],
        approval_status=ApprovalStatus(approval) if approval else None,
        patch_slug=row["patch_slug"],
        launched_by=row["launched_by"],
        tenant_type=row["tenant_type"],
        tenant_id=row["tenant_id"],
        error_message=row["error_message"],
    )


# -- the approximate snapshot, from lists (an API server without the snapshot route) ----------


def _bucket_start(moment: datetime, size: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // size) * size


def _number(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    value = (metrics or {}).get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def approximate(
    now: datetime,
    runs: Sequence[Run],
    simulations: Mapping[UUID, Simulation],
    pending: Sequence[Approval],
    decided: Sequence[Approval] = (),
    *,
    principal: Principal,
    workers_alive: int | None = None,
) -> DashboardSnapshot:
    """The snapshot as far as ``runs`` (the most recent ones) and the approvals tell it."""
    verdict = set(VERDICT_STATUSES)
    approval_by_run = {a.simulation_run_id: a.status for a in (*pending, *decided)}
    slug_by_run = {a.simulation_run_id: a.patch_slug for a in (*pending, *decided)}
    queued_runs = [r for r in runs if r.status is RunStatus.QUEUED]
    oldest = min((r.run_at for r in queued_runs), default=None)
    oldest_age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else None
    finished = [
        r
        for r in runs
        if r.status.value in verdict
        and r.completed_at is not None
        and r.completed_at > now - SUCCESS_WINDOW
    ]
    buckets: dict[datetime, list[int]] = {}
    for r in finished:
        assert r.completed_at is not None
        counts = buckets.setdefault(_bucket_start(r.completed_at, SUCCESS_BUCKET), [0, 0, 0])
        counts[0] += 1
        counts[1] += r.status is RunStatus.SUCCESS
        counts[2] += r.status is RunStatus.FAILED
    durations = [r.duration_ms / 1000 for r in finished if r.duration_ms is not None]
    recent = [r for r in finished if r.completed_at and r.completed_at > now - HIGH_FAILURE_WINDOW]
    languages: dict[str, list[float]] = {}
    rates: dict[str, list[float]] = {}
    for r in runs:
        if r.run_at <= now - LANGUAGE_WINDOW or r.simulation_id not in simulations:
            continue
        lang = simulations[r.simulation_id].sdk_language.value
        row = languages.setdefault(lang, [0, 0])
        row[0] += 1
        row[1] += r.status is RunStatus.SUCCESS
        rate = _number(r.metrics, "success_rate")
        if rate is not None:
            rates.setdefault(lang, []).append(rate)
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=QUEUE_HISTORY_MINUTES - 1)
    points = [start + timedelta(minutes=i) for i in range(QUEUE_HISTORY_MINUTES)] + [now]
    queue_history = tuple(
        QueuePoint(
            at,
            sum(
                1
                for r in runs
                if r.run_at <= at
                and (r.started_at is None or r.started_at > at)
                and (r.completed_at is None or r.completed_at > at)
            ),
            sum(
                1
                for r in runs
                if r.started_at is not None
                and r.started_at <= at
                and (r.completed_at is None or r.completed_at > at)
            ),
        )
        for at in points
    )
    recent_runs = []
    for r in runs:
        sim = simulations.get(r.simulation_id)
        recent_runs.append(
            RecentRun(
                id=r.id,
                simulation_id=r.simulation_id,
                simulation_name=sim.name if sim else str(r.simulation_id)[:8],
                sdk_language=sim.sdk_language.value if sim else "?",
                error=sim.scenario.error.value if sim else None,
                status=r.status,
                seed=r.seed,
                run_at=r.run_at,
                started_at=r.started_at,
                completed_at=r.completed_at,
                success_rate=_number(r.metrics, "success_rate"),
                avg_latency_ms=_number(r.metrics, "avg_latency_ms"),
                approval_status=approval_by_run.get(r.id),
                patch_slug=slug_by_run.get(r.id),
                launched_by=r.launched_by,
                tenant_type=r.tenant_type.value,
                tenant_id=r.tenant_id,
                error_message=r.error_message,
            )
        )
    recent_decided = [a for a in decided if a.created_at > now - APPROVAL_WINDOW]
    approved = sum(1 for a in recent_decided if a.status.value in APPROVED_STATUSES)
    queued = len(queued_runs)
    return DashboardSnapshot(
        taken_at=now,
        queued=queued,
        running=sum(1 for r in runs if r.status is RunStatus.RUNNING),
        oldest_queued_age_seconds=oldest_age,
        workers_alive=workers_alive,
        pending_approvals=len(pending),
        queue_history=queue_history,
        success_history=tuple(RatePoint(at, *c) for at, c in sorted(buckets.items())),
        by_language=tuple(
            LanguageRate(
                lang,
                int(counts[0]),
                int(counts[1]),
                sum(rates[lang]) / len(rates[lang]) if rates.get(lang) else None,
            )
            for lang, counts in sorted(languages.items())
        ),
        recent_runs=tuple(recent_runs[:RECENT_RUNS]),
        approvals=tuple(pending),
        kpis=_kpis(
            finished=len(finished),
            succeeded=sum(1 for r in finished if r.status is RunStatus.SUCCESS),
            duration_sum=sum(durations),
            duration_count=len(durations),
            queued=queued,
            approved=approved,
            decided=len(recent_decided),
            sira_exports=None,
        ),
        alerts=_alerts(
            recent_finished=len(recent),
            recent_failed=sum(1 for r in recent if r.status is RunStatus.FAILED),
            queued=queued,
            oldest_queued=oldest_age,
        ),
        scope=_scope_label(principal),
        partial=f"from the API's {len(runs)} most recent runs",
    )


# -- the journal's latest entries -------------------------------------------------------------

_JOURNAL_TAIL = """
SELECT j.id, j.run_id, j.simulation_id, j.approval_id, j.action, j.actor, j.details,
       j.prev_hash, j.hash, j.created_at
  FROM sdk_simulation_journal j{join}
 ORDER BY j.id DESC
 LIMIT %(limit)s
"""


def journal_tail(
    conn: psycopg.Connection[Any], principal: Principal, limit: int = 300
) -> list[Entry]:
    """The latest journal entries, newest first, in the principal's tenant scope.

    A scoped principal sees the entries of its tenant's runs only; entries about no run
    (a SIRA export) name no tenant and are left out for it.
    """
    principal.require(Permission.READ, "read the journal")
    join: sql.Composable = sql.SQL("")
    if principal.tenant_type is not None:
        join = sql.SQL(" JOIN sdk_simulation_runs r ON r.id = j.run_id{}").format(
            _scope(principal, "r")
        )
    rows = conn.execute(
        sql.SQL(_JOURNAL_TAIL).format(join=join),
        {
            "tt": principal.tenant_type.value if principal.tenant_type else None,
            "ti": principal.tenant_id,
            "limit": limit,
        },
    ).fetchall()
    return [Entry.from_row(r) for r in rows]
