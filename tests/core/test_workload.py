"""The workload: realistic, synthetic personal data, the same ops in both phases."""

from __future__ import annotations

import re

import pytest

from simcore.gateway.faults import plan_fault
from simcore.gateway.workload import SUPPORTED_CURRENCIES, Workload, luhn_check_digit
from simcore.model import Scenario

# The workload's numbers are checked with the validators the redactor relies on.
from simcore.redact import iban_valid, luhn_valid
from simcore.templates import TEMPLATES

PHONES = {
    "SN": r"\+221 7[05678] \d{3} \d{2} \d{2}",
    "CI": r"\+225 0[157] \d{2} \d{2} \d{2} \d{2}",
    "GH": r"\+233 [25]\d \d{3} \d{4}",
    "NG": r"\+234 [789]0\d \d{3} \d{4}|\+234 81\d \d{3} \d{4}",
    "FR": r"\+33 [67] \d{2} \d{2} \d{2} \d{2}",
    "DE": r"\+49 1[5-7]\d \d{8}",
}


def _ops(template: str, n: int = 400, seed: int = 3) -> list[object]:
    scenario = TEMPLATES[template].scenario.model_copy(update={"total_requests": n})
    workload = Workload(seed, scenario)
    return [workload.op(i, plan_fault(seed, i, scenario)) for i in range(n)]


def test_luhn_helpers_agree_with_known_numbers() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert luhn_check_digit("7992739871") == "3"
    assert iban_valid("FR14 2004 1010 0505 0001 3M02 606")
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")


def test_personal_data_looks_real() -> None:
    countries, methods = set(), set()
    for op in _ops("timeout"):
        c = op.customer  # type: ignore[attr-defined]
        countries.add(c.country)
        assert re.fullmatch(PHONES[c.country], c.phone), c.phone
        assert re.fullmatch(r"[a-z0-9._]+@[a-z0-9.-]+\.[a-z]+", c.email), c.email
        assert len(c.name.split()) >= 2
        method = c.payment_method
        methods.add(method["type"])
        if method["type"] == "card":
            assert len(method["card"]["number"]) == 16
            assert luhn_valid(method["card"]["number"])
        elif method["type"] == "bank_transfer":
            assert method["iban"][:2] in ("FR", "DE") and iban_valid(method["iban"])
        assert op.amount > 0  # type: ignore[attr-defined]
        assert op.currency in SUPPORTED_CURRENCIES  # type: ignore[attr-defined]
    assert countries == set(PHONES)
    assert methods == {"card", "mobile_money", "bank_transfer"}


def test_west_african_and_european_names_appear() -> None:
    names = {op.customer.last_name for op in _ops("timeout")}  # type: ignore[attr-defined]
    assert {"Diallo", "Mensah", "Okafor"} & names
    assert {"Müller", "Dubois", "Martin", "Schmidt"} & names


def test_same_seed_same_ops_other_seed_other_ops() -> None:
    assert _ops("timeout", 50) == _ops("timeout", 50)
    assert _ops("timeout", 50) != _ops("timeout", 50, seed=4)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_only_faulty_invalid_currency_ops_carry_a_mangled_currency(seed: int) -> None:
    scenario = Scenario.parse(
        {"error": "invalid_currency", "error_frequency": 0.3, "latency_ms": 100,
         "total_requests": 300, "success_threshold": 0.9}
    )  # fmt: skip
    workload = Workload(seed, scenario)
    mangled = 0
    for i in range(300):
        plan = plan_fault(seed, i, scenario)
        op = workload.op(i, plan)
        assert op.intended_currency in SUPPORTED_CURRENCIES
        if plan.faulty:
            mangled += 1
            assert op.currency not in SUPPORTED_CURRENCIES
            assert op.currency.strip().upper() == op.intended_currency or (
                op.intended_currency == "XOF" and op.currency in ("FCFA", "CFA", "F CFA")
            )
        else:
            assert op.currency == op.intended_currency
    assert 60 <= mangled <= 120
