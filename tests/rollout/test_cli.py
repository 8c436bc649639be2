"""`simcore rollout ...` and `simcore checklist` as cron and on-call people run them."""

from __future__ import annotations

import json
import subprocess

from simcore.service import SimulatorService
from tests.conftest import simcore_bin
from tests.rollout.conftest import BOB, Runs
from tests.rollout.test_canary import MetricsServer, exposition


def sc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_stage_evaluate_roll_back_and_checklist(
    service: SimulatorService, runs: Runs, cli_env: dict[str, str]
) -> None:
    run_id, other = (str(r) for r in runs.approved(2))
    metrics = MetricsServer()
    try:
        env = {**cli_env, "SIMTUI_CANARY_METRICS_URL": metrics.url}
        staged = sc(env, "rollout", "stage", run_id, "--reason", "canary as the runbook says")
        assert staged.returncode == 0, staged.stderr
        assert f"staged: run {run_id}, patch hmac-resync-py approved 0% -> staged 5%" in (
            staged.stdout
        )
        assert (
            "hook: dry-run: kubectl set env deployment/sdk-service PATCH_ROLLOUT_PERCENTAGE=5"
            in staged.stdout
        )
        again = sc(env, "rollout", "stage", run_id, "-m", "twice")
        assert again.returncode == 2
        assert "is already staged: it cannot be staged (from staged: promote, rollback)" in (
            again.stderr
        )

        # Two bad readings already recorded; the scrape brings the third.
        for _ in range(2):
            service.record_canary_observation(BOB, run_id, 0.8)
        patch_id = service.list_approvals(BOB)[0].patch_id
        metrics.text = exposition(0.79, patch_id, requests=1200)
        evaluated = sc(env, "rollout", "evaluate", run_id)
        assert evaluated.returncode == 0, evaluated.stderr
        assert "decision   rollback: success rate at or below 95.0% in the last 3" in (
            evaluated.stdout
        )
        assert "scrape" in evaluated.stdout and "79.0%" in evaluated.stdout

        checklist = sc(env, "checklist")
        assert checklist.returncode == 1, checklist.stdout + checklist.stderr
        assert (
            "[FAIL] Monitor staging canary metrics: 1 of 1 patch in rollout need attention"
            in checklist.stdout
        )
        assert "[PASS] Vérifier queue depth < 5" in checklist.stdout
        assert "1 of 7 items fail: canary" in checklist.stdout

        auto = sc(env, "rollout", "evaluate", run_id, "--auto", "--json")
        assert auto.returncode == 0, auto.stderr
        applied = json.loads(auto.stdout)["applied"]
        assert applied["rollout"]["status"] == "rolled_back"
        assert applied["hook"]["argv"][-1] == "PATCH_ROLLOUT_PERCENTAGE=0"
        assert applied["rollout"]["last_transition_reason"].startswith("canary rule: ")

        healthy = sc(env, "checklist", "--json")
        assert healthy.returncode == 0, healthy.stdout
        assert json.loads(healthy.stdout)["failed"] == []

        failing_hook = {**env, "SIMTUI_ROLLOUT_HOOK": "false", "SIMTUI_ROLLOUT_HOOK_DRY_RUN": "0"}
        failed = sc(failing_hook, "rollout", "stage", other, "-m", "canary")
        assert failed.returncode == 2
        assert (
            f"rollout hook failed (exit status 1); the patch of run {other} stays approved at 0%"
            in failed.stderr
        )
        bad_plan = sc({**env, "SIMTUI_ROLLOUT_STEPS": "5,50"}, "rollout", "status", other)
        assert bad_plan.returncode == 2
        assert "SIMTUI_ROLLOUT_STEPS: Value error, the last step must be 100" in bad_plan.stderr
    finally:
        metrics.close()
