"""Prometheus exposition of the runbook's metrics, read from the database at scrape time.

The numbers come from the tables, not from counters in this process: every API replica
answers a scrape with the same values, and a restarted replica loses nothing. Alert rules must
therefore not add these series up across replicas (see ``deploy/prometheus/alerts.yml``).

``molam_simulator_runs_total{status}`` is what the runbook shows: how many runs are in each
status now. A run never leaves a final status (success, partial_success, failed, timeout,
cancelled, error) and runs are never deleted, so for those statuses the value only grows and
``rate()`` over it is the rate of runs finishing that way. ``queued`` and ``running`` are
levels that go down as well as up (the runbook's SimulatorQueueStuck reads ``queued`` as a
level); ``molam_simulator_queue_depth`` is the same level under an honest name. The family is
typed ``gauge`` because part of it is one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

import psycopg

from simcore.enums import RunStatus
from simcore.errors import SimError

# prometheus_client is imported by what builds or serves a registry, not with this module:
# the dashboard and the checklist only read the status lists below, and importing the client
# (its whole package, HTTP server included) is a measurable part of the dashboard's start.
if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily, Metric
    from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""prometheus_client's ``CONTENT_TYPE_PLAIN_0_0_4``: the text format every Prometheus scrapes."""

STATUSES = tuple(s.value for s in RunStatus)
VERDICT_STATUSES = ("success", "partial_success", "failed", "timeout", "error")
"""Finished runs that count in rates: all final statuses but ``cancelled``, which is a person's
decision about the run, not an outcome of it."""

DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1800.0)
"""Seconds; 120 is the runbook's "Temps moyen run < 2 minutes", 180 its MAX_RUN_TIME_MS."""

WORKER_ALIVE_SECONDS = 90

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PatchRate:
    patch_id: UUID
    slug: str | None
    sdk_language: str
    approval_status: str
    success_rate: float


@dataclass(frozen=True)
class MetricsSnapshot:
    """Counts over the whole installation (every tenant): nothing here names a tenant."""

    runs_by_status: dict[str, int]
    avg_latency_ms: float | None
    oldest_queued_age_seconds: float
    pending_approvals: int
    workers_alive: int
    duration_buckets: tuple[tuple[float, int], ...]
    """Cumulative: (upper bound in seconds, runs that took at most that long)."""
    duration_count: int
    duration_sum_seconds: float
    patch_rates: tuple[PatchRate, ...] = ()

    @property
    def queue_depth(self) -> int:
        return self.runs_by_status.get(RunStatus.QUEUED.value, 0)

    @property
    def running(self) -> int:
        return self.runs_by_status.get(RunStatus.RUNNING.value, 0)

    @property
    def finished(self) -> int:
        return sum(self.runs_by_status.get(s, 0) for s in VERDICT_STATUSES)

    @property
    def success_rate(self) -> float | None:
        """Successful runs over finished runs, as the runbook's 245 / (245 + 12) = 0.953."""
        if not self.finished:
            return None
        return self.runs_by_status.get(RunStatus.SUCCESS.value, 0) / self.finished


_DURATION_SQL = (
    "SELECT "
    + ", ".join(
        f"count(*) FILTER (WHERE d <= {b!r}) AS b{i}" for i, b in enumerate(DURATION_BUCKETS)
    )
    + ", count(*) AS n, coalesce(sum(d), 0)::float8 AS s FROM ("
    "SELECT greatest(extract(epoch FROM completed_at - started_at), 0)::float8 AS d "
    "FROM sdk_simulation_runs WHERE status NOT IN ('queued', 'running') "
    "AND started_at IS NOT NULL AND completed_at IS NOT NULL) runs"
)

_LEVELS_SQL = f"""
SELECT
  (SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0)::float8
     FROM sdk_simulation_runs WHERE status = 'queued') AS oldest_queued,
  (SELECT count(*) FROM sdk_patch_approvals WHERE status = 'pending') AS pending_approvals,
  (SELECT count(*) FROM sdk_simulation_workers WHERE stopped_at IS NULL
      AND heartbeat_at > now() - interval '{WORKER_ALIVE_SECONDS} seconds') AS workers_alive,
  (SELECT avg((metrics ->> 'avg_latency_ms')::float8) FROM sdk_simulation_runs
    WHERE status IN ({", ".join(repr(s) for s in VERDICT_STATUSES)})
      AND jsonb_typeof(metrics -> 'avg_latency_ms') = 'number') AS avg_latency_ms
"""

# The success rate of each approved (staged, deployed) patch, from the run its latest approval
# rests on: what the runbook's `curl .../metrics | grep patch_success_rate` finds here. The
# canary's production rate comes from the SDK service, not from the simulator.
_PATCH_RATES_SQL = """
SELECT DISTINCT ON (a.patch_id) a.patch_id, p.slug, p.sdk_language, a.status,
       (r.metrics ->> 'success_rate')::float8 AS success_rate
  FROM sdk_patch_approvals a
  JOIN sdk_simulation_runs r ON r.id = a.simulation_run_id
  JOIN sdk_self_healing_registry p ON p.id = a.patch_id
 WHERE a.status IN ('approved', 'staged', 'deployed')
   AND jsonb_typeof(r.metrics -> 'success_rate') = 'number'
 ORDER BY a.patch_id, a.decided_at DESC NULLS LAST, a.updated_at DESC
"""


