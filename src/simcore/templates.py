"""Built-in scenario templates: the runbook's three, under stable names, and a few more."""

from __future__ import annotations

from dataclasses import dataclass

from simcore.errors import InvalidInput
from simcore.model import ErrorKind, Scenario


@dataclass(frozen=True)
class Template:
    name: str
    title: str
    description: str
    scenario: Scenario


def _t(name: str, title: str, description: str, **scenario: object) -> Template:
    return Template(name, title, description, Scenario.model_validate(scenario))


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        # The runbook's "Templates de simulation", values exactly as written there.
        _t(
            "signature_mismatch",
            "HMAC Signature",
            "30% of requests signed with a drifted clock; 401 with the server time.",
            error=ErrorKind.SIGNATURE_MISMATCH,
            error_frequency=0.3,
            latency_ms=500,
            total_requests=100,
            success_threshold=0.85,
        ),
        _t(
            "timeout",
            "Timeout Network",
            "20% of responses slower than the client timeout; the charge may still land.",
            error=ErrorKind.TIMEOUT,
            error_frequency=0.2,
            latency_ms=1000,
            total_requests=200,
            success_threshold=0.90,
        ),
        _t(
            "invalid_currency",
            "Invalid Currency",
            "10% of operations carry a malformed currency code ('xof', ' XOF', 'FCFA').",
            error=ErrorKind.INVALID_CURRENCY,
            error_frequency=0.1,
            latency_ms=300,
            total_requests=150,
            success_threshold=0.95,
        ),
        # Beyond the runbook: the faults DESIGN.md lists as "later".
        _t(
            "rate_limited",
            "Rate Limited",
            "25% of requests answered 429 with Retry-After.",
            error=ErrorKind.RATE_LIMITED,
            error_frequency=0.25,
            latency_ms=200,
            total_requests=150,
            success_threshold=0.95,
        ),
        _t(
            "server_error",
            "Server Error",
            "15% of requests answered 502/503 by a flaky upstream.",
            error=ErrorKind.SERVER_ERROR,
            error_frequency=0.15,
            latency_ms=400,
            total_requests=150,
            success_threshold=0.95,
        ),
    )
}

RUNBOOK_TEMPLATES = ("signature_mismatch", "timeout", "invalid_currency")


def get_template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except KeyError:
        known = ", ".join(TEMPLATES)
        raise InvalidInput("template", f"unknown template {name!r} (known: {known})") from None
