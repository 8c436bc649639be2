"""The rollout routes: stage, promote, roll back, canary, checklist."""

from __future__ import annotations

import httpx

from tests.api.conftest import LiveServer, Tokens, client_for

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def test_rollout_routes_answer_and_name_problems(
    ops: httpx.Client, live: LiveServer, tokens: Tokens
) -> None:
    r = ops.post(f"/api/simulator/runs/{UNKNOWN}/stage", json={"reason": "canary at 5%"})
    assert r.status_code == 404
    r = ops.post(f"/api/simulator/runs/{UNKNOWN}/stage", json={})
    assert r.status_code == 422 and "reason" in r.text
    r = ops.post(f"/api/simulator/runs/{UNKNOWN}/canary/observations", json={"success_rate": 1.5})
    assert r.status_code == 422 and "success_rate" in r.text
    with client_for(live, tokens.auditor) as auditor:
        r = auditor.post(f"/api/simulator/runs/{UNKNOWN}/rollback", json={"reason": "bad"})
        assert r.status_code == 403
        checked = auditor.get("/api/simulator/checklist")
        assert checked.status_code == 200, checked.text
    r = ops.get("/api/simulator/checklist")
    assert r.status_code == 200
    keys = {item["key"] for item in r.json()["items"]}
    assert len(keys) >= 6
