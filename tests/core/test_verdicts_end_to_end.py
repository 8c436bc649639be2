"""Real runs in the process sandbox: good patches heal, bad patches are caught by name."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from simcore.gateway.faults import plan_fault
from simcore.model import RunStatus
from simcore.runner import Report
from simcore.templates import RUNBOOK_TEMPLATES, TEMPLATES
from tests.core.conftest import LANGUAGES

TemplateRun = Callable[[str, str, str | None], Report]
GOOD = {
    "signature_mismatch": "signature_mismatch-resync-clock",
    "timeout": "timeout-retry-idempotent",
    "invalid_currency": "invalid_currency-normalize-currency",
    "rate_limited": "rate_limited-honour-retry-after",
    "server_error": "server_error-backoff-retry",
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", list(GOOD))
def test_good_patches_heal_every_template(
    template_run: TemplateRun, template: str, language: str
) -> None:
    report = template_run(template, language, GOOD[template])
    m = report.metrics
    assert report.status is RunStatus.SUCCESS, report.reasons
    assert m["success_rate"] >= TEMPLATES[template].scenario.success_threshold
    assert m["baseline"]["success_rate"] < m["success_rate"]
    assert m["duplicate_charges"] == m["wrong_payments"] == m["regressions"] == 0
    assert m["patch_invocations"] == m["baseline"]["failed_requests"] > 0
    assert m["improvement"] == round(m["success_rate"] - m["baseline"]["success_rate"], 4)


def test_the_runbook_templates_are_among_them() -> None:
    assert set(RUNBOOK_TEMPLATES) <= set(GOOD)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", list(TEMPLATES))
def test_without_a_patch_the_baseline_fails_exactly_the_faulty_ops(
    template_run: TemplateRun, template: str, language: str
) -> None:
    scenario = TEMPLATES[template].scenario
    report = template_run(template, language, None)
    faulty = sum(plan_fault(1, i, scenario).faulty for i in range(scenario.total_requests))
    m = report.metrics
    assert m["failed_requests"] == faulty
    expected = 1 - scenario.error_frequency
    spread = 3 * (scenario.error_frequency * expected / scenario.total_requests) ** 0.5
    assert abs(m["success_rate"] - expected) <= spread
    assert m["baseline"] == {k: v for k, v in m.items() if k in m["baseline"]}
    assert report.patch is None and "no patch: baseline only" in report.reasons


def _rolled_back(report: Report) -> bool:
    return any(e["name"] == "rollback" for e in report.events["notable"])


@pytest.mark.parametrize("language", LANGUAGES)
def test_timeout_retry_without_key_is_failed_for_duplicate_charges(
    template_run: TemplateRun, language: str
) -> None:
    report = template_run("timeout", language, "timeout-retry-without-key")
    dup = report.metrics["duplicate_charges"]
    assert report.status is RunStatus.FAILED and dup > 0
    assert report.reasons[0] == f"{dup} duplicate charges"
    assert _rolled_back(report)


@pytest.mark.parametrize("language", LANGUAGES)
def test_currency_forced_to_xof_is_failed_for_wrong_payments(
    template_run: TemplateRun, language: str
) -> None:
    report = template_run("invalid_currency", language, "invalid_currency-force-xof")
    wrong = report.metrics["wrong_payments"]
    assert report.status is RunStatus.FAILED and wrong > 0
    assert report.reasons[0] == f"{wrong} wrong payments (currency changed)"
    assert _rolled_back(report)


@pytest.mark.parametrize("language", LANGUAGES)
def test_signature_retry_without_resync_is_failed_for_no_improvement(
    template_run: TemplateRun, language: str
) -> None:
    report = template_run("signature_mismatch", language, "signature_mismatch-retry-without-resync")
    m = report.metrics
    assert report.status is RunStatus.FAILED
    assert m["success_rate"] == m["baseline"]["success_rate"]
    assert m["retries"] == m["patch_invocations"] > 0
    assert any(r.startswith("no improvement over baseline") for r in report.reasons)
    assert _rolled_back(report)
