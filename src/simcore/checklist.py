"""The runbook's daily checklist ("🏁 Checklist quotidienne"), evaluated from the data.

Each item is the runbook's line, a pass/fail mark and the figures behind it; the items that
ask a person to review something (failed runs, pending approvals) fail while there is
something to review, and list it. ``simcore checklist`` exits non-zero when an item fails, so
cron can run it and page on the exit status.

Everything is read in one REPEATABLE READ, READ ONLY transaction against one ``now`` (passed
in, so tests can put it where they need), in the caller's tenant scope.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from simcore import approvals, rollout
from simcore.auth import Principal
from simcore.enums import ApprovalStatus
from simcore.metrics import VERDICT_STATUSES
from simcore.rollout import CanaryRule, Decision
from simcore.snapshot import KPI_QUEUE_DEPTH, KPI_SUCCESS_RATE

SUCCESS_WINDOW = timedelta(hours=24)
REVIEW_WINDOW = timedelta(hours=24)
SIRA_MAX_AGE = timedelta(hours=24)
STUCK_AFTER = timedelta(hours=1)
LISTED = 50
"""At most this many runs or approvals are listed per item (the count is always exact)."""
CANARY_OBSERVATIONS = 5
REVIEW_STATUSES = ("failed", "error", "timeout")
"""Finished runs whose root cause someone should look at."""


@dataclass(frozen=True)
class Item:
    key: str
    title: str
    """The runbook's line."""
    ok: bool
    summary: str
    figures: Mapping[str, Any] = field(default_factory=dict)
    entries: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "ok": self.ok,
            "summary": self.summary,
            "figures": dict(self.figures),
            "entries": [dict(e) for e in self.entries],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Item:
        return cls(
            key=data["key"],
            title=data["title"],
            ok=bool(data["ok"]),
            summary=data["summary"],
            figures=dict(data["figures"]),
            entries=tuple(dict(e) for e in data["entries"]),
        )


@dataclass(frozen=True)
class Checklist:
    at: datetime
    scope: str
    items: tuple[Item, ...]

    @property
    def ok(self) -> bool:
        return all(item.ok for item in self.items)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(item.key for item in self.items if not item.ok)

    def item(self, key: str) -> Item:
        for item in self.items:
            if item.key == key:
                return item
        raise KeyError(key)

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "scope": self.scope,
            "ok": self.ok,
            "failed": list(self.failed),
            "items": [item.to_json() for item in self.items],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Checklist:
        """The inverse of ``to_json`` (``ok`` and ``failed`` are derived from the items)."""
        return cls(
            at=datetime.fromisoformat(data["at"]),
            scope=data["scope"],
            items=tuple(Item.from_json(item) for item in data["items"]),
        )


_SCOPE = (
    "(%(tt)s::text IS NULL OR {a}tenant_type = %(tt)s) "
    "AND (%(ti)s::text IS NULL OR {a}tenant_id = %(ti)s)"
)


def _scope(alias: str = "") -> str:
    return _SCOPE.format(a=f"{alias}." if alias else "")


def _age(now: datetime, moment: datetime | None) -> float | None:
    return max((now - moment).total_seconds(), 0.0) if moment is not None else None


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _one(conn: psycopg.Connection[Any], query: str, params: Mapping[str, Any]) -> dict[str, Any]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return dict(row)


def _count(conn: psycopg.Connection[Any], query: str, params: Mapping[str, Any]) -> int:
    return int(_one(conn, query, params)["n"])


def _queue_depth(conn: psycopg.Connection[Any], p: Mapping[str, Any]) -> Item:
    row = _one(
        conn,
        "SELECT count(*) FILTER (WHERE status = 'queued') AS queued, "
        "count(*) FILTER (WHERE status = 'running') AS running, "
        "min(run_at) FILTER (WHERE status = 'queued') AS oldest "
        f"FROM sdk_simulation_runs WHERE status IN ('queued', 'running') AND {_scope()}",
        p,
    )
    queued, running = int(row["queued"]), int(row["running"])
    oldest = _age(p["now"], row["oldest"])
    return Item(
        "queue_depth",
        f"Vérifier queue depth < {KPI_QUEUE_DEPTH}",
        queued < KPI_QUEUE_DEPTH,
        f"{queued} queued (limit {KPI_QUEUE_DEPTH}), {running} running, "
        f"oldest queued {_span(oldest)}",
        {
            "queued": queued,
            "running": running,
            "limit": KPI_QUEUE_DEPTH,
            "oldest_queued_age_seconds": oldest,
        },
    )


_VERDICT = ", ".join(f"'{s}'" for s in VERDICT_STATUSES)


