"""The CLI for people without the dashboard: simulations, runs, logs, patches, journal."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import psycopg
import pytest

from tests.conftest import simcore_bin


def sc(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [simcore_bin(), *args], env=env, capture_output=True, text=True, timeout=120
    )
    if ok:
        assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def add_timeout_patch(
    env: dict[str, str], patch_file: str, *args: str, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """``simcore patches add`` of a python patch for the timeout error."""
    return sc(
        env, "patches", "add", "--language", "python", "--error-signature", "timeout",
        "--patch-file", patch_file, *args, ok=ok,
    )  # fmt: skip


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, Any]:
    return {**cli_env, "SIMTUI_SANDBOX": "process"}


def test_create_run_wait_show_logs(env: dict[str, str]) -> None:
    sim = sc(
        env, "sim", "create", "--template", "signature_mismatch", "--language", "python"
    ).stdout.strip()
    assert sim in sc(env, "sim", "list").stdout
    done = sc(
        env, "sim", "run", sim, "--seed", "12345", "--idempotency-key", "ops-test-001", "--wait"
    )
    assert "status     success" in done.stdout
    assert "no worker is running: executing the run here" in done.stderr
    run_id = done.stdout.split()[1]
    again = sc(env, "sim", "run", sim, "--seed", "12345", "--idempotency-key", "ops-test-001")
    assert again.stdout.strip() == run_id and "same run" in again.stderr
    shown = json.loads(sc(env, "runs", "show", run_id, "--json").stdout)
    assert shown["run"]["status"] == "success"
    assert shown["run"]["metrics"]["baseline"]["success_rate"] < 1.0
    assert [e["action"] for e in shown["journal"]] == [
        "queued",
        "started",
        "applied_patch",
        "completed",
    ]
    logs = sc(env, "runs", "logs", run_id).stdout
    assert "patch_applied" in logs
    listed = json.loads(sc(env, "runs", "list", "--status", "success", "--json").stdout)
    assert [r["id"] for r in listed] == [run_id]
    assert "chain intact" in sc(env, "journal", "verify").stdout
    assert "applied_patch" in sc(env, "journal", "show", run_id).stdout


def test_cancel_and_bad_patch_and_conflicts(env: dict[str, str], tmp_path: Any) -> None:
    sim = sc(
        env,
        "sim",
        "create",
        "--template",
        "timeout",
        "--language",
        "node",
        "--patch",
        "timeout-retry-without-key-node",
    ).stdout.strip()
    run_id = sc(env, "sim", "run", sim, "--seed", "1", "--idempotency-key", "k1").stdout.strip()
    assert "cancelled" in sc(env, "runs", "cancel", run_id).stdout
    again = sc(env, "runs", "cancel", run_id, ok=False)
    assert again.returncode == 2 and "already cancelled" in again.stderr
    conflict = sc(env, "sim", "run", sim, "--seed", "2", "--idempotency-key", "k1", ok=False)
    assert conflict.returncode == 2 and "already used" in conflict.stderr
    # The same command typed twice without --seed is a retry: the run, and the seed it got.
    typed = [sc(env, "sim", "run", sim, "--idempotency-key", "k2") for _ in range(2)]
    assert typed[0].stdout == typed[1].stdout and typed[0].stdout.strip() != run_id
    seeds = [line for t in typed for line in t.stderr.splitlines() if line.startswith("seed ")]
    assert len(seeds) == 2 and seeds[0] == seeds[1], [t.stderr for t in typed]
    assert "same run" in typed[1].stderr and "same run" not in typed[0].stderr
    bad = sc(env, "sim", "run", sim, "--seed", "3", "--wait", ok=False)
    assert bad.returncode == 1
    assert "status     failed" in bad.stdout and "duplicate charge" in bad.stdout


def test_patches_add_show_and_errors(env: dict[str, str], tmp_path: Any) -> None:
    code = tmp_path / "patch.py"
    code.write_text("ctx.client.timeout_ms = 9000\nctx.retry()\n")
    pid = add_timeout_patch(env, str(code), "--slug", "py-longer-timeout").stdout.strip()
    shown = sc(env, "patches", "show", "py-longer-timeout").stdout
    assert pid in shown and "ctx.client.timeout_ms = 9000" in shown
    dup = add_timeout_patch(env, str(code), "--slug", "py-longer-timeout", ok=False)
    assert dup.returncode == 2 and "patch.slug" in dup.stderr
    missing = add_timeout_patch(env, str(tmp_path / "nope.py"), ok=False)
    assert missing.returncode == 2 and "patch_file: cannot read" in missing.stderr
    # What the API's schema refuses, the CLI refuses too, by field, before the database.
    registry = sc(env, "patches", "list").stdout
    broken = tmp_path / "broken.py"
    broken.write_text("ctx.client.timeout_ms = 9000\nif ctx.error:\nctx.retry()\n")
    refused = add_timeout_patch(env, str(broken), ok=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "patch.patch_code: does not compile as a python patch body" in refused.stderr
    assert "(line 3)" in refused.stderr, refused.stderr
    blank = sc(env, "patches", "add", "--language", "python", "--error-signature", " ",
               "--patch-file", str(code), ok=False)  # fmt: skip
    assert blank.returncode == 2 and "patch.error_signature" in blank.stderr
    js = tmp_path / "broken.js"
    js.write_text("ctx.retry(\n")
    node = sc(env, "patches", "add", "--language", "node", "--error-signature", "timeout",
              "--patch-file", str(js), ok=False)  # fmt: skip
    assert node.returncode == 2 and "patch.patch_code: does not compile as a node" in node.stderr
    assert sc(env, "patches", "list").stdout == registry  # nothing half-added
    wrong_lang = sc(
        env,
        "sim",
        "create",
        "--template",
        "timeout",
        "--language",
        "node",
        "--patch",
        "py-longer-timeout",
        ok=False,
    )
    assert wrong_lang.returncode == 2 and "patch_reference" in wrong_lang.stderr
    unknown = sc(env, "runs", "show", "not-a-uuid", ok=False)
    assert unknown.returncode == 2 and "run_id: not a valid id" in unknown.stderr
    absent = sc(env, "runs", "show", "00000000-0000-4000-8000-000000000000", ok=False)
    assert absent.returncode == 2 and "not found" in absent.stderr


def test_text_from_the_database_cannot_drive_the_terminal(env: dict[str, str]) -> None:
    refused = sc(env, "sim", "create", "--template", "timeout", "--language", "python",
                 "--name", "evil\x1b[2J", ok=False)  # fmt: skip
    assert refused.returncode == 2
    assert "simulation.name: must not contain control characters (U+001B" in refused.stderr
    # A row written by hand (psql) holds one anyway: the CLI prints a replacement character.
    sim = sc(env, "sim", "create", "--template", "timeout", "--language", "python",
             "--name", "by hand").stdout.strip()  # fmt: skip
    with psycopg.connect(env["SIMTUI_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "UPDATE sdk_simulations SET name = %s WHERE id = %s", ("evil\x1b[2J\x9bred", sim)
        )
    listed = sc(env, "sim", "list").stdout
    assert "evil\ufffd[2J\ufffdred" in listed and "\x1b" not in listed and "\x9b" not in listed
    # redact is a filter of the user's own text: it passes it through as it is.
    done = subprocess.run([simcore_bin(), "redact"], input="x\x1b[31m\n", env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and done.stdout == "x\x1b[31m\n"
