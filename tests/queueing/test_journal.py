"""The journal's hash chain: intact after normal work, broken by any edit, found by verify."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from simcore import journal, queue
from simcore.config import Settings
from simcore.service import SimulatorService
from tests.conftest import simcore_bin
from tests.queueing.helpers import OPS, make_simulation


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc


def _work(service: SimulatorService) -> list[int]:
    sim = make_simulation(service)
    for seed in range(3):
        service.launch_run(OPS, sim.id, seed)
    queue.claim(service.db, "w1")
    with service.db.transaction() as conn:
        return [e.id for e in journal.entries(conn)]


def test_chain_verifies_after_normal_work(service: SimulatorService) -> None:
    ids = _work(service)
    result = journal.verify(service.db)
    assert result.ok and result.checked == len(ids) == 4


def test_by_hand_status_change_is_journaled_and_chained(
    service: SimulatorService, db_url: str
) -> None:
    _work(service)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE sdk_simulation_runs SET status = 'timeout' "
            "WHERE status IN ('queued', 'running')"
        )
    with service.db.transaction() as conn:
        last = journal.entries(conn)[-1]
    assert last.action == "timeout" and last.actor.startswith("sql:")
    assert last.details["by_hand"] is True
    assert journal.verify(service.db).ok


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE sdk_simulation_journal SET actor = 'ops:mallory' WHERE id = {id}",
        "UPDATE sdk_simulation_journal SET details = '{{\"seed\": 999}}' WHERE id = {id}",
        "DELETE FROM sdk_simulation_journal WHERE id = {id}",
    ],
)
def test_superuser_edit_bypassing_the_trigger_is_detected(
    service: SimulatorService, db_url: str, cli_env: dict[str, str], tamper: str
) -> None:
    ids = _work(service)
    target = ids[1]
    with psycopg.connect(db_url, autocommit=True) as conn:
        # A superuser can disable triggers for the session; the chain still tells.
        conn.execute("SET session_replication_role = replica")
        conn.execute(tamper.format(id=target))
    result = journal.verify(service.db)
    assert not result.ok
    expected = ids[2] if tamper.startswith("DELETE") else target
    assert result.first_break == expected
    done = subprocess.run(
        [simcore_bin(), "journal", "verify"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"BROKEN at entry {expected}" in done.stdout