def _success_rate(conn: psycopg.Connection[Any], p: Mapping[str, Any]) -> Item:
    row = _one(
        conn,
        "SELECT count(*) AS finished, count(*) FILTER (WHERE status = 'success') AS succeeded "
        f"FROM sdk_simulation_runs WHERE status IN ({_VERDICT}) "
        "AND completed_at > %(now)s - %(success_window)s AND completed_at <= %(now)s "
        f"AND {_scope()}",
        p,
    )
    finished, succeeded = int(row["finished"]), int(row["succeeded"])
    rate = succeeded / finished if finished else None
    target = f"{KPI_SUCCESS_RATE:.0%}"
    title = f"Vérifier success rate > {target}"
    figures = {
        "finished": finished,
        "succeeded": succeeded,
        "success_rate": rate,
        "target": KPI_SUCCESS_RATE,
        "window_hours": 24,
    }
    if rate is None:
        # Nothing ran: no failure to report (a stalled queue is the queue items' business).
        return Item("success_rate", title, True, "no finished run in the last 24 h", figures)
    return Item(
        "success_rate",
        title,
        rate > KPI_SUCCESS_RATE,
        f"{rate:.1%} of {_n(finished, 'run')} succeeded in the last 24 h (target > {target})",
        figures,
    )


def _failed_runs(conn: psycopg.Connection[Any], p: Mapping[str, Any]) -> Item:
    where = (
        f"r.status IN ({', '.join(repr(s) for s in REVIEW_STATUSES)}) "
        f"AND r.completed_at > %(now)s - %(review_window)s AND r.completed_at <= %(now)s "
        f"AND {_scope('r')}"
    )
    count = _count(conn, f"SELECT count(*) AS n FROM sdk_simulation_runs r WHERE {where}", p)
    rows = conn.execute(
        "SELECT r.id, r.status, r.completed_at, r.error_message, r.reasons, r.seed, "
        "s.name AS simulation_name, s.sdk_language, s.scenario ->> 'error' AS error "
        "FROM sdk_simulation_runs r JOIN sdk_simulations s ON s.id = r.simulation_id "
        f"WHERE {where} ORDER BY r.completed_at DESC, r.id LIMIT %(listed)s",
        p,
    ).fetchall()
    entries = tuple(
        {
            "run_id": str(r["id"]),
            "status": r["status"],
            "simulation": r["simulation_name"],
            "sdk_language": r["sdk_language"],
            "error": r["error"],
            "seed": r["seed"],
            "completed_at": r["completed_at"].isoformat(),
            # The verdict's reasons first; an infrastructure error has only its message.
            "reasons": list(r["reasons"] or [])
            or ([r["error_message"]] if r["error_message"] else []),
        }
        for r in rows
    )
    return Item(
        "failed_runs",
        "Review failed runs (analyse root cause)",
        count == 0,
        f"{_n(count, 'failed, timed out or errored run')} in the last 24 h to review"
        if count
        else "no failed run in the last 24 h",
        {"count": count, "statuses": list(REVIEW_STATUSES), "window_hours": 24},
        entries,
    )


def _sira_export(conn: psycopg.Connection[Any], p: Mapping[str, Any]) -> Item:
    row = _one(
        conn,
        "SELECT count(*) AS pending, "
        "count(*) FILTER (WHERE e.created_at < %(now)s - %(sira_age)s) AS overdue, "
        "min(e.created_at) AS oldest FROM sdk_anonymized_errors e "
        "WHERE NOT e.exported_to_sira AND (%(tt)s::text IS NULL OR EXISTS ("
        f"SELECT 1 FROM sdk_simulation_runs r WHERE r.id = e.run_id AND {_scope('r')}))",
        p,
    )
    pending, overdue = int(row["pending"]), int(row["overdue"])
    oldest = _age(p["now"], row["oldest"])
    return Item(
        "sira_export",
        "Export anonymized errors vers SIRA (< 24h old)",
        overdue == 0,
        f"{overdue} of {_n(pending, 'anonymized error')} waiting for export older than 24 h "
        "(simcore sira export)"
        if overdue
        else f"{_n(pending, 'anonymized error')} waiting for export, none older than 24 h",
        {"pending": pending, "older_than_24h": overdue, "oldest_age_seconds": oldest},
    )


def _stuck_runs(conn: psycopg.Connection[Any], p: Mapping[str, Any]) -> Item:
    where = (
        "((r.status = 'queued' AND r.run_at < %(now)s - %(stuck)s) OR (r.status = 'running' "
        f"AND coalesce(r.started_at, r.run_at) < %(now)s - %(stuck)s)) AND {_scope('r')}"
    )
    count = _count(conn, f"SELECT count(*) AS n FROM sdk_simulation_runs r WHERE {where}", p)
    rows = conn.execute(
        "SELECT r.id, r.status, r.run_at, r.started_at, r.worker_id, r.lease_until "
        f"FROM sdk_simulation_runs r WHERE {where} ORDER BY r.run_at, r.id LIMIT %(listed)s",
        p,
    ).fetchall()
    entries = tuple(
        {
            "run_id": str(r["id"]),
            "status": r["status"],
            "since": (r["started_at"] or r["run_at"]).isoformat(),
            "age_seconds": _age(p["now"], r["started_at"] or r["run_at"]),
            "worker_id": r["worker_id"],
        }
        for r in rows
    )
    return Item(
        "stuck_runs",
        "Vérifier aucun timeout/stuck depuis > 1h",
        count == 0,
        f"{_n(count, 'run')} queued or running for more than 1 h"
        if count
        else "no run stuck for 1 h",
        {"count": count, "threshold_seconds": STUCK_AFTER.total_seconds()},
        entries,
    )


