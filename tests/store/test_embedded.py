"""The embedded default: no URL configured, a PostgreSQL under the data folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import simcore_bin
from tests.runbook import psql_shell_lines


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    import pgserver._commands as pgc

    return str(pgc.POSTGRES_BIN_PATH / "psql")


@pytest.fixture
def embedded_env() -> Iterator[dict[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="simemb-", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIMTUI_", "PG"))}
    env.update(
        SIMTUI_DATA_DIR=str(folder / "data"),
        XDG_CONFIG_HOME=str(folder / "cfg"),
        PATH=f"{Path(_psql()).parent}:{env.get('PATH', '')}",
    )
    yield env
    subprocess.run([simcore_bin(), "db", "stop"], env=env, capture_output=True, timeout=60)
    shutil.rmtree(folder, ignore_errors=True)


def _simcore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), *args], env=env, capture_output=True, text=True, timeout=90
    )


@pytest.mark.slow
def test_embedded_server_is_shared_and_reachable_with_psql(embedded_env: dict[str, str]) -> None:
    # Four processes start together on a fresh data folder: one server, one schema.
    procs = [
        subprocess.Popen(
            [simcore_bin(), "db", "migrate"],
            env=embedded_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert sum("applied 0001" in o for o, _ in outs) == 1

    url = _simcore(embedded_env, "db", "url").stdout.strip()
    assert "molam_connect" in url
    psql = subprocess.run(
        [_psql(), url, "-At", "-c", "SELECT count(*) FROM sdk_simulation_runs_summary"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert psql.returncode == 0, psql.stderr
    assert psql.stdout.strip() == "0"

    # The runbook's psql commands, as written, after `eval "$(simcore db env)"`.
    script = [f'eval "$({simcore_bin()} db env)"', "set -e"]
    for line in psql_shell_lines():
        nobody = "'00000000-0000-4000-8000-000000000000'"
        script.append(
            line.replace("'PATCH_ID'", nobody)
            .replace("'SIM_ID'", nobody)
            .replace("'RUN_ID'", nobody)
        )
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env=embedded_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "UPDATE 0" in done.stdout  # the purge and the staging found nothing to change
    assert "(0 rows)" in done.stdout

    stop = _simcore(embedded_env, "db", "stop")
    assert "stopped" in stop.stdout
    # It starts again on demand.
    assert _simcore(embedded_env, "db", "status").returncode == 0
