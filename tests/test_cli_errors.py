"""Bad input at the command line: one line naming the problem, exit status 2, no traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from tests.conftest import simcore_bin


def _run(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), *args], env=env, capture_output=True, text=True, timeout=60, input=stdin
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")}
    base.update(SIMTUI_DATA_DIR=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "c"))
    return base


def _assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server(env: dict[str, str]) -> None:
    env["SIMTUI_DATABASE_URL"] = f"postgresql://u@127.0.0.1:{_free_port()}/db"
    done = _run(env, "db", "migrate")
    _assert_one_line_error(done, "SIMTUI_DATABASE_URL", "cannot connect", "127.0.0.1")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("mysql://root@localhost/db", "unsupported scheme 'mysql'"),
        ("postgresql://u@localhost:notaport/db", "SIMTUI_DATABASE_URL"),
        ("host=localhost port", "not a valid connection string"),
    ],
)
def test_wrong_database_url(env: dict[str, str], url: str, needle: str) -> None:
    env["SIMTUI_DATABASE_URL"] = url
    _assert_one_line_error(_run(env, "db", "status"), needle)


def test_bad_setting(env: dict[str, str]) -> None:
    env["MAX_RUN_TIME_MS"] = "three minutes"
    _assert_one_line_error(_run(env, "db", "url"), "MAX_RUN_TIME_MS")


def test_invalid_scenario(env: dict[str, str], tmp_path: Path) -> None:
    bad = {
        "error": "timeout",
        "error_frequency": 2,
        "latency_ms": 1000,
        "total_requests": 200,
        "success_threshold": 0.9,
    }
    _assert_one_line_error(
        _run(env, "scenario", "check", json.dumps(bad)),
        "scenario.error_frequency",
        "less than or equal to 1",
    )
    _assert_one_line_error(
        _run(env, "scenario", "check", "-", stdin='{"error": "timeout",'),
        "scenario: not valid JSON",
    )
    _assert_one_line_error(
        _run(env, "scenario", "check", f"@{tmp_path}/missing.json"), "cannot read"
    )


def test_valid_scenario_and_templates(env: dict[str, str]) -> None:
    done = _run(env, "templates", "show", "timeout")
    assert done.returncode == 0
    checked = _run(env, "scenario", "check", "-", stdin=done.stdout)
    assert checked.returncode == 0
    assert json.loads(checked.stdout)["error_frequency"] == 0.2
    _assert_one_line_error(_run(env, "templates", "show", "hmac"), "unknown template 'hmac'")


def test_unknown_command_is_one_line(env: dict[str, str]) -> None:
    done = _run(env, "dbb")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
