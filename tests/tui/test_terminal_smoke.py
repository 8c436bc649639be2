"""`simtui` in a real terminal (tmux, 80x24), driven by keys only, read with capture-pane.

Covers what the Pilot cannot: the installed entry point, start-up, the real key sequences,
the in-process worker running real sandboxes, and a screen that fits 80x24.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simcore.config import Settings
from simcore.model import Role
from simcore.service import SimulatorService
from tests.api.conftest import ADMIN, wait_ready
from tests.conftest import VENV_BIN
from tests.tui.helpers import LAUNCHER, simulation

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


def _wait_re(session: str, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        found = re.search(pattern, screen)
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"/{pattern}/ not on screen after {timeout}s:\n{screen}")


def _keys(session: str, *keys: str) -> None:
    # One key per send-keys, a beat apart, as a person types: a burst can arrive as one
    # read, which is not what this test is about.
    for key in keys:
        subprocess.run(["tmux", "send-keys", "-t", session, key], check=True)
        time.sleep(0.15)


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


def _fits(screen: str) -> None:
    lines = screen.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen


def _wait_db(url: str, check: Callable[[Any], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with psycopg.connect(url) as conn:
            if check(conn):
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _approve_by_keys(session: str, *, pending_after: int) -> None:
    """Approve the highlighted pending patch: tab to the approval queue, a, a note, enter."""
    _keys(session, "Tab", "a")
    _wait_for(session, "Approve the patch of run")
    _keys(session, "o", "k", "Enter")
    _fits(_wait_for(session, "approved: patch"))
    _wait_for(session, f"Pending approvals ({pending_after})")


def _decided(db_url: str) -> list[Any]:
    """(status, notes, decided_by) of every approval no longer pending."""
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT status, approval_notes, decided_by FROM sdk_patch_approvals "
            "WHERE status <> 'pending'"
        ).fetchall()


def _count(conn: Any, where: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM sdk_simulation_runs WHERE {where}").fetchone()
    return int(row[0])


def test_demo_by_keys_in_tmux_80x24(db_url: str, tmp_path: Path) -> None:
    env = {**_base_env(tmp_path), "SIMTUI_DATABASE_URL": db_url, "SIMTUI_SANDBOX": "process"}
    session = _run_in_tmux(f"{VENV_BIN / 'simtui'} --demo; echo EXITED=$?; sleep 30", env)
    try:
        _fits(_wait_for(session, "worker: in-process", timeout=30))
        _wait_db(
            db_url,
            lambda c: _count(c, "true") == 7 and _count(c, "status IN ('queued','running')") == 0,
            timeout=150,
            what="the seven demo runs to finish",
        )
        screen = _wait_for(session, "Queue 0 · running 0")
        screen = _wait_for(session, "Pending approvals (6)")
        _fits(screen)
        assert "Recent runs (7)" in screen and "failed" in screen and "pending" in screen

        # Open the highlighted run and follow its log.
        _keys(session, "Enter")
        _wait_for(session, "1 Log")
        lines = int(_wait_re(session, r"following · ([1-9]\d*) lines").group(1))
        _fits(_capture(session))
        with psycopg.connect(db_url) as conn:
            stored = conn.execute("SELECT max(log_lines) FROM sdk_simulation_runs").fetchone()
        assert stored is not None and 0 < lines <= stored[0]
        _keys(session, "f")
        _wait_for(session, "paused (f follows)")
        _keys(session, "f")
        _wait_for(session, "following ·")
        _keys(session, "Escape")
        _wait_for(session, "Pending approvals (6)")

        _approve_by_keys(session, pending_after=5)
        rows = _decided(db_url)
        with psycopg.connect(db_url) as conn:
            journal = conn.execute(
                "SELECT actor FROM sdk_simulation_journal WHERE action = 'approved'"
            ).fetchall()
        assert len(rows) == 1 and rows[0][0] == "approved" and rows[0][1] == "ok"
        assert rows[0][2].startswith("ops:") and rows[0][2] != "ops:demo"
        assert [j[0] for j in journal] == [rows[0][2]]

        _keys(session, "q")
        _wait_for(session, "EXITED=0", timeout=30)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_auditor_in_tmux_is_read_only(db_url: str, tmp_path: Path) -> None:
    env = {**_base_env(tmp_path), "SIMTUI_DATABASE_URL": db_url, "NO_COLOR": "1"}
    cmd = f"{VENV_BIN / 'simtui'} --role auditor; echo EXITED=$?; sleep 30"
    session = _run_in_tmux(cmd, env)
    try:
        screen = _wait_for(session, "read-only: auditor")
        _fits(screen)
        assert "Approve" not in screen and "New" not in screen
        _keys(session, "n")
        _wait_for(session, "read-only: auditor (cannot")  # the toast wraps the rest
        _keys(session, "q")
        _wait_for(session, "EXITED=0", timeout=30)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


@pytest.mark.slow
def test_make_run_opens_the_dashboard_on_the_embedded_database(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = _base_env(tmp_path)
    session = _run_in_tmux(f"cd {repo} && make run; echo EXITED=$?; sleep 30", env)
    try:
        screen = _wait_for(session, "embedded db · worker", timeout=60)
        assert "Recent runs (0)" in screen
        _keys(session, "q")
        _wait_for(session, "EXITED=0", timeout=30)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        subprocess.run(
            [str(VENV_BIN / "simcore"), "db", "stop"], env=env, capture_output=True, timeout=60
        )


def _serve(db_url: str, tmp_path: Path) -> tuple[subprocess.Popen[str], str]:
    """`simcore serve` on a free port, executing runs itself (two in-process worker slots)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**_base_env(tmp_path), "SIMTUI_DATABASE_URL": db_url, "SIMTUI_SANDBOX": "process"}
    server = subprocess.Popen(
        [str(VENV_BIN / "simcore"), "serve", "--port", str(port), "--workers-in-process", "2",
         "--log-level", "warning"],
        env=env,
        text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_ready(server, url, 60)
    return server, url


def test_api_mode_in_tmux_80x24(settings: Settings, db_url: str, tmp_path: Path) -> None:
    """The smoke test over `simcore serve`: follow a log, approve by keys, an auditor is
    read-only. The runs are launched by alice; the dashboard's ops token is bob's (four eyes)."""
    with SimulatorService(settings) as service:
        ops = service.create_token(ADMIN, Role.OPS, name="bob").token
        auditor = service.create_token(ADMIN, Role.AUDITOR, name="audrey").token
        for language in ("python", "node"):
            sim = simulation(service, language=language)
            service.launch_run(LAUNCHER, sim.id, 12345)
    server, url = _serve(db_url, tmp_path)
    try:
        _wait_db(
            db_url,
            lambda c: _count(c, "status = 'success'") == 2,
            timeout=120,
            what="the server's worker to run both",
        )
        env = _base_env(tmp_path)
        session = _run_in_tmux(
            f"{VENV_BIN / 'simtui'} --api {url} --token {ops}; echo EXITED=$?; sleep 30", env
        )
        try:
            _fits(_wait_for(session, "Pending approvals (2)", timeout=30))
            _keys(session, "Enter")
            _wait_for(session, "1 Log")
            assert int(_wait_re(session, r"following · ([1-9]\d*) lines").group(1)) > 0
            _fits(_capture(session))
            _keys(session, "Escape")
            _wait_for(session, "Pending approvals (2)")
            _approve_by_keys(session, pending_after=1)
            rows = _decided(db_url)
            assert [tuple(r) for r in rows] == [("approved", "ok", "ops:bob")]
            _keys(session, "q")
            _wait_for(session, "EXITED=0", timeout=30)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)

        session = _run_in_tmux(
            f"{VENV_BIN / 'simtui'} --api {url} --token {auditor}; echo EXITED=$?; sleep 30", env
        )
        try:
            screen = _wait_for(session, "read-only: auditor", timeout=30)
            _fits(screen)
            assert "Approve" not in screen and "New" not in screen
            _keys(session, "a")
            _wait_for(session, "read-only: auditor (cannot")
            _keys(session, "q")
            _wait_for(session, "EXITED=0", timeout=30)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    finally:
        server.terminate()
        server.wait(30)
