"""The rollout hook: a real command, run without a shell, journaled; a failure changes nothing."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from simcore import journal, rollout
from simcore.model import ApprovalStatus
from simcore.service import SimulatorService
from tests.rollout.conftest import BOB, Runs, reconfigured

RECORDER = """
import json, os, sys
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"argv": sys.argv[2:],
                          "simtui_env": sorted(k for k in os.environ if k.startswith("SIMTUI_"))})
              + "\\n")
print("deployment.apps/sdk-service env updated")
"""

FAILING = """
import sys
print("Error from server (NotFound): deployments.apps \\"sdk-service\\" not found")
sys.exit(3)
"""


def _script(tmp_path: Path, name: str, code: str) -> str:
    path = tmp_path / name
    path.write_text(code)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def _calls(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _journal(service: SimulatorService, run_id: UUID) -> list[journal.Entry]:
    with service.db.transaction() as conn:
        approval_id = rollout.load(conn, run_id).approval_id
        return journal.entries(conn, approval_id=approval_id)


def test_each_step_runs_the_hook_with_its_placeholders(
    service: SimulatorService, runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMTUI_TOKEN", "must-not-reach-the-hook")
    calls = tmp_path / "calls.jsonl"
    recorder = _script(tmp_path, "recorder.py", RECORDER)
    svc = reconfigured(
        service,
        rollout_hook=f"{recorder} {calls} PATCH_ROLLOUT_PERCENTAGE={{percent}} "
        "--patch={patch_id} {run_id} {approval_id} {language}",
        rollout_hook_dry_run=False,
        rollout_steps="5,25,100",
    )
    (run_id,) = runs.approved()
    staged = svc.stage_patch(BOB, run_id, "canary at 5% as the runbook says")
    svc.promote_patch(BOB, run_id, "healthy for an hour")
    deployed = svc.promote_patch(BOB, run_id, "healthy for an hour at 25%")
    r = deployed.rollout
    assert (r.status, r.rollout_percentage) == (ApprovalStatus.DEPLOYED, 100)
    expected_tail = [f"--patch={r.patch_id}", str(run_id), str(r.approval_id), "python"]
    assert _calls(calls) == [
        {"argv": [f"PATCH_ROLLOUT_PERCENTAGE={p}", *expected_tail], "simtui_env": []}
        for p in (5, 25, 100)
    ]
    assert staged.hook.exit_status == 0 and not staged.hook.dry_run
    entries = [e for e in _journal(svc, run_id) if e.action in ("staged", "deployed")]
    assert [(e.action, e.details["to_percent"], e.actor) for e in entries] == [
        ("staged", 5, "ops:bob"),
        ("staged", 25, "ops:bob"),
        ("deployed", 100, "ops:bob"),
    ]
    hook = entries[0].details["hook"]
    assert hook["exit_status"] == 0 and hook["error"] is None
    assert hook["output"] == "deployment.apps/sdk-service env updated\n"
    assert entries[0].details["reason"] == "canary at 5% as the runbook says"
    assert r.last_hook_status == "ok"


def test_a_placeholder_value_is_one_argument_whatever_it_holds(tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    recorder = _script(tmp_path, "recorder.py", RECORDER)
    hostile = "python; rm -rf / $(reboot) 'x' \"y\" && `id` *"
    argv = rollout.render_hook(
        f"{recorder} {calls} lang={{language}} {{language}}", {"language": hostile}
    )
    result = rollout.run_hook(argv, dry_run=False, timeout_s=30)
    assert result.ok
    assert _calls(calls)[0]["argv"] == [f"lang={hostile}", hostile]


def test_a_failing_hook_leaves_the_state_and_is_journaled(
    service: SimulatorService, runs: Runs, tmp_path: Path
) -> None:
    (run_id,) = runs.approved()
    failing = reconfigured(
        service,
        rollout_hook=_script(tmp_path, "failing.py", FAILING) + " {percent}",
        rollout_hook_dry_run=False,
    )
    with pytest.raises(rollout.HookFailed, match=r"exit status 3.*stays approved at 0%.*NotFound"):
        failing.stage_patch(BOB, run_id, "try the canary")
    with service.db.transaction() as conn:
        r = rollout.load(conn, run_id)
    assert (r.status, r.rollout_percentage, r.staged_at) == (ApprovalStatus.APPROVED, 0, None)
    assert r.last_hook_status == "failed: exit status 3"
    error = _journal(service, run_id)[-1]
    assert (error.action, error.actor) == ("error", "ops:bob")
    assert error.details["rollout_hook_failed"] and error.details["state_unchanged"]
    assert (error.details["action"], error.details["to"], error.details["to_percent"]) == (
        "stage",
        "staged",
        5,
    )
    assert error.details["hook"]["exit_status"] == 3
    assert "not found" in error.details["hook"]["output"]
    # Once the hook works, the same transition goes through.
    staged = service.stage_patch(BOB, run_id, "try the canary again")
    assert (staged.rollout.status, staged.rollout.rollout_percentage) == (ApprovalStatus.STAGED, 5)
    # ... and a failed rollback leaves it staged.
    with pytest.raises(rollout.HookFailed, match="stays staged at 5%"):
        failing.rollback_patch(BOB, run_id, "pull it")
    with service.db.transaction() as conn:
        assert rollout.load(conn, run_id).status is ApprovalStatus.STAGED
    assert service.verify_journal(BOB).ok


def test_hook_timeout_missing_command_and_capped_output(tmp_path: Path) -> None:
    sleeper = _script(tmp_path, "sleeper.py", "import time\ntime.sleep(60)\n")
    started = time.monotonic()
    slow = rollout.run_hook(shlex.split(sleeper), dry_run=False, timeout_s=0.5)
    assert time.monotonic() - started < 10
    assert not slow.ok and slow.error == "timed out after 0.5 s" and slow.exit_status is None
    missing = rollout.run_hook(["/nonexistent/kubectl", "x"], dry_run=False, timeout_s=5)
    assert not missing.ok and missing.error is not None and "cannot run" in missing.error
    chatty = _script(tmp_path, "chatty.py", "print('x' * 100000)\n")
    loud = rollout.run_hook(shlex.split(chatty), dry_run=False, timeout_s=30)
    assert loud.ok and len(loud.output) < rollout.MAX_HOOK_OUTPUT + 50
    assert loud.output.endswith("[output truncated]")


def test_the_default_is_a_dry_run_of_the_runbook_command(
    service: SimulatorService, runs: Runs
) -> None:
    (run_id,) = runs.approved()
    staged = service.stage_patch(BOB, run_id, "canary")
    assert staged.hook.dry_run and staged.hook.exit_status is None
    assert staged.hook.output == (
        "dry-run: kubectl set env deployment/sdk-service PATCH_ROLLOUT_PERCENTAGE=5"
    )
    assert staged.rollout.last_hook_status == "dry-run"
    rolled = service.rollback_patch(BOB, run_id, "p99 latency up in production")
    assert rolled.hook.argv[-1] == "PATCH_ROLLOUT_PERCENTAGE=0"
    assert (rolled.rollout.status, rolled.rollout.rollout_percentage) == (
        ApprovalStatus.ROLLED_BACK,
        0,
    )
