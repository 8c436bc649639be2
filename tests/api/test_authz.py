"""Every route for every role, in its own tenant and another; every way of not being
authenticated.

A dev token is scoped to merchant/m-a; "own" resources live there, "other" ones in
merchant/m-b. ops, auditor and sira are unscoped. The expected status of each cell comes from
the roles of DESIGN.md: ops everything, dev creates and runs in its tenant, auditor reads, sira
reads nothing here (anonymized errors only); another tenant's resource is a 404.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest

from simcore.model import Role
from simcore.service import SimulatorService
from simcore.templates import get_template
from tests.api.conftest import (
    LAUNCHER,
    TENANT_A,
    TENANT_B,
    Env,
    LiveServer,
    Tokens,
    client_for,
    finish_run as finish,
)

ROLES = ("ops", "dev", "auditor", "sira")
TOKEN_OF = {"ops": "ops", "dev": "dev_a", "auditor": "auditor", "sira": "sira"}


@dataclass
class World:
    service: SimulatorService
    patch_id: UUID
    sims: dict[str, UUID]
    runs: dict[str, UUID]
    counter: itertools.count[int]

    def tenant(self, which: str) -> tuple[str, str]:
        return TENANT_A if which == "own" else TENANT_B

    def new_run(self, which: str) -> UUID:
        return self.service.launch_run(LAUNCHER, self.sims[which], next(self.counter)).run.id

    def new_successful_run(self, which: str) -> UUID:
        run_id = self.new_run(which)
        finish(self.service, run_id)
        return run_id


def build_world(service: SimulatorService) -> World:
    patch = next(
        p
        for p in service.list_patches(LAUNCHER, language="python")
        if p.error_signature == "signature_mismatch"
    )
    sims, runs = {}, {}
    for which, (tenant_type, tenant_id) in (("own", TENANT_A), ("other", TENANT_B)):
        sim = service.create_simulation(
            LAUNCHER,
            {
                "name": f"sim {which}",
                "sdk_language": "python",
                "scenario": get_template("signature_mismatch").scenario,
                "tenant_type": tenant_type,
                "tenant_id": tenant_id,
                "patch_reference": patch.id,
            },
        )
        sims[which] = sim.id
        runs[which] = service.launch_run(LAUNCHER, sim.id, 1).run.id
        finish(service, runs[which])
    return World(service, patch.id, sims, runs, itertools.count(100))


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: Callable[[World, str], str]
    expect: Callable[[str, str], int]
    body: Callable[[World, str], Any] | None = None


def read_list(role: str, which: str) -> int:
    return 403 if role == "sira" else 200


def read_one(role: str, which: str) -> int:
    if role == "sira":
        return 403
    return 404 if role == "dev" and which == "other" else 200


def runs_things(ok: int) -> Callable[[str, str], int]:
    def expect(role: str, which: str) -> int:
        if role in ("auditor", "sira"):
            return 403
        return 404 if role == "dev" and which == "other" else ok

    return expect


def ops_only(ok: int) -> Callable[[str, str], int]:
    return lambda role, which: ok if role == "ops" else 403


def create_expect(role: str, which: str) -> int:
    if role in ("auditor", "sira"):
        return 403
    # Outside a dev token's scope there is no resource to hide: the tenant field is wrong.
    return 422 if role == "dev" and which == "other" else 201


def _sim_body(world: World, which: str) -> dict[str, Any]:
    tenant_type, tenant_id = world.tenant(which)
    return {
        "tenantType": tenant_type,
        "tenantId": tenant_id,
        "name": "matrix",
        "sdkLanguage": "python",
        "scenario": get_template("timeout").scenario.to_json(),
    }


def _patch_body(world: World, which: str) -> dict[str, Any]:
    return {
        "sdk_language": "python",
        "error_signature": "timeout",
        "patch_code": "ctx.retry()\n",
        "slug": f"matrix-{next(world.counter)}",
    }


ROUTES = (
    Route("list simulations", "GET", lambda w, t: "/api/simulator", read_list),
    Route("create simulation", "POST", lambda w, t: "/api/simulator", create_expect, _sim_body),
    Route("get simulation", "GET", lambda w, t: f"/api/simulator/{w.sims[t]}", read_one),
    Route(
        "launch run",
        "POST",
        lambda w, t: f"/api/simulator/{w.sims[t]}/run",
        runs_things(201),
        lambda w, t: {"seed": next(w.counter)},
    ),
    Route("simulation runs", "GET", lambda w, t: f"/api/simulator/{w.sims[t]}/runs", read_one),
    Route(
        "poll run",
        "GET",
        lambda w, t: f"/api/simulator/{w.sims[t]}/runs/{w.runs[t]}",
        read_one,
    ),
    Route("recent runs", "GET", lambda w, t: "/api/simulator/runs", read_list),
    Route("get run", "GET", lambda w, t: f"/api/simulator/runs/{w.runs[t]}", read_one),
    Route(
        "approve",
        "POST",
        lambda w, t: f"/api/simulator/runs/{w.new_successful_run(t)}/approve-patch",
        ops_only(200),
        lambda w, t: {"approval_notes": "ok"},
    ),
    Route(
        "reject",
        "POST",
        lambda w, t: f"/api/simulator/runs/{w.new_successful_run(t)}/reject-patch",
        ops_only(200),
        lambda w, t: {"approval_notes": "not this one"},
    ),
    Route(
        "cancel",
        "POST",
        lambda w, t: f"/api/simulator/runs/{w.new_run(t)}/cancel",
        runs_things(200),
    ),
    Route(
        "rerun",
        "POST",
        lambda w, t: f"/api/simulator/runs/{w.runs[t]}/rerun",
        runs_things(201),
    ),
    Route("logs", "GET", lambda w, t: f"/api/simulator/runs/{w.runs[t]}/logs", read_one),
    Route(
        "follow logs",
        "GET",
        lambda w, t: f"/api/simulator/runs/{w.runs[t]}/logs/follow",
        read_one,
    ),
    Route("patches", "GET", lambda w, t: "/api/simulator/patches", read_list),
    Route("get patch", "GET", lambda w, t: f"/api/simulator/patches/{w.patch_id}", read_list),
    Route("add patch", "POST", lambda w, t: "/api/simulator/patches", ops_only(201), _patch_body),
    Route("approvals", "GET", lambda w, t: "/api/simulator/approvals", read_list),
    Route("verify journal", "GET", lambda w, t: "/api/simulator/journal/verify", read_list),
    Route("whoami", "GET", lambda w, t: "/api/simulator/whoami", lambda r, t: 200),
)

PUBLIC = ("/healthz", "/readyz", "/metrics", "/api/simulator/metrics")


@pytest.fixture(scope="module")
def live(shared: Env) -> LiveServer:
    return shared.live


@pytest.fixture(scope="module")
def tokens(shared: Env) -> Tokens:
    return shared.tokens


@pytest.fixture(scope="module")
def service(shared: Env) -> SimulatorService:
    return shared.service


@pytest.fixture
def world(service: SimulatorService) -> World:
    # Fresh simulations and runs for each test; other tests of the module add their own
    # next to them, which no expectation here depends on.
    return build_world(service)


def _call(client: httpx.Client, route: Route, world: World, which: str) -> httpx.Response:
    path = route.path(world, which)
    body = route.body(world, which) if route.body else None
    return client.request(route.method, path, json=body)


@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(role: str, live: LiveServer, tokens: Tokens, world: World) -> None:
    mismatches = []
    with client_for(live, tokens.for_role(TOKEN_OF[role])) as client:
        for route, which in itertools.product(ROUTES, ("own", "other")):
            response = _call(client, route, world, which)
            expected = route.expect(role, which)
            if response.status_code != expected:
                mismatches.append(
                    f"{route.name} ({which} tenant): {response.status_code} != {expected} "
                    f"{response.text[:160]}"
                )
            elif response.status_code >= 400:
                error = response.json()["error"]
                assert error["code"] and error["message"], response.text
    assert not mismatches, f"role {role}:\n" + "\n".join(mismatches)


def test_a_dev_token_sees_only_its_tenant(live: LiveServer, tokens: Tokens, world: World) -> None:
    with client_for(live, tokens.dev_a) as dev:
        sims = dev.get("/api/simulator").json()["simulations"]
        runs = dev.get("/api/simulator/runs").json()["runs"]
        approvals = dev.get("/api/simulator/approvals").json()["approvals"]
        created = dev.post(
            "/api/simulator",
            json={k: v for k, v in _sim_body(world, "own").items() if k != "tenantId"},
        )
    assert str(world.sims["own"]) in {s["id"] for s in sims}
    assert {(s["tenant_type"], s["tenant_id"]) for s in sims} == {TENANT_A}
    assert {(r["tenant_type"], r["tenant_id"]) for r in runs} == {TENANT_A}
    assert approvals and {(a["tenant_type"], a["tenant_id"]) for a in approvals} == {TENANT_A}
    # Unsaid, the tenant is the token's own.
    assert created.status_code == 201
    assert created.json()["simulation"]["tenant_id"] == "m-a"


def test_the_runbook_four_eyes_rule_holds_over_the_api(
    live: LiveServer, tokens: Tokens, world: World
) -> None:
    with client_for(live, tokens.ops) as alice, client_for(live, tokens.ops2) as bob:
        launched = alice.post(f"/api/simulator/{world.sims['own']}/run", json={"seed": 7})
        run_id = launched.json()["run"]["id"]
        finish(world.service, UUID(run_id))
        own = alice.post(f"/api/simulator/runs/{run_id}/approve-patch", json={})
        other = bob.post(f"/api/simulator/runs/{run_id}/approve-patch", json={})
        twice = bob.post(f"/api/simulator/runs/{run_id}/reject-patch", json={"approval_notes": "x"})
    assert own.status_code == 403 and own.json()["error"]["code"] == "forbidden"
    assert other.status_code == 200 and other.json()["approval"]["decided_by"] == "ops:bob"
    assert twice.status_code == 409


BAD_CREDENTIALS = {
    "no token": None,
    "unknown token": "Bearer smt_" + "x" * 43,
    "malformed token": "Bearer not-a-token",
    "wrong scheme": "Basic YWxpY2U6c2VjcmV0",
    "empty bearer": "Bearer",
}


def test_every_route_refuses_the_unauthenticated(
    live: LiveServer, tokens: Tokens, world: World
) -> None:
    failures = []
    credentials = {**BAD_CREDENTIALS, "revoked token": f"Bearer {tokens.revoked}"}
    with httpx.Client(base_url=live.url, timeout=10) as anonymous:
        for (label, header), route in itertools.product(credentials.items(), ROUTES):
            headers = {"Authorization": header} if header else {}
            # The path is a real one, but the route is never reached: 401 comes first.
            response = anonymous.request(
                route.method,
                route.path(world, "own"),
                headers=headers,
                json=route.body(world, "own") if route.body else None,
            )
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code != 401 or not challenge.startswith("Bearer"):
                failures.append(f"{route.name} with {label}: {response.status_code} {challenge!r}")
            elif response.json()["error"]["code"] != "unauthenticated":
                failures.append(f"{route.name} with {label}: {response.text}")
    assert not failures, "\n".join(failures)
    revoked = httpx.get(
        live.url + "/api/simulator/whoami",
        headers={"Authorization": f"Bearer {tokens.revoked}"},
        timeout=10,
    )
    assert "revoked" in revoked.json()["error"]["message"]


def test_a_token_revoked_while_the_server_runs_is_refused_at_once(
    live: LiveServer, tokens: Tokens, service: SimulatorService
) -> None:
    created = service.create_token(LAUNCHER, Role.AUDITOR, name="temp")
    with client_for(live, created.token) as client:
        assert client.get("/api/simulator/whoami").status_code == 200
        service.revoke_token(LAUNCHER, created.info.id)
        assert client.get("/api/simulator/whoami").status_code == 401


def test_probes_and_metrics_need_no_token(live: LiveServer) -> None:
    for path in PUBLIC:
        response = httpx.get(live.url + path, timeout=10)
        assert response.status_code == 200, (path, response.text)
