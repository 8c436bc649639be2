"""Start-up: what the dashboard does before its first full home screen, and what it leaves
for after (bench/bench_tui.py measures the time; these tests keep the shape that makes it)."""

from __future__ import annotations

import gc
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simcore.config import Settings
from simcore.service import SimulatorService
from simcore.store import embedded, migrate
from simtui.app import SimTUI
from simtui.launch import prepare
from simtui.messages import HomeReady
from simtui.session import Session
from tests.tui.helpers import ScriptedExecutor, wait_for


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_the_command_opens_the_session_before_loading_the_dashboard() -> None:
    # The session starts opening (the database) with only these imported: whatever else they
    # pulled in would delay a cold database start.
    loaded = _modules_after("import simcore.config, simtui.launch, simtui.session")
    late = {"textual", "simtui.app", "simcore.service", "simcore.dashboard", "psycopg", "pgserver"}
    assert loaded & late == set()
    # The app module itself leaves the screens and the engine to the first screen.
    loaded = _modules_after("import simtui.app")
    assert loaded & {"simcore.service", "simtui.screens.home", "psycopg", "plotext"} == set()
    # The first screen draws a snapshot that a child process read (simtui.prefetch): its
    # modules leave the engine and the database driver to after the first paint.
    loaded = _modules_after("import simtui.launch, simtui.app, simtui.screens.home")
    assert loaded & {"simcore.service", "simcore.dashboard", "psycopg", "psycopg_pool"} == set()
    # Nor pydantic: the child reads the settings, the snapshot's approvals and rollouts are
    # dataclasses, and the enums have a module of their own.
    assert loaded & {"pydantic", "simcore.model", "simcore.config"} == set()


def test_the_engine_leaves_what_the_first_snapshot_does_not_use_to_later() -> None:
    # The session's thread imports the service before its first snapshot: the queue, the API
    # tokens and the checklist come with the methods that use them.
    loaded = _modules_after("import simcore.service")
    assert loaded & {"simcore.queue", "simcore.tokens", "simcore.checklist"} == set()
    # These models are built on first use (defer_build), not at import: the first screen uses
    # none of them.
    deferred = "(model.Scenario, model.Simulation, model.Run, model.SimulationCreate)"
    check = (
        f"from simcore import model\nassert not any(m.__pydantic_complete__ for m in {deferred})"
    )
    subprocess.run([sys.executable, "-c", check], check=True)


def test_the_metrics_module_does_not_load_the_prometheus_client() -> None:
    # The dashboard reads the status lists from simcore.metrics.
    assert "prometheus_client" not in _modules_after("import simcore.metrics")


async def test_going_live_waits_for_the_first_full_home_screen(settings: Settings) -> None:
    seen: list[str] = []
    session = Session.from_settings(settings, executor_factory=lambda s: ScriptedExecutor())
    start_live, ensure_worker = session.start_live, session.ensure_worker

    def live() -> bool:
        seen.append("live")
        return start_live()

    def worker() -> bool:
        seen.append("worker")
        return ensure_worker()

    session.start_live = live  # type: ignore[method-assign]
    session.ensure_worker = worker  # type: ignore[method-assign]

    class App(SimTUI):
        def on_home_ready(self, message: HomeReady) -> None:
            seen.append("home painted")

    session.prefetch()
    app = App(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: session.listening and session.in_process_worker)
        assert seen == ["home painted", "live", "worker"]
    session.close()


async def test_the_collector_pauses_until_the_first_full_home_screen(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMTUI_DATABASE_URL", db_url)
    monkeypatch.setenv("SIMTUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SIMTUI_SANDBOX", "process")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    at_home: list[bool] = []

    class App(SimTUI):
        def on_home_ready(self, message: HomeReady) -> None:
            at_home.append(gc.isenabled())

    app = prepare([], lambda: App)
    try:
        assert not gc.isenabled()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, gc.isenabled)
            assert at_home == [False]
            assert gc.get_freeze_count() > 0  # start-up's survivors stay out of collections
    finally:
        app.session.close()
        gc.unfreeze()  # this test process goes on: let the other tests' objects be collected
        gc.enable()


