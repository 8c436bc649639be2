"""The fake payments API: it authenticates, charges, replays and injects every fault.

It lives in the worker (trusted); the SDK in the sandbox only ever sees its answers. Time is
virtual: ``now_ms`` moves forward by the latency of each response, by the client timeout when
a response is slower than it, and by sleeps; nothing here sleeps for real.

Endpoints: ``POST /v1/payments`` (create; honours ``Idempotency-Key``) and
``GET /v1/payments/{id}`` (retrieve). Every request is authenticated: ``X-Api-Key``,
``X-Timestamp`` (client clock, ms) and ``X-Signature`` = hex HMAC-SHA256 over
``timestamp + method + path + body`` with the shared test secret, and the timestamp must be
within ``CLOCK_TOLERANCE_MS`` of the server's clock.

``STREAM_LATENCY`` of an op: one draw per request of that op, in arrival order (the jitter).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import from_json

from simcore.gateway.faults import CLOCK_TOLERANCE_MS, FaultPlan
from simcore.gateway.prng import (
    STREAM_LATENCY,
    STREAM_RUN,
    SplitMix64,
    derive,
    mixed_seed,
    stream_state,
)
from simcore.gateway.protocol import encode_json, encode_str
from simcore.gateway.workload import SUPPORTED_CURRENCIES
from simcore.model import ErrorKind, Scenario

# 2025-01-15T09:00:00Z: every phase starts its virtual clock here, so reports never carry
# the wall clock and two runs of the same inputs agree to the millisecond.
EPOCH_MS = 1_736_931_600_000
DEFAULT_MAX_ATTEMPTS = 3
MIN_DEFAULT_TIMEOUT_MS = 10_000
MIN_OP_DEADLINE_MS = 30_000

_JSON = {"Content-Type": "application/json"}
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What the client is configured with (sent in ``hello``) and what the gateway enforces."""

    api_key_id: str
    secret: str
    timeout_ms: int
    max_attempts: int
    deadline_ms: int

    @classmethod
    def for_run(cls, scenario: Scenario, seed: int) -> SimConfig:
        rng = derive(seed, 0, STREAM_RUN)
        key_id = f"pk_sim_{rng.next_u64():016x}"
        secret = f"sk_sim_{rng.next_u64():016x}{rng.next_u64():016x}"
        slowest = scenario.latency_ms + scenario.latency_jitter_ms
        # A real SDK default (10 s) unless the network is so slow it would always time out.
        timeout = scenario.timeout_ms or max(MIN_DEFAULT_TIMEOUT_MS, 3 * slowest)
        attempts = scenario.max_attempts or DEFAULT_MAX_ATTEMPTS
        return cls(key_id, secret, timeout, attempts, max(MIN_OP_DEADLINE_MS, 3 * timeout))

    def to_wire(self) -> dict[str, Any]:
        return {
            "api_key_id": self.api_key_id,
            "secret": self.secret,
            "timeout_ms": self.timeout_ms,
            "max_attempts": self.max_attempts,
            "clock_offset_ms": 0,
        }


def latency_stream(seed: int, index: int) -> int:
    """The initial state of op ``index``'s ``STREAM_LATENCY`` generator (the same in both
    phases)."""
    return stream_state(mixed_seed(seed), index, STREAM_LATENCY)


