"""Anonymized error signatures and the SIRA export batch."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from simcore.errors import InvalidInput
from simcore.sira import (
    AnonymizedError,
    anonymize_errors,
    build_export_batch,
    context_hash,
    error_signature,
    hash_input,
)

CUSTOMERS = (
    {"name": "Awa Ndiaye", "email": "awa.ndiaye@orange.sn", "phone": "+221 77 123 45 67"},
    {"name": "Kwame Mensah", "email": "kmensah7@gmail.com", "phone": "+233 24 123 4567"},
)


def _mismatch(i: int, customer: dict[str, str], request_id: str) -> dict[str, Any]:
    """A 401 as the worker records it: different numbers, ids and customer on every op."""
    server_time = 1_736_931_600_000 + 7919 * i
    return {
        "op_id": f"op-{i:06d}",
        "status": 401,
        "message": f"request timestamp outside the 300 s tolerance for {customer['email']}",
        "body": {
            "error": {
                "code": "signature_mismatch",
                "message": "request timestamp outside the 300 s tolerance; re-sync the clock",
                "server_time_ms": server_time,
            }
        },
        "headers": {"X-Request-Id": request_id, "X-Server-Time": str(server_time)},
        "request": {"customer": customer, "amount": 15000 + i, "card": "4111 1111 1111 1111"},
    }


def _timeout(i: int) -> dict[str, Any]:
    return {"error": "timeout", "timed_out": True, "message": f"no answer after {10000 + i} ms"}


def test_signature_is_code_and_status() -> None:
    assert error_signature(_mismatch(1, CUSTOMERS[0], "req_1")) == "signature_mismatch:401"
    assert error_signature({"error_code": "Rate Limited", "http_status": "429"}) == (
        "rate_limited:429"
    )
    assert error_signature(_timeout(1)) == "timeout"
    assert error_signature({"body": '{"error": {"code": "server_error"}}', "status": 502}) == (
        "server_error:502"
    )
    assert error_signature({"status": 500}) == "unknown:500"
    # A code carrying personal data keeps only the kind of datum.
    assert error_signature({"code": "blocked awa@x.sn", "status": 403}) == "blocked_email:403"


def test_same_kind_of_error_same_hash_across_runs() -> None:
    first = _mismatch(1, CUSTOMERS[0], "req_ab00000001")
    second = _mismatch(97, CUSTOMERS[1], "req_zq00004242")
    assert hash_input(first) == hash_input(second)
    assert context_hash(first) == context_hash(second)
    other = {**first, "body": {"error": {"code": "invalid_signature", "message": "bad hmac"}}}
    assert context_hash(other) != context_hash(first)


def test_hash_input_is_redacted_and_normalized() -> None:
    event = _mismatch(3, CUSTOMERS[0], "req_ab00000003")
    event["message"] = "échec pour Awa Ndiaye (awa.ndiaye@orange.sn, +221 77 123 45 67)"
    event["body"]["customer"] = CUSTOMERS[0]
    material = hash_input(event)
    for datum in ("Awa", "Ndiaye", "awa.ndiaye", "77 123", "4111", "15003", "req_ab"):
        assert datum not in material
    assert "<NAME>" in material and "<EMAIL>" in material and "<PHONE>" in material
    assert context_hash(event) == hashlib.sha256(material.encode()).hexdigest()


def test_anonymize_errors_groups_by_signature() -> None:
    events = [_mismatch(i, CUSTOMERS[i % 2], f"req_{i:010d}") for i in range(6)]
    events += [_timeout(i) for i in range(3)]
    records = anonymize_errors(events, total_requests=100, sdk_language="python")
    assert [(r.error_signature, r.category, r.occurrences, r.frequency) for r in records] == [
        ("signature_mismatch:401", "authentication", 6, 0.06),
        ("timeout", "timeout", 3, 0.03),
    ]
    assert records[0].context_hash == context_hash(events[0])
    assert all(r.sdk_language == "python" and len(r.context_hash) == 64 for r in records)


def test_frequency_is_capped_and_inputs_checked() -> None:
    records = anonymize_errors(
        [_timeout(i) for i in range(5)], total_requests=2, sdk_language="node"
    )
    assert records[0].frequency == 1.0
    assert anonymize_errors([], total_requests=10, sdk_language="node") == []
    with pytest.raises(InvalidInput, match="total_requests"):
        anonymize_errors([], total_requests=0, sdk_language="node")
    with pytest.raises(InvalidInput, match="sdk_language: 'cobol' is not one of"):
        anonymize_errors([], total_requests=1, sdk_language="cobol")
    with pytest.raises(InvalidInput, match=r"events\[1\]: must be an object, not str"):
        anonymize_errors([_timeout(0), "awa@x.sn"], total_requests=1, sdk_language="node")  # type: ignore[list-item]


def test_export_batch_holds_only_whitelisted_redacted_fields() -> None:
    events = [_mismatch(i, CUSTOMERS[i % 2], f"req_{i:010d}") for i in range(4)]
    records = anonymize_errors(events, total_requests=10, sdk_language="node")
    row = {
        "id": 7,
        "run_id": str(uuid.uuid4()),
        "error_signature": "rate_limited:429",
        "category": "rate_limit",
        "sdk_language": "php",
        "frequency": 0.25,
        "context_hash": "ab" * 32,
        "exported_to_sira": False,
        "created_at": datetime(2025, 1, 15, tzinfo=UTC),
    }
    batch_id = uuid.UUID(int=42)
    batch = build_export_batch(
        [*records, row], batch_id=batch_id, generated_at=datetime(2025, 1, 15, 10, tzinfo=UTC)
    )
    assert batch == {
        "format": "simtui.sira.anonymized_errors",
        "version": 1,
        "batch_id": str(batch_id),
        "generated_at": "2025-01-15T10:00:00Z",
        "count": 2,
        "records": [
            {
                "error_signature": "signature_mismatch:401",
                "category": "authentication",
                "sdk_language": "node",
                "frequency": 0.4,
                "context_hash": records[0].context_hash,
            },
            {
                "error_signature": "rate_limited:429",
                "category": "rate_limit",
                "sdk_language": "php",
                "frequency": 0.25,
                "context_hash": "ab" * 32,
            },
        ],
    }
    text = json.dumps(batch)
    for customer in CUSTOMERS:
        for value in customer.values():
            assert value not in text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"context_hash": "request timestamp for awa@x.sn"}, "rows[0].context_hash"),
        ({"frequency": 1.5}, "rows[0].frequency"),
        ({"frequency": "often"}, "rows[0].frequency"),
        ({"error_signature": ""}, "rows[0].error_signature"),
        ({"error_signature": "timeout:soon"}, "rows[0].error_signature"),
        ({"sdk_language": "cobol"}, "rows[0].sdk_language"),
    ],
)
def test_export_refuses_rows_that_could_leak(change: dict[str, Any], field: str) -> None:
    row = AnonymizedError("timeout", "timeout", "node", 1, 0.1, "cd" * 32).to_row()
    with pytest.raises(InvalidInput) as caught:
        build_export_batch([{**row, **change}])
    assert caught.value.field == field


def test_export_rebuilds_signatures_from_their_parts() -> None:
    row = AnonymizedError("Call awa@x.sn:401", "Auth Errors", "ruby", 1, 0.1, "cd" * 32)
    record = build_export_batch([row])["records"][0]
    assert record["error_signature"] == "call_email:401"
    assert record["category"] == "auth_errors"


def test_export_needs_an_aware_time() -> None:
    with pytest.raises(InvalidInput, match="generated_at"):
        build_export_batch([], generated_at=datetime(2025, 1, 15))
