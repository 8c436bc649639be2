"""Bad input gets a 4xx whose body names the problem; a database outage is a 503."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simcore.api import create_app
from simcore.config import Settings
from simcore.service import SimulatorService
from tests.api.conftest import LAUNCHER, Env, LiveServer, Tokens, client_for, finish_run

SCENARIO = {
    "error": "signature_mismatch",
    "error_frequency": 0.3,
    "latency_ms": 500,
    "total_requests": 100,
    "success_threshold": 0.85,
}
BODY = {
    "tenantType": "internal",
    "name": "HMAC Signature Test",
    "sdkLanguage": "node",
    "scenario": SCENARIO,
}


@pytest.fixture(scope="module")
def live(shared: Env) -> LiveServer:
    return shared.live


@pytest.fixture(scope="module")
def tokens(shared: Env) -> Tokens:
    return shared.tokens


@pytest.fixture(scope="module")
def service(shared: Env) -> SimulatorService:
    return shared.service


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] and error["message"]
    return error


@pytest.fixture
def sim_id(ops: httpx.Client) -> str:
    response = ops.post("/api/simulator", json=BODY)
    assert response.status_code == 201, response.text
    value: str = response.json()["simulation"]["id"]
    return value


def test_malformed_json_is_a_400_saying_where(ops: httpx.Client) -> None:
    response = ops.post(
        "/api/simulator", content=b'{"name": "x",', headers={"Content-Type": "application/json"}
    )
    error = error_of(response, 400)
    assert error["code"] == "malformed_json" and error["field"] == "body"
    assert "not valid JSON" in error["message"] and "character 13" in error["message"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"tenant_type": "internal"}, "tenant_type", "did you mean 'tenantType'"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"scenario": {**SCENARIO, "error_frequence": 0.2}}, "scenario.error_frequence", "unknown"),
        ({"scenario": {**SCENARIO, "error_frequency": 1.5}}, "scenario.error_frequency", "1"),
        ({"scenario": {**SCENARIO, "total_requests": 0}}, "scenario.total_requests", "1"),
        ({"scenario": {**SCENARIO, "error": "meteor"}}, "scenario.error", "signature_mismatch"),
        ({"sdkLanguage": "cobol"}, "sdkLanguage", "node"),
        ({"sdkLanguage": "ruby"}, "sdkLanguage", "no SDK runner"),
        ({"name": ""}, "name", "at least 1"),
        ({"name": "nul\x00byte"}, "name", "NUL"),
        ({"tenantId": "../../etc"}, "tenantId", "letters, digits"),
        ({"patchReference": "PATCH_UUID"}, "patchReference", "UUID"),
        ({"patchReference": str(uuid.uuid4())}, "patchReference", "no patch"),
    ],
)
def test_a_bad_simulation_names_the_field(
    ops: httpx.Client, change: dict[str, Any], field: str, words: str
) -> None:
    body = {**BODY, **change}
    error = error_of(ops.post("/api/simulator", json=body), 422)
    assert error["code"] == "invalid_input"
    assert error["field"] == field, error
    assert words in error["message"], error


@pytest.mark.parametrize(
    ("content", "content_type", "words"),
    [
        (b"[]", "application/json", "JSON object"),
        (b'"seed"', "application/json", "JSON object"),
        (b'{"seed": 1}', "text/plain", "Content-Type: application/json"),
        (b"", "application/json", "required"),
    ],
)
def test_a_body_that_is_not_a_json_object(
    ops: httpx.Client, sim_id: str, content: bytes, content_type: str, words: str
) -> None:
    response = ops.post(
        f"/api/simulator/{sim_id}/run", content=content, headers={"Content-Type": content_type}
    )
    error = error_of(response, 422)
    assert error["field"] == "body" and words in error["message"], error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"seed": "12345"}, "seed"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": 1, "speed": 2}, "speed"),
    ],
)
def test_a_bad_seed_names_it(ops: httpx.Client, sim_id: str, body: Any, field: str) -> None:
    error = error_of(ops.post(f"/api/simulator/{sim_id}/run", json=body), 422)
    assert error["field"] == field


def test_a_bad_idempotency_key_names_the_header(ops: httpx.Client, sim_id: str) -> None:
    response = ops.post(
        f"/api/simulator/{sim_id}/run", json={"seed": 1}, headers={"Idempotency-Key": "k" * 300}
    )
    assert error_of(response, 422)["field"] == "Idempotency-Key"


def test_idempotency_key_reuse_is_a_conflict(ops: httpx.Client, sim_id: str) -> None:
    key = f"ops-test-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    assert ops.post(f"/api/simulator/{sim_id}/run", json={"seed": 1}, headers=headers).is_success
    other = ops.post("/api/simulator", json=BODY).json()["simulation"]["id"]
    for path, seed in ((f"/api/simulator/{sim_id}/run", 2), (f"/api/simulator/{other}/run", 1)):
        error = error_of(ops.post(path, json={"seed": seed}, headers=headers), 409)
        assert key in error["message"]


def test_control_characters_are_refused_by_field(ops: httpx.Client) -> None:
    error = error_of(ops.post("/api/simulator", json={**BODY, "name": "evil\x1b[2J"}), 422)
    assert error["field"] == "name" and "U+001B" in error["message"]
    patch = {"sdk_language": "python", "error_signature": "timeout", "patch_code": "ctx.retry()"}
    error = error_of(
        ops.post("/api/simulator/patches", json={**patch, "description": "a\x9bb"}), 422
    )
    assert error["field"] == "description" and "U+009B" in error["message"]


def test_a_launch_without_a_seed_draws_one_and_its_retry_finds_the_run(
    ops: httpx.Client, sim_id: str
) -> None:
    headers = {"Idempotency-Key": f"no-seed-{uuid.uuid4()}"}
    url = f"/api/simulator/{sim_id}/run"
    first = ops.post(url, json={}, headers=headers)
    assert first.status_code == 201, first.text
    run = first.json()["run"]
    assert 0 <= run["seed"] < 2**31
    # The same request again (a client retrying after a lost answer): the same run.
    again = ops.post(url, json={}, headers=headers)
    assert again.status_code == 200 and again.json()["run"]["id"] == run["id"]
    # Naming the seed it got is the same launch too; naming another is a conflict.
    same = ops.post(url, json={"seed": run["seed"]}, headers=headers)
    assert same.status_code == 200 and same.json()["run"]["id"] == run["id"]
    error = error_of(ops.post(url, json={"seed": run["seed"] + 1}, headers=headers), 409)
    assert str(run["seed"]) in error["message"]


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/simulator/not-a-uuid", "simulation_id"),
        ("POST", "/api/simulator/SIM_ID/run", "simulation_id"),
        ("GET", "/api/simulator/SIM_ID/runs/RUN_ID", "simulation_id"),
        ("GET", f"/api/simulator/{uuid.uuid4()}/runs/RUN_ID", "run_id"),
        ("GET", "/api/simulator/runs/12345", "run_id"),
        ("POST", "/api/simulator/runs/RUN_ID/approve-patch", "run_id"),
        ("GET", "/api/simulator/runs?simulation_id=nope", "simulation_id"),
        ("GET", "/api/simulator/runs?status=done", "status"),
        ("GET", "/api/simulator/runs?limit=0", "limit"),
        ("GET", f"/api/simulator/runs/{uuid.uuid4()}/logs?after=-2", "after"),
        ("GET", "/api/simulator/patches/a%20b", "patch"),
    ],
)
def test_a_bad_id_or_parameter_names_it(
    ops: httpx.Client, method: str, path: str, field: str
) -> None:
    body = {"seed": 1} if path.endswith("/run") else None
    error = error_of(ops.request(method, path, json=body), 422)
    assert error["field"] == field, error


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/simulator/{id}"),
        ("POST", "/api/simulator/{id}/run"),
        ("GET", "/api/simulator/{id}/runs"),
        ("GET", "/api/simulator/runs/{id}"),
        ("GET", "/api/simulator/runs/{id}/logs"),
        ("GET", "/api/simulator/runs/{id}/logs/follow"),
        ("POST", "/api/simulator/runs/{id}/cancel"),
        ("POST", "/api/simulator/runs/{id}/rerun"),
        ("POST", "/api/simulator/runs/{id}/approve-patch"),
        ("GET", "/api/simulator/patches/{id}"),
    ],
)
def test_an_unknown_resource_is_a_404(ops: httpx.Client, method: str, path: str) -> None:
    unknown = str(uuid.uuid4())
    body = {"seed": 1} if path.endswith("/run") else None
    error = error_of(ops.request(method, path.format(id=unknown), json=body), 404)
    assert error["code"] == "not_found" and unknown in error["message"]


def test_a_run_of_another_simulation_is_a_404(
    ops: httpx.Client, service: SimulatorService, sim_id: str
) -> None:
    run_id = ops.post(f"/api/simulator/{sim_id}/run", json={"seed": 1}).json()["run"]["id"]
    other = ops.post("/api/simulator", json=BODY).json()["simulation"]["id"]
    error_of(ops.get(f"/api/simulator/{other}/runs/{run_id}"), 404)


def test_decisions_on_runs_that_cannot_have_one(
    ops: httpx.Client, service: SimulatorService, tokens: Tokens, live: LiveServer
) -> None:
    patches = ops.get("/api/simulator/patches", params={"language": "node"}).json()["patches"]
    patched = ops.post(
        "/api/simulator",
        json={**BODY, "patchReference": next(p["id"] for p in patches if p["active"])},
    ).json()["simulation"]["id"]
    queued = service.launch_run(LAUNCHER, patched, 1).run.id
    error = error_of(ops.post(f"/api/simulator/runs/{queued}/approve-patch", json={}), 409)
    assert "queued" in error["message"]
    done = service.launch_run(LAUNCHER, patched, 2).run.id
    finish_run(service, done)
    error = error_of(ops.post(f"/api/simulator/runs/{done}/reject-patch", json={}), 422)
    assert error["field"] == "approval_notes"
    error = error_of(
        ops.post(f"/api/simulator/runs/{done}/approve-patch", json={"approval_notes": "x" * 4001}),
        422,
    )
    assert error["field"] == "approval_notes"
    error = error_of(ops.post(f"/api/simulator/runs/{done}/cancel"), 409)
    assert "already success" in error["message"]


def test_a_bad_patch_names_the_field(ops: httpx.Client) -> None:
    base = {"sdk_language": "python", "error_signature": "timeout", "patch_code": "ctx.retry()"}
    for change, field in (
        ({"slug": "Bad Slug"}, "slug"),
        ({"patch_code": ""}, "patch_code"),
        ({"source": "builtin"}, "source"),
        ({"patch_code": "x" * 70000}, "patch_code"),
        ({"patch_code": "if ctx.error.status == 401\n    ctx.retry()"}, "patch_code"),
        ({"rollback_code": "ctx.client.timeout_ms = ("}, "rollback_code"),
        ({"sdk_language": "node", "patch_code": "ctx.retry(;"}, "patch_code"),
    ):
        error = error_of(ops.post("/api/simulator/patches", json={**base, **change}), 422)
        assert error["field"] == field
        if "ctx" in str(change):
            assert "does not compile" in error["message"] and "SyntaxError" in error["message"]
    dup = {**base, "slug": f"dup-{uuid.uuid4().hex[:8]}"}
    assert ops.post("/api/simulator/patches", json=dup).status_code == 201
    error = error_of(ops.post("/api/simulator/patches", json=dup), 422)
    assert error["field"] == "slug" and "already taken" in error["message"]


def test_no_route_and_wrong_method_answer_json(ops: httpx.Client) -> None:
    assert error_of(ops.get("/api/simulator/nothing/here/at/all"), 404)["code"] == "not_found"
    error = error_of(ops.delete("/api/simulator/runs"), 405)
    assert error["code"] == "method_not_allowed"
    big = ops.post(
        "/api/simulator", content=b" " * (2 * 1024 * 1024), headers={"Content-Type": "text/json"}
    )
    assert error_of(big, 413)["code"] == "body_too_large"


@pytest.fixture
def unreachable(tmp_path: Any) -> Iterator[LiveServer]:
    # A port nothing listens on: the database is "down" from the first request on.
    settings = Settings(
        database_url="postgresql://simtui@127.0.0.1:9/none",
        data_dir=tmp_path / "data",
        db_connect_timeout_s=1,
    )
    server = LiveServer(create_app(settings)).start()
    try:
        yield server
    finally:
        server.stop()


def test_a_database_outage_is_a_503_not_a_500(unreachable: LiveServer, tokens: Tokens) -> None:
    url = unreachable.url
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    ready = httpx.get(f"{url}/readyz", timeout=10)
    assert error_of(ready, 503)["code"] == "database_unavailable"
    with client_for(unreachable, tokens.ops) as client:
        error = error_of(client.get("/api/simulator/runs"), 503)
    assert error["code"] == "database_unavailable"
    metrics = httpx.get(f"{url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "molam_simulator_database_up 0.0" in metrics.text
    # Without a token it is still a 401, whatever the database does.
    assert httpx.get(f"{url}/api/simulator", timeout=10).status_code == 401


def test_a_chunked_body_over_the_limit_is_refused_too(ops: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(3):
            yield b" " * (512 * 1024)

    response = ops.post(
        "/api/simulator", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert error_of(response, 413)["code"] == "body_too_large"


def test_an_unknown_query_parameter_is_named(ops: httpx.Client) -> None:
    # A typo must not quietly widen the answer to every run.
    error = error_of(ops.get("/api/simulator/runs", params={"statu": "failed"}), 422)
    assert error["field"] == "statu" and "status" in error["message"]


def test_the_openapi_document_describes_the_runbook_routes(live: LiveServer) -> None:
    document = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    paths = document["paths"]
    for path, method, statuses in (
        ("/api/simulator", "post", {"201", "400", "401", "403", "409", "422", "503"}),
        ("/api/simulator/{simulation_id}/run", "post", {"200", "201", "409", "422"}),
        ("/api/simulator/{simulation_id}/runs/{run_id}", "get", {"200", "404", "422"}),
        ("/api/simulator/runs/{run_id}/approve-patch", "post", {"200", "403", "409"}),
        ("/api/simulator/metrics", "get", {"200"}),
    ):
        assert statuses <= set(paths[path][method]["responses"]), (path, method)
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert paths["/api/simulator"]["post"]["security"] == [{"token": []}]
    assert "security" not in paths["/api/simulator/metrics"]["get"]