def sign(secret: str | bytes, timestamp: str, method: str, path: str, body: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.digest(key, f"{timestamp}{method}{path}{body}".encode(), "sha256").hex()


class Signer:
    """``sign`` for one secret, with the key's inner and outer pads hashed once (RFC 2104).

    Every request is checked, and ``hmac.digest`` sets the key up again on each call, which
    costs more than hashing a request; copying the two prepared hashes does not."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: str | bytes) -> None:
        key = secret.encode() if isinstance(secret, str) else secret
        if len(key) > 64:  # the SHA-256 block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def sign(self, timestamp: str, method: str, path: str, body: str) -> str:
        inner = self._inner.copy()
        inner.update(f"{timestamp}{method}{path}{body}".encode())
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass(slots=True)
class Payment:
    id: str
    op_index: int
    amount: int
    currency: str
    reference: str
    idempotency_key: str | None
    params: dict[str, Any]
    created_ms: int
    # ``to_body()`` as JSON, written once: a payment is answered again on every replay.
    body_json: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        self.body_json = (
            f'{{"id":{encode_str(self.id)},"object":"payment","status":"succeeded",'
            f'"amount":{self.amount},"currency":{encode_str(self.currency)},'
            f'"reference":{encode_str(self.reference)},"created_ms":{self.created_ms}}}'
        )

    def to_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "payment",
            "status": "succeeded",
            "amount": self.amount,
            "currency": self.currency,
            "reference": self.reference,
            "created_ms": self.created_ms,
        }


class HttpResponse:
    """One answer of the gateway: ``headers_json`` and ``body_json`` are what goes on the wire.

    ``headers`` and ``body`` (dicts) are made from what the route answered only when they are
    read (the baseline's error events, tests): most responses are only ever written, and a
    payment's body is already JSON."""

    __slots__ = ("_body", "_headers", "body_json", "elapsed_ms", "headers_json", "status",
                 "timed_out")  # fmt: skip

    def __init__(
        self, status: int, elapsed_ms: int, timed_out: bool, headers_json: str, body_json: str,
        body: dict[str, Any] | Payment, headers: dict[str, str] | None,
    ) -> None:  # fmt: skip
        self.status = status
        self.elapsed_ms = elapsed_ms
        self.timed_out = timed_out
        self.headers_json = headers_json
        self.body_json = body_json
        self._body = body
        self._headers = headers

    @property
    def body(self) -> dict[str, Any]:
        body = self._body
        if isinstance(body, Payment):
            body = self._body = body.to_body()
        return body

    @property
    def headers(self) -> dict[str, str]:
        headers = self._headers
        if headers is None:
            headers = self._headers = json.loads(self.headers_json)
        return headers


# What a route answers: status, body (a payment is passed as such: its JSON is cached),
# extra headers.
_Answer = tuple[int, dict[str, Any] | Payment, dict[str, str]]


def _error(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


class PaymentsServer:
    """One phase's gateway: its own clock, ledger and idempotency store."""

    def __init__(self, scenario: Scenario, seed: int, config: SimConfig, tag: str) -> None:
        self.scenario = scenario
        self.seed = seed
        self.config = config
        self.tag = tag
        self.now_ms = EPOCH_MS
        self.payments_by_op: dict[int, list[Payment]] = {}
        self._idempotency: dict[str, Payment] = {}
        self._payment_index: dict[str, Payment] = {}
        self._seq = 0
        self._signer = Signer(config.secret)
        # The response headers without extras, up to the request number, as JSON.
        self._headers_head = (
            f'{{"Content-Type":"application/json","X-Request-Id":"req_{encode_str(tag)[1:-1]}'
        )
        self._requests = 0
        # The clock offset the client signs with, learnt from its last accepted request; the
        # host clock of the next op is expressed relative to it (see faults.py).
        self._client_offset_ms = 0
        self._op_index = -1
        self._plan: FaultPlan | None = None
        self._drift_ms = 0
        self._latency: SplitMix64 | None = None
        self._attempt = 0
        self._not_before_ms = 0
        # Read on every request: pydantic attributes cost more than plain ones.
        self._latency_ms = scenario.latency_ms
        self._jitter_ms = scenario.latency_jitter_ms

    # -- op lifecycle ------------------------------------------------------------------------

    def begin_op(self, index: int, plan: FaultPlan, latency_state: int | None = None) -> None:
        """``latency_state``: the op's ``STREAM_LATENCY`` generator as derived ahead of time
        (``latency_stream``), so that deriving it is not on the way of a request."""
        self._op_index = index
        self._plan = plan
        self._attempt = 0
        self._not_before_ms = 0
        if latency_state is None:
            latency_state = latency_stream(self.seed, index)
        self._latency = SplitMix64(latency_state)
        self._drift_ms = self._drift_for(plan)
        self.payments_by_op.setdefault(index, [])

    def _drift_for(self, plan: FaultPlan) -> int:
        drift = plan.clock_noise_ms - self._client_offset_ms
        if plan.faulty and self.scenario.error is ErrorKind.SIGNATURE_MISMATCH:
            drift -= plan.clock_step_ms
        return drift

    def local_now(self) -> int:
        """What the client host's clock reads now."""
        return self.now_ms + self._drift_ms

    def local_now_for(self, plan: FaultPlan) -> int:
        """What the client host's clock would read if the op of ``plan`` began now: the
        ``local_now()`` that ``begin_op`` makes, without beginning it."""
        return self.now_ms + self._drift_for(plan)

    def sleep(self, ms: int) -> None:
        self.now_ms += ms

    # -- requests ----------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str, timeout_ms: int
    ) -> HttpResponse:
        plan, rng = self._plan, self._latency
        assert plan is not None and rng is not None, "no op in flight"
        self._attempt += 1
        self._requests += 1
        arrival = self.now_ms
        latency = self._latency_ms + rng.randint(0, self._jitter_ms)
        lowered = {k.lower(): v for k, v in headers.items()}

        status, body_out, extra_headers = self._authenticate(
            lowered, method, path, body, arrival, latency
        )
        if status == 0:
            if plan.faulty:
                status, body_out, extra_headers, latency = self._faulty(
                    plan, method, path, lowered, body, arrival, latency
                )
            else:
                status, body_out, extra_headers = self._route(method, path, lowered, body, arrival)

        if latency > timeout_ms:
            self.now_ms = arrival + timeout_ms
            return HttpResponse(0, timeout_ms, True, "{}", "null", {}, {})
        self.now_ms = arrival + latency
        if extra_headers:
            out_headers: dict[str, str] | None = {
                **_JSON,
                "X-Request-Id": f"req_{self.tag}{self._requests:08d}",
                **extra_headers,
            }
            headers_json = encode_json(out_headers)
        else:
            out_headers = None  # made from the JSON if ever read
            headers_json = f'{self._headers_head}{self._requests:08d}"}}'
        if isinstance(body_out, Payment):
            return HttpResponse(status, latency, False, headers_json, body_out.body_json,
                                body_out, out_headers)  # fmt: skip
        return HttpResponse(status, latency, False, headers_json, encode_json(body_out),
                            body_out, out_headers)  # fmt: skip

    def _faulty(
        self,
        plan: FaultPlan,
        method: str,
        path: str,
        headers: dict[str, str],
        body: str,
        arrival: int,
        latency: int,
    ) -> tuple[int, dict[str, Any] | Payment, dict[str, str], int]:
        """An authentic request of a faulty op: the fault, then ``(status, body, headers,
        latency)``. Faults are transient: they hit the first attempt (and, for a rate limit,
        every attempt before Retry-After has passed)."""
        kind, first = self.scenario.error, self._attempt == 1
        if kind is ErrorKind.RATE_LIMITED and (first or arrival < self._not_before_ms):
            if first:
                self._not_before_ms = arrival + plan.retry_after_s * 1000
            wait_s = -(-(self._not_before_ms - arrival) // 1000)
            body_out = _error(
                "rate_limited", "too many requests; retry later", retry_after_ms=wait_s * 1000
            )
            return 429, body_out, {"Retry-After": str(wait_s)}, latency
        if kind is ErrorKind.SERVER_ERROR and first:
            if plan.charged:
                # The processor charged; the answer was lost between it and the gateway.
                self._route(method, path, headers, body, arrival)
            label = "bad gateway" if plan.server_status == 502 else "service unavailable"
            return plan.server_status, _error("server_error", f"upstream {label}"), {}, latency
        if kind is ErrorKind.TIMEOUT and first:
            slow = self.config.timeout_ms + plan.slow_extra_ms
            if plan.charged:
                return (*self._route(method, path, headers, body, arrival), slow)
            return 504, _error("gateway_timeout", "upstream did not answer"), {}, slow
        # signature_mismatch was decided by _authenticate; invalid_currency is in the op data.
        return (*self._route(method, path, headers, body, arrival), latency)

    def _authenticate(
        self,
        headers: dict[str, str],
        method: str,
        path: str,
        body: str,
        arrival: int,
        latency: int,
    ) -> _Answer:
        """``(0, {}, {})`` when the request is authentic and fresh, else the 401 to send."""
        key = headers.get("x-api-key")
        if key is None:
            return 401, _error("missing_api_key", "X-Api-Key header is required"), {}
        if key != self.config.api_key_id:
            return 401, _error("invalid_api_key", "unknown API key"), {}
        stamp = headers.get("x-timestamp", "")
        given = headers.get("x-signature", "")
        if not (stamp.isascii() and stamp.lstrip("-").isdigit() and len(stamp) <= 20):
            return 401, _error("invalid_signature", "X-Timestamp must be integer ms"), {}
        expected = self._signer.sign(stamp, method, path, body)
        if not (given.isascii() and hmac.compare_digest(expected, given)):
            return 401, _error("invalid_signature", "signature does not match the request"), {}
        if abs(int(stamp) - arrival) > CLOCK_TOLERANCE_MS:
            server_time = arrival + latency
            return (
                401,
                _error(
                    "signature_mismatch",
                    "request timestamp outside the 300 s tolerance; re-sync the clock",
                    server_time_ms=server_time,
                ),
                {"X-Server-Time": str(server_time)},
            )
        self._client_offset_ms = int(stamp) - (arrival + self._drift_ms)
        return 0, {}, {}

    def _route(
        self, method: str, path: str, headers: dict[str, str], body: str, arrival: int
    ) -> _Answer:
        if path == "/v1/payments":
            if method != "POST":
                return 405, _error("method_not_allowed", f"{method} not allowed here"), {}
            return self._create(headers, body, arrival)
        if path.startswith("/v1/payments/"):
            if method != "GET":
                return 405, _error("method_not_allowed", f"{method} not allowed here"), {}
            found = self._payment_index.get(path.removeprefix("/v1/payments/"))
            if found is None:
                return 404, _error("not_found", "no such payment"), {}
            return 200, found, {}
        return 404, _error("not_found", "no such endpoint"), {}

    def _create(self, headers: dict[str, str], body: str, arrival: int) -> _Answer:
        try:
            # The same parser as the protocol's: no recursion error on deep nesting.
            params = from_json(body)
        except ValueError:
            return 400, _error("invalid_request", "body is not valid JSON"), {}
        if not isinstance(params, dict):
            return 400, _error("invalid_request", "body must be a JSON object"), {}
        key = headers.get("idempotency-key")
        if key is not None:
            previous = self._idempotency.get(key)
            if previous is not None:
                if previous.params != params:
                    return (
                        409,
                        _error("idempotency_conflict", "key reused with different parameters"),
                        {},
                    )
                return 201, previous, {"Idempotent-Replayed": "true"}
        amount = params.get("amount")
        if type(amount) is not int or not 0 < amount <= 10**12:
            return 400, _error("invalid_amount", "amount must be a positive integer"), {}
        currency = params.get("currency")
        if currency not in SUPPORTED_CURRENCIES:
            return (
                400,
                _error(
                    "invalid_currency",
                    f"currency {currency!r} is not supported",
                    param="currency",
                    supported=list(SUPPORTED_CURRENCIES),
                ),
                {},
            )
        reference = params.get("reference")
        self._seq += 1
        # Positional (id, op_index, amount, currency, reference, idempotency_key, params,
        # created_ms): keywords cost the dataclass's __init__ more, once per payment.
        payment = Payment(f"pay_{self.tag}{self._seq:07d}", self._op_index, amount,
                          str(currency), reference if isinstance(reference, str) else "", key,
                          params, arrival)  # fmt: skip
        self.payments_by_op[self._op_index].append(payment)
        self._payment_index[payment.id] = payment
        if key is not None:
            self._idempotency[key] = payment
        return 201, payment, {}