def read_snapshot(conn: psycopg.Connection[Any]) -> MetricsSnapshot:
    """Everything a scrape needs, in four cheap statements of one transaction."""
    by_status = dict.fromkeys(STATUSES, 0)
    for row in conn.execute(
        "SELECT status, count(*) AS n FROM sdk_simulation_runs GROUP BY status"
    ).fetchall():
        by_status[row["status"]] = int(row["n"])
    levels = conn.execute(_LEVELS_SQL).fetchone()
    durations = conn.execute(_DURATION_SQL).fetchone()
    assert levels is not None and durations is not None
    rates = tuple(
        PatchRate(r["patch_id"], r["slug"], r["sdk_language"], r["status"], r["success_rate"])
        for r in conn.execute(_PATCH_RATES_SQL).fetchall()
    )
    avg = levels["avg_latency_ms"]
    return MetricsSnapshot(
        runs_by_status=by_status,
        avg_latency_ms=float(avg) if avg is not None else None,
        oldest_queued_age_seconds=float(levels["oldest_queued"]),
        pending_approvals=int(levels["pending_approvals"]),
        workers_alive=int(levels["workers_alive"]),
        duration_buckets=tuple(
            (b, int(durations[f"b{i}"])) for i, b in enumerate(DURATION_BUCKETS)
        ),
        duration_count=int(durations["n"]),
        duration_sum_seconds=float(durations["s"]),
        patch_rates=rates,
    )


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(name, doc, value=value)


class SimulatorCollector:
    """Reads a snapshot at each scrape; a database outage is ``molam_simulator_database_up 0``,
    not a failed scrape, so that the outage itself can be alerted on.

    A prometheus_client ``Collector`` by its methods (the registry asks for no more), so that
    defining it does not import the client.
    """

    def __init__(self, snapshot: Callable[[], MetricsSnapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> Iterable[Metric]:
        # Registering must not query the database (the default describe() collects).
        return []

    def collect(self) -> Iterable[Metric]:
        from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

        try:
            snap = self._snapshot()
        except (SimError, psycopg.Error) as exc:
            _log.warning("metrics: database unavailable: %s", exc)
            yield _gauge("molam_simulator_database_up", "1 if the database answered.", 0)
            return
        yield _gauge("molam_simulator_database_up", "1 if the database answered.", 1)
        runs = GaugeMetricFamily(
            "molam_simulator_runs_total",
            "Runs by current status. Final statuses only grow (rate() is valid on them); "
            "queued and running are levels.",
            labels=["status"],
        )
        for status in STATUSES:
            runs.add_metric([status], snap.runs_by_status.get(status, 0))
        yield runs
        yield _gauge(
            "molam_simulator_success_rate",
            "Successful runs over finished runs (cancelled runs left out); NaN before any.",
            snap.success_rate if snap.success_rate is not None else float("nan"),
        )
        yield _gauge(
            "molam_simulator_avg_latency_ms",
            "Mean of the finished runs' avg_latency_ms (simulated request latency); NaN "
            "before any.",
            snap.avg_latency_ms if snap.avg_latency_ms is not None else float("nan"),
        )
        yield _gauge("molam_simulator_queue_depth", "Runs waiting for a worker.", snap.queue_depth)
        yield _gauge(
            "molam_simulator_oldest_queued_age_seconds",
            "How long the oldest queued run has waited; 0 when the queue is empty.",
            snap.oldest_queued_age_seconds,
        )
        yield _gauge("molam_simulator_running", "Runs being executed now.", snap.running)
        yield _gauge(
            "molam_simulator_pending_approvals",
            "Patches of successful runs waiting for an ops decision.",
            snap.pending_approvals,
        )
        yield _gauge(
            "molam_simulator_workers_alive",
            f"Workers that sent a heartbeat in the last {WORKER_ALIVE_SECONDS} s.",
            snap.workers_alive,
        )
        buckets: list[tuple[str, float]] = [(repr(b), c) for b, c in snap.duration_buckets]
        buckets.append(("+Inf", snap.duration_count))
        yield HistogramMetricFamily(
            "molam_simulator_run_duration_seconds",
            "Wall time of finished runs, from claim to result.",
            buckets=buckets,
            sum_value=snap.duration_sum_seconds,
        )
        rates = GaugeMetricFamily(
            "molam_simulator_patch_success_rate",
            "Simulated success rate of each approved, staged or deployed patch (the run its "
            "latest approval rests on).",
            labels=["patch", "sdk_language", "approval_status"],
        )
        for r in snap.patch_rates:
            rates.add_metric(
                [r.slug or str(r.patch_id), r.sdk_language, r.approval_status], r.success_rate
            )
        yield rates


def build_registry(snapshot: Callable[[], MetricsSnapshot]) -> CollectorRegistry:
    """A registry of its own (not the global one) so that several apps in one process, as in
    tests, do not collide; process_* metrics describe this replica."""
    from prometheus_client import CollectorRegistry, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(cast("Collector", SimulatorCollector(snapshot)))
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (0.0.4), which every Prometheus version scrapes."""
    from prometheus_client import generate_latest

    return generate_latest(registry)
