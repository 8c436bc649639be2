"""What the dashboard shows, as plain values: the snapshot and its parts, and the runbook's
KPIs and alert thresholds it is measured against.

``simcore.dashboard`` reads a snapshot from the database; this module holds only its types,
with no database driver behind them, so that the dashboard can draw a snapshot that another
process read (``simtui.session``) before it loads the driver itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from simcore.approvals import Approval
from simcore.enums import ApprovalStatus, RunStatus

RECENT_RUNS = 50
PENDING_APPROVALS = 50
QUEUE_HISTORY_MINUTES = 60
SUCCESS_BUCKET = timedelta(minutes=10)
SUCCESS_WINDOW = timedelta(hours=24)
LANGUAGE_WINDOW = timedelta(days=7)
APPROVAL_WINDOW = timedelta(days=7)
WORKER_ALIVE = timedelta(seconds=90)

# The runbook's KPIs ("📈 KPIs").
KPI_SUCCESS_RATE = 0.95
KPI_AVG_RUN_SECONDS = 120.0
KPI_QUEUE_DEPTH = 5
KPI_APPROVAL_RATE = 0.80
KPI_SIRA_EXPORTS_PER_DAY = 100

# The runbook's alerts ("🚨 Alertes").
HIGH_FAILURE_RATE = 0.20
HIGH_FAILURE_WINDOW = timedelta(minutes=10)
QUEUE_STUCK_DEPTH = 10
QUEUE_STUCK_AGE = timedelta(minutes=30)

# An approval that was approved and then staged, deployed or rolled back was approved first.
APPROVED_STATUSES = ("approved", "staged", "deployed", "rolled_back")
DECIDED_STATUSES = (*APPROVED_STATUSES, "rejected")


class Comparison(StrEnum):
    ABOVE = "above"
    BELOW = "below"


@dataclass(frozen=True, slots=True)
class QueuePoint:
    at: datetime
    queued: int
    running: int


@dataclass(frozen=True, slots=True)
class RatePoint:
    """Runs that finished in one bucket (cancelled runs left out, as in the metrics)."""

    at: datetime
    finished: int
    succeeded: int
    failed: int

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None


@dataclass(frozen=True, slots=True)
class LanguageRate:
    """One row of the runbook's "Success rate par SDK language" (7 days)."""

    sdk_language: str
    total_runs: int
    successful: int
    avg_success_rate: float | None
    """Mean of the runs' own ``metrics.success_rate`` (requests that succeeded)."""

    @property
    def success_rate(self) -> float | None:
        """Runs with status success over all runs of the language."""
        return self.successful / self.total_runs if self.total_runs else None


@dataclass(frozen=True, slots=True)
class RecentRun:
    id: UUID
    simulation_id: UUID
    simulation_name: str
    sdk_language: str
    error: str | None
    status: RunStatus
    seed: int
    run_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    success_rate: float | None = None
    avg_latency_ms: float | None = None
    approval_status: ApprovalStatus | None = None
    patch_slug: str | None = None
    launched_by: str = "system"
    tenant_type: str = "internal"
    tenant_id: str = "default"
    error_message: str | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.completed_at is None:
            return None
        return max((self.completed_at - self.started_at).total_seconds(), 0.0)

    def age_seconds(self, now: datetime) -> float:
        return max((now - self.run_at).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Kpi:
    key: str
    label: str
    value: float | None
    """None: nothing to measure yet (no finished run, no decided approval...)."""
    target: float
    comparison: Comparison
    window: str
    sample: int
    """How many runs, approvals or exports the value rests on."""

    @property
    def ok(self) -> bool | None:
        if self.value is None:
            return None
        if self.comparison is Comparison.ABOVE:
            return self.value > self.target
        return self.value < self.target


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    severity: str
    firing: bool
    summary: str
    """The condition with the figures behind it, in one line."""
    figures: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class DashboardSnapshot:
    taken_at: datetime
    """The database's clock at the read: ages are measured against it, not the local clock."""
    queued: int
    running: int
    oldest_queued_age_seconds: float | None
    workers_alive: int | None
    """Workers that sent a heartbeat in the last 90 s; None when not known (API mode)."""
    pending_approvals: int
    queue_history: tuple[QueuePoint, ...]
    success_history: tuple[RatePoint, ...]
    by_language: tuple[LanguageRate, ...]
    recent_runs: tuple[RecentRun, ...]
    approvals: tuple[Approval, ...]
    kpis: tuple[Kpi, ...]
    alerts: tuple[Alert, ...]
    scope: str = "all tenants"
    partial: str | None = None
    """Set when some figures could not be read exactly (and why)."""

    @property
    def firing(self) -> tuple[Alert, ...]:
        return tuple(a for a in self.alerts if a.firing)

    def kpi(self, key: str) -> Kpi:
        for kpi in self.kpis:
            if kpi.key == key:
                return kpi
        raise KeyError(key)
