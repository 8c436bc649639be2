from __future__ import annotations

import json

import pytest

from simcore.errors import InvalidInput
from simcore.model import ErrorKind, Scenario
from simcore.templates import RUNBOOK_TEMPLATES, TEMPLATES, get_template

RUNBOOK_HMAC = """{
  "error": "signature_mismatch",
  "error_frequency": 0.3,
  "latency_ms": 500,
  "total_requests": 100,
  "success_threshold": 0.85
}"""


def test_runbook_scenario_json_is_accepted_as_written() -> None:
    scenario = Scenario.parse(RUNBOOK_HMAC)
    assert scenario.error is ErrorKind.SIGNATURE_MISMATCH
    assert scenario.error_frequency == 0.3
    assert scenario.total_requests == 100
    assert scenario.to_json() | {} == {**json.loads(RUNBOOK_HMAC), "latency_jitter_ms": 0}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"error_frequence": 0.3}, "scenario.error_frequence", "unknown field"),
        ({"error_frequency": 1.5}, "scenario.error_frequency", "less than or equal to 1"),
        ({"error_frequency": True}, "scenario.error_frequency", "not a boolean"),
        ({"total_requests": 0}, "scenario.total_requests", "greater than or equal to 1"),
        ({"latency_ms": -5}, "scenario.latency_ms", "greater than or equal to 0"),
        ({"error": "cosmic_ray"}, "scenario.error", "signature_mismatch"),
        ({"success_threshold": "high"}, "scenario.success_threshold", "valid number"),
    ],
)
def test_bad_scenarios_name_the_field(change: dict[str, object], field: str, reason: str) -> None:
    data = {**json.loads(RUNBOOK_HMAC), **change}
    with pytest.raises(InvalidInput) as info:
        Scenario.parse(data)
    assert info.value.field == field
    assert reason in info.value.reason


def test_missing_field_and_bad_json() -> None:
    with pytest.raises(InvalidInput, match=r"scenario.total_requests: required field"):
        Scenario.parse(
            {"error": "timeout", "error_frequency": 0.1, "latency_ms": 1, "success_threshold": 0.9}
        )
    with pytest.raises(InvalidInput, match=r"scenario: not valid JSON"):
        Scenario.parse("{'error': 1}")
    with pytest.raises(InvalidInput, match=r"scenario: must be a JSON object"):
        Scenario.parse("[1, 2]")


def test_runbook_templates_hold_the_runbook_values() -> None:
    assert set(RUNBOOK_TEMPLATES) <= set(TEMPLATES)
    expected = {
        "signature_mismatch": (0.3, 500, 100, 0.85),
        "timeout": (0.2, 1000, 200, 0.90),
        "invalid_currency": (0.1, 300, 150, 0.95),
    }
    for name, (freq, latency, total, threshold) in expected.items():
        s = get_template(name).scenario
        assert s.error.value == name
        assert (s.error_frequency, s.latency_ms, s.total_requests, s.success_threshold) == (
            freq,
            latency,
            total,
            threshold,
        )


def test_unknown_template_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"unknown template 'hmac'.*signature_mismatch"):
        get_template("hmac")
