"""`simtui` in a real terminal (tmux, 80x24): starts, draws, quits on `q`."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import VENV_BIN

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("SIMTUI_REQUIRE_TOOLS"),
    reason="tmux is not installed",
)


def _capture(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
    ).stdout


def _wait_for(session: str, needle: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if needle in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} not on screen after {timeout}s:\n{screen}")


def _run_in_tmux(cmd: str, env: dict[str, str]) -> str:
    session = f"simtui-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd],
        env=env,
        check=True,
    )
    return session


def _base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMTUI_", "MAKE"))}
    env.update(
        SIMTUI_DATA_DIR=str(tmp_path / "data"),
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        TERM="xterm-256color",
    )
    return env


def test_simtui_in_tmux_80x24(db_url: str, tmp_path: Path) -> None:
    env = {**_base_env(tmp_path), "SIMTUI_DATABASE_URL": db_url}
    session = _run_in_tmux(f"{VENV_BIN / 'simtui'}; echo EXITED=$?; sleep 30", env)
    try:
        screen = _wait_for(session, "queued 0")
        assert "Recent runs" in screen
        assert len(screen.splitlines()) <= 24
        assert all(len(line) <= 80 for line in screen.splitlines())
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        _wait_for(session, "EXITED=0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.slow
def test_make_run_opens_the_dashboard_on_the_embedded_database(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = _base_env(tmp_path)
    session = _run_in_tmux(f"cd {repo} && make run; echo EXITED=$?; sleep 30", env)
    try:
        screen = _wait_for(session, "embedded database · queued 0", timeout=60)
        assert "no runs yet" in screen
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        _wait_for(session, "EXITED=0")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        subprocess.run(
            [str(VENV_BIN / "simcore"), "db", "stop"], env=env, capture_output=True, timeout=60
        )