def _pending_approvals(conn: psycopg.Connection[Any], p: Mapping[str, Any]) -> Item:
    count = int(
        _one(
            conn,
            "SELECT count(*) AS n FROM sdk_patch_approvals "
            f"WHERE status = 'pending' AND {_scope()}",
            p,
        )["n"]
    )
    pending = approvals.list_scoped(
        conn,
        status=ApprovalStatus.PENDING,
        tenant_type=p["tt"],
        tenant_id=p["ti"],
        limit=LISTED,
    )
    entries = tuple(
        {
            "run_id": str(a.simulation_run_id),
            "patch": a.patch_slug or str(a.patch_id),
            "sdk_language": a.sdk_language,
            "success_rate": a.success_rate,
            "baseline_success_rate": a.baseline_success_rate,
            "requested_by": a.requested_by,
            "waiting_seconds": _age(p["now"], a.created_at),
        }
        for a in sorted(pending, key=lambda a: a.created_at)
    )
    return Item(
        "pending_approvals",
        "Review pending patch approvals",
        count == 0,
        f"{_n(count, 'patch', 'patches')} waiting for an ops decision"
        if count
        else "no pending approval",
        {"count": count},
        entries,
    )


def _canary(conn: psycopg.Connection[Any], p: Mapping[str, Any], rule: CanaryRule) -> Item:
    now: datetime = p["now"]
    entries = []
    bad = 0
    for r in rollout.in_rollout(conn, tenant_type=p["tt"], tenant_id=p["ti"]):
        evaluation = rollout.evaluate_rollout(conn, r, now=now, rule=rule)
        latest = rollout.observations(conn, r.approval_id, until=now, limit=CANARY_OBSERVATIONS)
        failing = evaluation.decision is Decision.ROLLBACK or evaluation.stale
        bad += failing
        entries.append(
            {
                "run_id": str(r.run_id),
                "patch": r.patch_slug or str(r.patch_id),
                "status": r.status.value,
                "rollout_percentage": r.rollout_percentage,
                "decision": evaluation.decision.value,
                "reason": evaluation.reason,
                "ok": not failing,
                "in_window": evaluation.in_window,
                "min_rate": evaluation.min_rate,
                "mean_rate": evaluation.mean_rate,
                "latest": [
                    {
                        "observed_at": o.observed_at.isoformat(),
                        "success_rate": o.success_rate,
                        "requests": o.requests,
                    }
                    for o in latest
                ],
            }
        )
    total = len(entries)
    if not total:
        summary = "no patch staged or deployed"
    elif bad:
        summary = (
            f"{bad} of {_n(total, 'patch', 'patches')} in rollout need attention "
            "(roll back, or no metrics)"
        )
    else:
        summary = f"{_n(total, 'patch', 'patches')} in rollout, healthy or waiting for evidence"
    return Item(
        "canary",
        "Monitor staging canary metrics",
        bad == 0,
        summary,
        {"in_rollout": total, "failing": bad, "rule": rule.to_json()},
        tuple(entries),
    )


def run(
    conn: psycopg.Connection[Any],
    principal: Principal,
    *,
    now: datetime,
    rule: CanaryRule = rollout.DEFAULT_RULE,
) -> Checklist:
    """Evaluate every item; call at the start of a transaction (it sets the isolation)."""
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    params: dict[str, Any] = {
        "now": now,
        "tt": principal.tenant_type.value if principal.tenant_type else None,
        "ti": principal.tenant_id,
        "success_window": SUCCESS_WINDOW,
        "review_window": REVIEW_WINDOW,
        "sira_age": SIRA_MAX_AGE,
        "stuck": STUCK_AFTER,
        "listed": LISTED,
    }
    scope = (
        "all tenants"
        if principal.tenant_type is None
        else f"{principal.tenant_type.value}/{principal.tenant_id or '*'}"
    )
    return Checklist(
        now,
        scope,
        (
            _queue_depth(conn, params),
            _success_rate(conn, params),
            _failed_runs(conn, params),
            _sira_export(conn, params),
            _stuck_runs(conn, params),
            _pending_approvals(conn, params),
            _canary(conn, params, rule),
        ),
    )
