"""`simcore rollout` and `simcore checklist` in API mode: only the API's address and a token,
no database, the same output and the same refusals as on the server's machine."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from simcore import rollout
from simcore.api import create_app
from simcore.client import RemoteService
from simcore.config import Settings
from simcore.service import SimulatorService
from tests.api.conftest import LiveServer, Tokens
from tests.api.test_remote_rollout import ALICE, approval_row, approved_run
from tests.conftest import simcore_bin


def sc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_rollout_and_checklist_over_the_api(
    live: LiveServer, tokens: Tokens, service: SimulatorService, cli_env: dict[str, str]
) -> None:
    rid = approved_run(service)
    run_id = str(rid)
    env = {k: v for k, v in cli_env.items() if k != "SIMTUI_DATABASE_URL"}
    env.update(SIMTUI_API_URL=live.url, SIMTUI_TOKEN=tokens.ops)

    staged = sc(env, "rollout", "stage", run_id, "-m", "canary over the API")
    assert staged.returncode == 0, staged.stderr
    assert f"staged: run {run_id}" in staged.stdout
    assert "approved 0% -> staged 5%" in staged.stdout
    row = approval_row(service, rid)
    assert (row["status"], row["rollout_percentage"]) == ("staged", 5)
    assert row["last_transition_reason"] == "canary over the API"

    again = sc(env, "rollout", "stage", run_id, "-m", "twice")
    assert again.returncode == 2
    assert "is already staged: it cannot be staged" in again.stderr

    observed = sc(env, "rollout", "observe", run_id, "--success-rate", "0.99", "--json")
    assert observed.returncode == 0, observed.stderr
    body = json.loads(observed.stdout)
    assert body["observation"]["success_rate"] == 0.99
    assert body["observation"]["source"] == "api"
    assert body["evaluation"]["observations"] == 1
    with service.db.transaction() as conn:
        stored = conn.execute(
            "SELECT success_rate, source FROM sdk_canary_observations o "
            "JOIN sdk_patch_approvals a ON a.id = o.approval_id "
            "WHERE a.simulation_run_id = %s",
            (rid,),
        ).fetchall()
    assert [(r["success_rate"], r["source"]) for r in stored] == [(0.99, "api")]

    out_of_range = sc(env, "rollout", "observe", run_id, "--success-rate", "1.5")
    assert out_of_range.returncode == 2
    assert "success_rate" in out_of_range.stderr

    status = sc(env, "rollout", "status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["rollout"]["status"] == "staged"
    assert [o["success_rate"] for o in report["observations"]] == [0.99]

    checklist = sc(env, "checklist", "--json")
    assert checklist.returncode in (0, 1), checklist.stderr
    assert "canary" in {item["key"] for item in json.loads(checklist.stdout)["items"]}

    back = sc(env, "rollout", "rollback", run_id, "-m", "enough")
    assert back.returncode == 0, back.stderr
    assert approval_row(service, rid)["status"] == "rolled_back"

    env["SIMTUI_TOKEN"] = tokens.auditor
    refused = sc(env, "rollout", "promote", run_id, "-m", "an auditor tries")
    assert refused.returncode == 2
    assert "auditor" in refused.stderr


FAILING_HOOK = """
import sys
print("Error from server (NotFound): deployments.apps \\"sdk-service\\" not found")
sys.exit(3)
"""


def test_a_failing_hook_is_the_same_error_over_the_api(
    settings: Settings, service: SimulatorService, tokens: Tokens, tmp_path: Path
) -> None:
    rid = approved_run(service)
    script = tmp_path / "failing.py"
    script.write_text(FAILING_HOOK, encoding="utf-8")
    hooked = settings.model_copy(
        update={
            "rollout_hook": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{percent}}",
            "rollout_hook_dry_run": False,
        }
    )
    with SimulatorService(hooked) as server_side:
        live = LiveServer(create_app(hooked, service=server_side)).start()
        try:
            with (
                RemoteService(live.url, tokens.ops) as remote,
                pytest.raises(rollout.HookFailed) as failed,
            ):
                remote.stage_patch(ALICE, rid, "try the canary")
        finally:
            live.stop()
    assert "exit status 3" in failed.value.message
    assert "stays approved at 0%" in failed.value.message
    hook = failed.value.hook
    assert (hook.exit_status, hook.dry_run) == (3, False)
    assert "deployments.apps" in hook.output
    assert hook.argv[-1] == "5"
    assert approval_row(service, rid)["status"] == "approved"
