"""The runbook's "Workflow complet", step by step, against a real uvicorn server.

The bodies and headers are read from the runbook itself (docs/runbook.md), so the API is
held to what the runbook tells on-call engineers to type. The run is executed by a real worker
with the real executor (the SDK in a sandbox against the fault-injecting gateway).
"""

from __future__ import annotations

import gc
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simcore.config import Settings
from simcore.errors import SimError
from simcore.service import SimulatorService
from simcore.worker import Worker
from tests.api.conftest import LiveServer, Tokens, client_for
from tests.runbook import RUNBOOK

RUN_TIMEOUT_S = 90


def runbook_posts() -> dict[str, dict[str, Any]]:
    """Each `curl -X POST http://devportal:8140<path>` of the runbook: headers and body."""
    text = RUNBOOK.read_text(encoding="utf-8")
    found: dict[str, dict[str, Any]] = {}
    for match in re.finditer(
        r"curl -X POST http://devportal:8140(\S+) \\\n(.*?)-d '(.*?)'", text, flags=re.S
    ):
        path, options, body = match.groups()
        headers = dict(h.split(": ", 1) for h in re.findall(r'-H "([^"]+)"', options) if ": " in h)
        found[path] = {"headers": headers, "body": body}
    return found


def as_user(headers: dict[str, str], token: str) -> dict[str, str]:
    """The runbook's headers with `$OPS_TOKEN` standing for ``token``."""
    return {k: v.replace("$OPS_TOKEN", token) for k, v in headers.items()}


@pytest.fixture
def worker(settings: Settings, service: SimulatorService) -> Iterator[Worker]:
    from simcore.executor import make_worker

    w = make_worker(
        settings.model_copy(update={"sandbox": "process"}),
        service.db,
        poll_seconds=0.2,
        on_event=lambda msg: None,
    )
    try:
        w.executor.backend.check()  # type: ignore[attr-defined]
    except SimError as exc:
        if os.environ.get("SIMTUI_REQUIRE_TOOLS") == "1":
            raise
        pytest.skip(f"no sandbox here: {exc}")
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    try:
        yield w
    finally:
        w.stop()
        thread.join(30)
        # The process sandbox can leave a pipe of a finished runner for the garbage collector
        # (see the filter on the test); collect it here, inside this test, not in a later one.
        gc.collect()


@pytest.mark.filterwarnings("ignore:unclosed file <_io.FileIO:ResourceWarning")
def test_runbook_workflow_end_to_end(live: LiveServer, tokens: Tokens, worker: Worker) -> None:
    posts = runbook_posts()
    create = posts["/api/simulator"]
    launch = posts["/api/simulator/SIM_ID/run"]
    approve = posts["/api/simulator/runs/RUN_ID/approve-patch"]
    assert launch["headers"]["Idempotency-Key"] == "ops-test-001"
    assert create["headers"]["Authorization"] == "Bearer $OPS_TOKEN"

    with client_for(live, tokens.ops) as alice, client_for(live, tokens.ops2) as bob:
        # 1. Create the simulation with the runbook's body, PATCH_UUID being a real patch.
        patches = alice.get("/api/simulator/patches", params={"language": "node"}).json()
        patch = next(
            p
            for p in patches["patches"]
            if p["error_signature"] == "signature_mismatch" and "resync-clock" in p["slug"]
        )
        body = create["body"].replace("PATCH_UUID", patch["id"])
        r = alice.post(
            "/api/simulator", content=body, headers=as_user(create["headers"], tokens.ops)
        )
        assert r.status_code == 201, r.text
        sim = r.json()["simulation"]
        assert sim["name"] == "HMAC Signature Test" and sim["patch_reference"] == patch["id"]
        assert json.loads(create["body"])["scenario"].items() <= sim["scenario"].items()
        assert r.headers["Location"] == f"/api/simulator/{sim['id']}"

        # 2. Launch it twice with the same Idempotency-Key: one run.
        path = f"/api/simulator/{sim['id']}/run"
        launch_headers = as_user(launch["headers"], tokens.ops)
        first = alice.post(path, content=launch["body"], headers=launch_headers)
        again = alice.post(path, content=launch["body"], headers=launch_headers)
        assert (first.status_code, again.status_code) == (201, 200), (first.text, again.text)
        run_id = first.json()["run"]["id"]
        assert again.json()["run"]["id"] == run_id
        assert first.json()["run"]["seed"] == 12345
        reused = alice.post(path, json={"seed": 54321}, headers=launch_headers)
        assert reused.status_code == 409 and reused.json()["error"]["code"] == "conflict"
        runs = alice.get(f"/api/simulator/{sim['id']}/runs").json()["runs"]
        assert [r["id"] for r in runs] == [run_id]

        # 3. Poll the status until the worker is done.
        poll = f"/api/simulator/{sim['id']}/runs/{run_id}"
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while True:
            answer = alice.get(poll)
            assert answer.status_code == 200, answer.text
            status = answer.json()["run"]["status"]
            if status not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, f"run still {status}"
            time.sleep(0.2)
        result = answer.json()
        run = result["run"]
        assert run["status"] == "success", run
        assert {"success_rate", "avg_latency_ms", "total_requests", "failed_requests"} <= set(
            run["metrics"]
        )
        assert run["metrics"]["total_requests"] == 100
        assert run["metrics"]["success_rate"] >= 0.85
        actions = [e["action"] for e in result["journal"]]
        assert actions[:2] == ["queued", "started"] and "completed" in actions

        logs = alice.get(f"/api/simulator/runs/{run_id}/logs").json()
        assert logs["lines"] and logs["next_after"] == logs["lines"][-1]["seq"]
        with alice.stream("GET", f"/api/simulator/runs/{run_id}/logs/follow") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            text = "".join(stream.iter_text())
        assert text.count("event: log\n") == len(logs["lines"])
        assert text.endswith('event: end\ndata: {"status": "success"}\n\n')

        # 4. Approve: not by the person who launched it (four eyes), then by a second ops.
        refused = alice.post(
            f"/api/simulator/runs/{run_id}/approve-patch",
            content=approve["body"],
            headers=as_user(approve["headers"], tokens.ops),
        )
        assert refused.status_code == 403, refused.text
        assert "another person must decide" in refused.json()["error"]["message"]
        approved = bob.post(
            f"/api/simulator/runs/{run_id}/approve-patch",
            content=approve["body"],
            headers=as_user(approve["headers"], tokens.ops2),
        )
        assert approved.status_code == 200, approved.text
        approval = approved.json()["approval"]
        assert approval["status"] == "approved"
        assert approval["approval_notes"] == "Validated in sandbox, ready for staging"
        assert approval["decided_by"] == "ops:bob"

    # The runbook's monitoring curls carry no token.
    metrics = httpx.get(f"{live.url}/api/simulator/metrics", timeout=10)
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'molam_simulator_runs_total{status="success"} 1.0' in text
    assert 'molam_simulator_runs_total{status="failed"} 0.0' in text
    assert "molam_simulator_success_rate 1.0" in text
    assert re.search(r"^molam_simulator_avg_latency_ms \d", text, flags=re.M)
    root = httpx.get(f"{live.url}/metrics", timeout=10).text
    patch_lines = [line for line in root.splitlines() if "patch_success_rate" in line]
    assert any(patch["slug"] in line and "approved" in line for line in patch_lines), patch_lines
