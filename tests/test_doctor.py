from __future__ import annotations

import subprocess

from tests.conftest import simcore_bin


def _doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), "doctor"], env=env, capture_output=True, text=True, timeout=60
    )


def test_doctor_ready_on_a_migrated_database(cli_env: dict[str, str]) -> None:
    done = _doctor({**cli_env, "SIMTUI_SANDBOX": "process"})
    assert done.returncode == 0, done.stdout
    assert "[ok  ] database" in done.stdout and "migrations current" in done.stdout
    assert "[ok  ] artifact store" in done.stdout
    assert done.stdout.rstrip().endswith("ready")


def test_doctor_fails_on_pending_migrations(cli_env: dict[str, str], empty_db_url: str) -> None:
    done = _doctor({**cli_env, "SIMTUI_DATABASE_URL": empty_db_url})
    assert done.returncode == 1
    assert "[FAIL] database" in done.stdout and "pending (run: simcore db migrate)" in done.stdout


def test_doctor_fails_when_docker_is_required_and_absent(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "SIMTUI_SANDBOX": "docker", "DOCKER_HOST": "unix:///nonexistent.sock"}
    done = _doctor(env)
    assert done.returncode == 1
    assert "[FAIL] docker engine" in done.stdout
    assert "not ready: docker engine, sandbox images" in done.stdout
