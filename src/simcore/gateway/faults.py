"""Which operations are faulty, and how: one ``FaultPlan`` per op, drawn before the op runs.

Fault semantics (payments semantics; the server applies them, see ``server.py``):

- ``signature_mismatch``: the client host's clock steps back by ``clock_step_ms`` (6 to 20
  minutes) relative to the last time the client synchronised with the server, so the HMAC
  timestamp of every attempt is stale until the client re-syncs its clock offset; the server
  answers 401 with its own time. Healthy ops carry a little clock noise (within tolerance).
- ``timeout``: the first attempt's response takes longer than the client's default timeout
  (by ``slow_extra_ms``); with ``charged`` the server had already charged before the client
  gave up. A retry with the same Idempotency-Key is replayed; without it, it charges again.
- ``invalid_currency``: the op carries a mangled currency (variant ``currency_variant``).
- ``rate_limited``: the first attempt is answered 429 with ``Retry-After: retry_after_s``;
  any attempt before that time has passed is refused again.
- ``server_error``: the first attempt is answered ``server_status`` (502 or 503); a 502 may
  have charged (``charged``), a 503 never did.

Draw order of ``STREAM_FAULT`` (fixed): 1. faulty (chance of error_frequency), then only the
parameters of the scenario's error kind, in this order:
 signature_mismatch: clock step, clock noise    timeout: charged, slow extra
 invalid_currency: currency variant             rate_limited: retry after
 server_error: server status, charged
"""

from __future__ import annotations

from typing import NamedTuple

from simcore.gateway.prng import STREAM_FAULT, derive
from simcore.model import ErrorKind, Scenario

CLOCK_TOLERANCE_MS = 300_000


class FaultPlan(NamedTuple):
    """Immutable, and a tuple because one is built per op (hot path)."""

    faulty: bool
    clock_step_ms: int
    clock_noise_ms: int
    currency_variant: int
    charged: bool
    slow_extra_ms: int
    retry_after_s: int
    server_status: int


def plan_fault(seed: int, index: int, scenario: Scenario) -> FaultPlan:
    rng = derive(seed, index, STREAM_FAULT)
    faulty = rng.chance(scenario.error_frequency)
    kind = scenario.error
    step = noise = variant = slow = retry_after = 0
    charged = False
    status = 502
    if kind is ErrorKind.SIGNATURE_MISMATCH:
        step = rng.randint(CLOCK_TOLERANCE_MS + 60_000, 1_200_000)
        noise = rng.randint(-1_500, 1_500)
    elif kind is ErrorKind.TIMEOUT:
        charged = rng.chance(0.5)
        slow = rng.randint(500, 5_000)
    elif kind is ErrorKind.INVALID_CURRENCY:
        variant = rng.randint(0, 1_000)
    elif kind is ErrorKind.RATE_LIMITED:
        retry_after = rng.randint(1, 5)
    elif kind is ErrorKind.SERVER_ERROR:
        status = rng.choice((502, 503))
        charged = rng.chance(0.5) and status == 502  # a 503 never reached the processor
    return FaultPlan(faulty, step, noise, variant, charged, slow, retry_after, status)
