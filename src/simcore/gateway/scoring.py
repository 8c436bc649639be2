"""Per-op scoring and per-phase metrics, from the gateway's ledger (never from the SDK's word).

An op succeeds when the gateway holds exactly one payment for it, with the intended amount
and currency, and the SDK reported success (naming that payment) within the op deadline.
Metric names are DESIGN.md's; ``total_requests``/``failed_requests`` count operations, as in
the runbook's example (100 requests, 8 failed, success_rate 0.92); HTTP attempts are
``http_requests`` and ``retries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from simcore.gateway.server import Payment

RATE_DIGITS = 4
MS_DIGITS = 1


@dataclass(slots=True)
class OpRecord:
    """What happened to one op in one phase, as the gateway saw it."""

    index: int
    attempts: int
    latency_ms: int
    sdk_ok: bool
    payment_id: str | None
    on_time: bool


@dataclass(slots=True)
class PhaseOutcome:
    name: str
    records: list[OpRecord] = field(default_factory=list)
    payments_by_op: dict[int, list[Payment]] = field(default_factory=dict)
    simulated_ms: int = 0
    patch_invocations: int = 0
    patch_errors: int = 0


@dataclass(frozen=True, slots=True)
class PhaseScore:
    succeeded: frozenset[int]
    metrics: dict[str, Any]
    wrong_currency: int
    wrong_amount: int


def percentile(sorted_values: Sequence[int], pct: int) -> int:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0
    rank = -(-pct * len(sorted_values) // 100)  # ceil without floats
    return sorted_values[max(rank, 1) - 1]


def score_phase(phase: PhaseOutcome, expected: Sequence[tuple[int, str]], total: int) -> PhaseScore:
    """Score every played op against its intended ``(amount, currency)``; ops never played
    (the run was cut short) count as failed."""
    succeeded: set[int] = set()
    duplicates = wrong_currency = wrong_amount = wrong = retries = http = 0
    latencies: list[int] = []
    for record in phase.records:
        amount, currency = expected[record.index]
        payments = phase.payments_by_op.get(record.index, [])
        duplicates += max(0, len(payments) - 1)
        for p in payments:
            bad_currency = p.currency != currency
            bad_amount = p.amount != amount
            wrong += bad_currency or bad_amount
            wrong_currency += bad_currency
            wrong_amount += bad_amount
        ok = (
            record.sdk_ok
            and record.on_time
            and len(payments) == 1
            and payments[0].id == record.payment_id
            and payments[0].currency == currency
            and payments[0].amount == amount
        )
        if ok:
            succeeded.add(record.index)
        latencies.append(record.latency_ms)
        retries += max(0, record.attempts - 1)
        http += record.attempts
    latencies.sort()
    metrics: dict[str, Any] = {
        "success_rate": round(len(succeeded) / total, RATE_DIGITS) if total else 0.0,
        "avg_latency_ms": round(sum(latencies) / len(latencies), MS_DIGITS) if latencies else 0.0,
        "p50_latency_ms": percentile(latencies, 50),
        "p95_latency_ms": percentile(latencies, 95),
        "p99_latency_ms": percentile(latencies, 99),
        "total_requests": total,
        "failed_requests": total - len(succeeded),
        "retries": retries,
        "http_requests": http,
        "duplicate_charges": duplicates,
        "wrong_payments": wrong,
        "patch_invocations": phase.patch_invocations,
        "patch_errors": phase.patch_errors,
        "simulated_ms": phase.simulated_ms,
    }
    return PhaseScore(frozenset(succeeded), metrics, wrong_currency, wrong_amount)


def run_metrics(baseline: PhaseScore, patched: PhaseScore) -> dict[str, Any]:
    """The run's metrics: the patched phase's, plus ``baseline``, regressions, improvement."""
    metrics = dict(patched.metrics)
    metrics["regressions"] = len(baseline.succeeded - patched.succeeded)
    metrics["baseline"] = dict(baseline.metrics)
    metrics["improvement"] = round(
        patched.metrics["success_rate"] - baseline.metrics["success_rate"], RATE_DIGITS
    )
    return metrics
