"""Workers as real processes with the real executor: many runs, SIGKILL, a database restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simcore.config import Settings
from simcore.model import Scenario
from simcore.service import SimulatorService
from tests.conftest import simcore_bin
from tests.queueing.helpers import OPS

pytestmark = pytest.mark.slow

TINY = Scenario(
    error="signature_mismatch",
    error_frequency=0.0,
    latency_ms=50,
    total_requests=3,
    success_threshold=0.5,
)


def _simulation(service: SimulatorService, scenario: Scenario = TINY) -> Any:
    return service.create_simulation(
        OPS, {"name": "tiny", "sdk_language": "python", "scenario": scenario}
    )


def _workers(env: dict[str, str], n: int, *extra: str) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [simcore_bin(), "worker", *extra],
            env=env,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(n)
    ]


def _wait_all_final(url: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM sdk_simulation_runs "
                    "WHERE status NOT IN ('queued', 'running')"
                ).fetchone()
            if row and row[0] >= expected:
                return
        except psycopg.OperationalError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"runs not final after {timeout}s")


def _journal_counts(url: str) -> tuple[Counter[Any], Counter[Any], Counter[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT run_id, action FROM sdk_simulation_journal WHERE run_id IS NOT NULL"
        ).fetchall()
        statuses = Counter(
            r[0] for r in conn.execute("SELECT status FROM sdk_simulation_runs").fetchall()
        )
    started = Counter(r for r, a in rows if a == "started")
    final = Counter(
        r for r, a in rows if a in ("completed", "failed", "timeout", "error", "cancelled")
    )
    return started, final, statuses


def _stop(procs: list[subprocess.Popen[str]]) -> list[str]:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    return [p.communicate(timeout=60)[1] for p in procs]


def test_500_runs_4_worker_processes_each_run_once(
    settings: Settings, db_url: str, cli_env: dict[str, str]
) -> None:
    with SimulatorService(settings) as service:
        sim = _simulation(service)
        ids = {service.launch_run(OPS, sim.id, seed).run.id for seed in range(500)}
    procs = _workers({**cli_env, "SIMTUI_SANDBOX": "process"}, 4)
    try:
        _wait_all_final(db_url, 500, timeout=240)
    finally:
        logs = _stop(procs)
    started, final, statuses = _journal_counts(db_url)
    assert set(started) == ids and set(started.values()) == {1}
    assert set(final) == ids and set(final.values()) == {1}
    assert statuses == Counter({"success": 500})
    executed = Counter(
        line.split("run ")[1].split()[0]
        for log in logs
        for line in log.splitlines()
        if line.endswith(" success")
    )
    assert len(executed) == 500 and set(executed.values()) == {1}
    assert all(sum(1 for line in log.splitlines() if " success" in line) > 0 for log in logs), (
        "every worker took a share"
    )


def test_sigkilled_worker_run_is_taken_over(
    settings: Settings, db_url: str, cli_env: dict[str, str]
) -> None:
    slow = TINY.model_copy(update={"total_requests": 8_000, "latency_ms": 5})
    with SimulatorService(settings) as service:
        run_id = service.launch_run(OPS, _simulation(service, slow).id, 7).run.id
    env = {**cli_env, "SIMTUI_SANDBOX": "process"}
    first = _workers(env, 1, "--lease-seconds", "2", "--worker-id", "doomed")[0]
    deadline = time.monotonic() + 30
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT status FROM sdk_simulation_runs WHERE id = %s", (run_id,)
            ).fetchone()
            if row and row[0] == "running":
                break
            time.sleep(0.05)
    time.sleep(0.5)
    first.kill()
    first.communicate(timeout=10)
    killed_at = time.monotonic()
    second = _workers(env, 1, "--lease-seconds", "2", "--worker-id", "rescuer")
    try:
        _wait_all_final(db_url, 1, timeout=60)
    finally:
        _stop(second)
    assert time.monotonic() - killed_at < 45
    with SimulatorService(settings) as service:
        detail = service.get_run(OPS, run_id)
    assert detail.run.status.value == "success"
    started = [e.details for e in detail.journal if e.action == "started"]
    assert [s["worker_id"] for s in started] == ["doomed", "rescuer"]
    assert started[1]["reclaimed_from"] == "doomed"
    assert started[1]["reason"] == "lease expired"


@pytest.fixture
def embedded_env() -> Iterator[dict[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="simrst-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMTUI_", "PG"))}
    env.update(
        SIMTUI_DATA_DIR=str(folder / "data"),
        XDG_CONFIG_HOME=str(folder / "cfg"),
        SIMTUI_SANDBOX="process",
    )
    yield env
    subprocess.run([simcore_bin(), "db", "stop"], env=env, capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def test_workers_survive_a_database_restart(embedded_env: dict[str, str]) -> None:
    def simcore(*args: str) -> str:
        done = subprocess.run(
            [simcore_bin(), *args], env=embedded_env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    simcore("db", "migrate")
    url = simcore("db", "url")
    settings = Settings(database_url=url, data_dir=Path(embedded_env["SIMTUI_DATA_DIR"]))
    with SimulatorService(settings) as service:
        sim = _simulation(service, TINY.model_copy(update={"total_requests": 400}))
        for seed in range(40):
            service.launch_run(OPS, sim.id, seed)
    procs = _workers(embedded_env, 2)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with psycopg.connect(url) as conn:
                done = conn.execute(
                    "SELECT count(*) FROM sdk_simulation_runs WHERE status = 'success'"
                ).fetchone()
            if done and done[0] >= 5:
                break
            time.sleep(0.2)
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT count(*) FROM sdk_simulation_runs WHERE status IN ('queued', 'running')"
            ).fetchone()
        assert "stopped" in simcore("db", "stop")
        time.sleep(3)
        simcore("db", "status")  # starts the embedded server again
        _wait_all_final(url, 40, timeout=180)
    finally:
        logs = _stop(procs)
    started, final, statuses = _journal_counts(url)
    assert statuses == Counter({"success": 40}), logs
    assert set(final.values()) == {1} and len(final) == 40
    assert set(started.values()) == {1}
    # The restart happened with work still in hand (the pool reconnects transparently, so
    # workers need not even notice).
    assert left is not None and left[0] > 0
