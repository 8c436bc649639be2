"""The verdict rules of DESIGN.md, and reasons that name the harm."""

from __future__ import annotations

from typing import Any

from simcore.gateway.scoring import PhaseScore, percentile
from simcore.gateway.verdict import decide
from simcore.model import RunStatus


def _score(rate: float, **metrics: Any) -> PhaseScore:
    base = {"success_rate": rate, "duplicate_charges": 0, "wrong_payments": 0}
    base.update(metrics)
    return PhaseScore(frozenset(), base, metrics.get("wrong_payments", 0), 0)


def test_percentiles_use_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([7], 99) == 7 and percentile([], 50) == 0


def test_success_needs_the_threshold_and_no_harm() -> None:
    verdict = decide(_score(0.7), _score(0.96), 0, 0.95, has_patch=True)
    assert verdict.status is RunStatus.SUCCESS
    assert verdict.reasons == ("success rate 96.0% meets the 95.0% threshold (baseline 70.0%)",)


def test_better_than_baseline_but_under_threshold_is_partial() -> None:
    verdict = decide(_score(0.7), _score(0.8), 0, 0.95, has_patch=True)
    assert verdict.status is RunStatus.PARTIAL_SUCCESS
    assert verdict.reasons[1] == "improved over baseline (70.0% -> 80.0%)"


def test_harm_fails_the_run_even_above_the_threshold() -> None:
    verdict = decide(
        _score(0.7), _score(0.99, duplicate_charges=3, wrong_payments=12), 2, 0.9,
        has_patch=True, patch_errors=["ZeroDivisionError: division by zero"],
    )  # fmt: skip
    assert verdict.status is RunStatus.FAILED
    assert verdict.reasons == (
        "patch raised: ZeroDivisionError: division by zero",
        "3 duplicate charges",
        "12 wrong payments (currency changed)",
        "2 regressions (ops that succeeded in baseline failed when patched)",
    )


def test_no_improvement_is_named() -> None:
    verdict = decide(_score(0.7), _score(0.7), 0, 0.85, has_patch=True)
    assert verdict.status is RunStatus.FAILED
    assert "no improvement over baseline (70.0% -> 70.0%)" in verdict.reasons


def test_a_protocol_violation_is_the_first_reason_and_hides_unplayed_ops() -> None:
    verdict = decide(_score(0.7), _score(0.1), 60, 0.85, has_patch=True, violation="bad line")
    assert verdict.reasons == ("protocol_violation: bad line",)