def test_a_closed_session_starts_nothing(settings: Settings) -> None:
    # A thread that goes live as the app quits must not leave a worker behind.
    session = Session.from_settings(settings, executor_factory=lambda s: ScriptedExecutor())
    session.on_event = lambda event: None
    session.open()
    service = session.service
    session.close()
    session._simulator = service  # what a thread that read it before close() still holds
    assert not session.start_live()
    assert not session.ensure_worker()
    assert not session.listening and not session.in_process_worker


# -- the engine's start ------------------------------------------------------------------------


def test_a_current_database_is_opened_without_migrating_or_writing(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    SimulatorService(settings).start().close()  # stores the built-in patches

    def refused(*args: Any) -> Any:
        raise AssertionError("nothing to migrate or store")

    with monkeypatch.context() as m:
        m.setattr(migrate, "migrate", refused)
        m.setattr(SimulatorService, "sync_builtin_patches", refused)
        SimulatorService(settings).start().close()

    # A changed built-in patch is stored again; a missing migration is applied again.
    with SimulatorService(settings, migrate_on_start=False) as svc:
        with svc.db.transaction() as conn:
            conn.execute(
                "UPDATE sdk_self_healing_registry SET version = '0.0.1' "
                "WHERE source = 'builtin' AND id = (SELECT id FROM sdk_self_healing_registry "
                "WHERE source = 'builtin' LIMIT 1)"
            )
        assert svc._startup_state() == (True, False)
    with SimulatorService(settings) as svc:
        assert svc._startup_state() == (True, True)
        with svc.db.transaction() as conn:
            conn.execute("DELETE FROM simcore_schema_migrations WHERE version = 1")
        assert svc._startup_state() == (False, True)


def test_a_new_database_is_migrated(empty_db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=empty_db_url, data_dir=tmp_path)
    with SimulatorService(settings) as svc:
        assert svc._startup_state() == (True, True)


# -- the embedded server, when it already runs -----------------------------------------------


@pytest.fixture
def pgdata() -> Iterator[Path]:
    # A short path: the fake server's socket lives in it.
    folder = Path(f"/tmp/simst-{os.getpid()}")
    (folder / "pgdata").mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(folder / "pgdata" / ".s.PGSQL.5432"))
    yield folder / "pgdata"
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


def _pid_file(pgdata: Path, pid: int, status: str = "ready") -> None:
    lines = [str(pid), str(pgdata), "1700000000", "5432", str(pgdata), "", "  1  2", status]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")


def test_a_running_server_is_read_from_its_pid_file(pgdata: Path) -> None:
    url = f"postgresql://postgres:@/{embedded.DATABASE_NAME}?host={pgdata}"
    _pid_file(pgdata, os.getpid())
    assert embedded._running_url(pgdata) == url
    _pid_file(pgdata, os.getpid(), status="starting")
    assert embedded._running_url(pgdata) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _pid_file(pgdata, dead.pid)
    assert embedded._running_url(pgdata) is None
    (pgdata / "postmaster.pid").unlink()
    assert embedded._running_url(pgdata) is None


def test_joining_a_running_server_imports_nothing_of_pgserver(pgdata: Path) -> None:
    _pid_file(pgdata, os.getpid())
    (pgdata / embedded.DATABASE_MARKER).write_text(embedded.DATABASE_NAME)
    code = (
        "import sys\nfrom pathlib import Path\nfrom simcore.store import embedded\n"
        f"print(embedded.start(Path({str(pgdata.parent)!r})))\n"
        "print('pgserver' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    url, imported = out.stdout.split()
    assert url == f"postgresql://postgres:@/{embedded.DATABASE_NAME}?host={pgdata}"
    assert imported == "False"
