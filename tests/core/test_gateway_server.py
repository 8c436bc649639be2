"""The fake payments API decides every outcome: authentication, charges, replays, faults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simcore.gateway.faults import FaultPlan
from simcore.gateway.server import (
    EPOCH_MS,
    HttpResponse,
    PaymentsServer,
    Signer,
    SimConfig,
    sign,
)
from simcore.gateway.workload import SUPPORTED_CURRENCIES
from simcore.model import Scenario

HEALTHY = FaultPlan(False, 0, 0, 0, False, 0, 0, 502)


def _scenario(error: str = "timeout", **extra: Any) -> Scenario:
    base = {"error": error, "error_frequency": 0.5, "latency_ms": 200, "total_requests": 10,
            "success_threshold": 0.9}  # fmt: skip
    return Scenario.parse({**base, **extra})


class Client:
    """Signs like the SDKs do, so each test states only what it changes."""

    def __init__(self, server: PaymentsServer) -> None:
        self.server = server
        self.config = server.config
        self.offset = 0

    def post(
        self,
        body: dict[str, Any] | None = None,
        key: str | None = "idem_op-000001",
        timeout_ms: int = 10_000,
        stamp: int | None = None,
        secret: str | None = None,
    ) -> HttpResponse:
        text = json.dumps(body or {"amount": 5000, "currency": "XOF", "reference": "r"})
        ts = str(self.server.local_now() + self.offset if stamp is None else stamp)
        headers = {
            "X-Api-Key": self.config.api_key_id,
            "X-Timestamp": ts,
            "X-Signature": sign(secret or self.config.secret, ts, "POST", "/v1/payments", text),
        }
        if key is not None:
            headers["Idempotency-Key"] = key
        return self.server.handle("POST", "/v1/payments", headers, text, timeout_ms)


def _server(scenario: Scenario, plan: FaultPlan = HEALTHY) -> tuple[PaymentsServer, Client]:
    server = PaymentsServer(scenario, 1, SimConfig.for_run(scenario, 1), "t")
    server.begin_op(0, plan)
    return server, Client(server)


def test_a_signed_request_is_charged_once_and_takes_the_latency() -> None:
    server, client = _server(_scenario())
    response = client.post()
    assert response.status == 201 and response.body["object"] == "payment"
    assert response.elapsed_ms == 200 and server.now_ms == EPOCH_MS + 200
    assert len(server.payments_by_op[0]) == 1


def test_a_bad_signature_is_refused_and_charges_nothing() -> None:
    server, client = _server(_scenario())
    response = client.post(secret="sk_wrong")
    assert response.status == 401 and response.body["error"]["code"] == "invalid_signature"
    assert server.payments_by_op[0] == []


def test_a_stale_timestamp_is_a_signature_mismatch_with_the_server_time() -> None:
    server, client = _server(_scenario())
    response = client.post(stamp=EPOCH_MS - 600_000)
    assert response.status == 401
    error = response.body["error"]
    assert error["code"] == "signature_mismatch"
    assert error["server_time_ms"] == server.now_ms
    assert response.headers["X-Server-Time"] == str(server.now_ms)


def test_a_drifted_client_recovers_by_resyncing_its_offset() -> None:
    scenario = _scenario("signature_mismatch")
    plan = FaultPlan(True, 600_000, 0, 0, False, 0, 0, 502)
    server, client = _server(scenario, plan)
    first = client.post()
    assert first.body["error"]["code"] == "signature_mismatch"
    assert client.post().status == 401  # retrying without a re-sync changes nothing
    client.offset = first.body["error"]["server_time_ms"] - server.local_now()
    assert client.post().status == 201


def test_same_idempotency_key_is_replayed_not_charged_again() -> None:
    server, client = _server(_scenario())
    first = client.post()
    again = client.post()
    assert again.status == 201 and again.body["id"] == first.body["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(server.payments_by_op[0]) == 1


def test_same_key_with_other_parameters_is_a_conflict() -> None:
    _, client = _server(_scenario())
    client.post()
    other = client.post({"amount": 1, "currency": "XOF", "reference": "r"})
    assert other.status == 409 and other.body["error"]["code"] == "idempotency_conflict"


def test_a_timed_out_charge_retried_without_key_is_a_duplicate() -> None:
    plan = FaultPlan(True, 0, 0, 0, True, 1_000, 0, 502)
    server, client = _server(_scenario("timeout"), plan)
    lost = client.post(key=None)
    assert lost.timed_out and lost.elapsed_ms == 10_000
    assert server.now_ms == EPOCH_MS + 10_000  # the client gave up at its timeout
    assert len(server.payments_by_op[0]) == 1  # ...but the server had charged
    client.post(key=None)
    assert len(server.payments_by_op[0]) == 2


def test_a_timed_out_charge_retried_with_its_key_is_replayed() -> None:
    plan = FaultPlan(True, 0, 0, 0, True, 1_000, 0, 502)
    server, client = _server(_scenario("timeout"), plan)
    assert client.post().timed_out
    assert client.post().status == 201
    assert len(server.payments_by_op[0]) == 1


def test_a_longer_client_timeout_gets_the_slow_answer() -> None:
    plan = FaultPlan(True, 0, 0, 0, True, 1_000, 0, 502)
    _, client = _server(_scenario("timeout"), plan)
    response = client.post(timeout_ms=20_000)
    assert response.status == 201 and response.elapsed_ms == 11_000


def test_an_unsupported_currency_lists_the_supported_ones() -> None:
    server, client = _server(_scenario("invalid_currency"))
    response = client.post({"amount": 100, "currency": " XOF", "reference": "r"})
    assert response.status == 400
    assert response.body["error"]["supported"] == list(SUPPORTED_CURRENCIES)
    assert server.payments_by_op[0] == []


def test_rate_limit_refuses_retries_before_retry_after() -> None:
    plan = FaultPlan(True, 0, 0, 0, False, 0, 3, 502)
    server, client = _server(_scenario("rate_limited"), plan)
    first = client.post()
    assert first.status == 429 and first.headers["Retry-After"] == "3"
    assert client.post().status == 429  # 200 ms later: still too early
    server.sleep(3_000)
    assert client.post().status == 201


@pytest.mark.parametrize(("status", "charged", "payments"), [(502, True, 1), (503, False, 0)])
def test_server_errors(status: int, charged: bool, payments: int) -> None:
    plan = FaultPlan(True, 0, 0, 0, charged, 0, 0, status)
    server, client = _server(_scenario("server_error"), plan)
    response = client.post()
    assert response.status == status and response.body["error"]["code"] == "server_error"
    assert len(server.payments_by_op[0]) == payments
    assert client.post().status == 201
    assert len(server.payments_by_op[0]) == 1  # the key replays a 502 that had charged


def test_payments_can_be_retrieved_and_unknown_routes_are_404() -> None:
    server, client = _server(_scenario())
    paid = client.post().body["id"]
    ts = str(server.local_now())
    path = f"/v1/payments/{paid}"
    headers = {"X-Api-Key": server.config.api_key_id, "X-Timestamp": ts,
               "X-Signature": sign(server.config.secret, ts, "GET", path, "")}  # fmt: skip
    assert server.handle("GET", path, headers, "", 10_000).body["id"] == paid
    path = "/v1/refunds"
    headers["X-Signature"] = sign(server.config.secret, ts, "GET", path, "")
    assert server.handle("GET", path, headers, "", 10_000).status == 404


@pytest.mark.parametrize("secret", ["", "k", "sk_sim_" + "ab" * 16, "x" * 64, "y" * 65, "é" * 50])
@pytest.mark.parametrize("body", ["", "{}", '{"reference":"Ndèye"}', "z" * 5000])
def test_the_prepared_signer_is_hmac_sha256(secret: str, body: str) -> None:
    assert Signer(secret).sign("1736931600000", "POST", "/v1/payments", body) == sign(
        secret, "1736931600000", "POST", "/v1/payments", body
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("[" * 30_000, "invalid_request"),  # deep nesting is bad JSON, not a RecursionError
        ("[1, 2]", "invalid_request"),
        ('{"amount": 1e999, "currency": "XOF"}', "invalid_amount"),
    ],
)
def test_a_bad_body_is_a_400(body: str, code: str) -> None:
    server, _ = _server(_scenario())
    ts = str(server.local_now())
    signature = sign(server.config.secret, ts, "POST", "/v1/payments", body)
    headers = {"X-Api-Key": server.config.api_key_id, "X-Timestamp": ts, "X-Signature": signature}
    response = server.handle("POST", "/v1/payments", headers, body, 10_000)
    assert response.status == 400 and response.body["error"]["code"] == code
    assert json.loads(response.body_json) == response.body


def test_the_wire_json_of_a_response_is_its_headers_and_body() -> None:
    _, client = _server(_scenario())
    for response in (client.post(), client.post(), client.post(key="other")):
        assert json.loads(response.headers_json) == response.headers
        assert json.loads(response.body_json) == response.body
