"""The journal's hash chain: intact after normal work, broken by any edit, found by verify.

Entries are written unsealed (no lock) and sealed into the chain afterwards; see migration
0006 and simcore.journal.
"""

from __future__ import annotations

import itertools
import random
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest

from simcore import journal, queue
from simcore.config import Settings
from simcore.model import JournalAction
from simcore.service import SimulatorService
from simcore.store import Database, migrate
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


def _append(conn: psycopg.Connection[Any], actor: str) -> int:
    return journal.append(conn, JournalAction.EXPORTED, actor, details={"by": actor})


def _superuser(db_url: str, statement: str, *params: Any) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        # A superuser can disable triggers for the session; the chain still tells.
        conn.execute("SET session_replication_role = replica")
        conn.execute(statement, params or None)


def test_chain_verifies_after_normal_work(service: SimulatorService) -> None:
    ids = _work(service)
    result = journal.verify(service.db)
    assert result.ok and result.checked == len(ids) == 4 and result.pending == 0
    with service.db.transaction() as conn:
        entries = journal.entries(conn)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == journal.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))


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
    assert not last.sealed
    result = journal.verify(service.db)
    assert result.ok and result.checked == 7 and result.pending == 0
    with service.db.transaction() as conn:
        assert journal.entries(conn)[-1].sealed


def test_python_and_sql_encodings_agree(service: SimulatorService) -> None:
    approval = uuid4()
    with service.db.transaction() as conn:
        journal.append(
            conn,
            JournalAction.APPROVED,
            "ops:zoë",
            approval_id=approval,
            details={"note": "déjà vu ✓", "n": [1, 2.5, None], "nested": {"b": 1, "a": "x"}},
        )
        journal.append(conn, JournalAction.EXPORTED, "sira", details={})
    journal.seal(service.db)
    with service.db.transaction() as conn:
        rows = conn.execute(journal._SELECT + " ORDER BY id").fetchall()
    for row in rows:
        assert journal.content_hash(row) == row["content_hash"]
        assert journal.chain_hash(row["seq"], row["prev_hash"], row["content_hash"]) == row["hash"]
    assert journal.verify(service.db).ok


def test_an_unsealed_entry_is_pending_not_broken(service: SimulatorService) -> None:
    _work(service)
    journal.seal(service.db)
    with service.db.transaction() as conn:
        _append(conn, "late")
    result = journal.verify(service.db, seal_first=False)
    assert result.ok and result.checked == 4 and result.pending == 1
    assert "1 newer entries pending sealing" in result.describe()
    result = journal.verify(service.db)
    assert result.ok and result.checked == 5 and result.pending == 0


def test_an_edited_unsealed_entry_is_found_by_its_content_hash(
    service: SimulatorService, db_url: str
) -> None:
    ids = _work(service)
    _superuser(db_url, "UPDATE sdk_simulation_journal SET actor = 'ops:mallory' WHERE id = %s",
               ids[2])  # fmt: skip
    for seal_first in (False, True):
        result = journal.verify(service.db, seal_first=seal_first)
        assert not result.ok and result.first_break == ids[2]
        assert "edited" in result.reason


def test_commit_order_differs_from_id_order(service: SimulatorService, db_url: str) -> None:
    with psycopg.connect(db_url) as slow, psycopg.connect(db_url, autocommit=True) as fast:
        early = _append(slow, "slow")  # the smaller id, committed last
        late = _append(fast, "fast")
        assert early < late
        assert journal.seal(service.db) == 1  # the uncommitted entry is invisible: not skipped
        slow.commit()
    assert journal.seal(service.db) == 1
    with service.db.transaction() as conn:
        seq = {e.id: e.seq for e in journal.entries(conn)}
    assert seq == {late: 1, early: 2}
    result = journal.verify(service.db)
    assert result.ok and result.checked == 2


def test_concurrent_appenders_make_one_unbroken_chain(service: SimulatorService) -> None:
    writers, per_writer = 6, 25
    start = threading.Barrier(writers + 1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        rng = random.Random(n)
        try:
            with service.db.connect() as conn:
                start.wait()
                for i in range(per_writer):
                    with conn.transaction():
                        _append(conn, f"w{n}-{i}a")
                        if rng.random() < 0.5:
                            stop.wait(rng.random() / 100)  # commit after later ids
                        _append(conn, f"w{n}-{i}b")
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def seal_meanwhile() -> None:
        while not stop.is_set():
            journal.seal(service.db, wait=False)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    sealer = threading.Thread(target=seal_meanwhile)
    start.wait()
    sealer.start()
    for t in threads:
        t.join(60)
    stop.set()
    sealer.join(60)
    assert not errors
    result = journal.verify(service.db)
    total = writers * per_writer * 2
    assert result.ok, result.describe()
    assert result.checked == total and result.pending == 0
    with service.db.transaction() as conn:
        entries = journal.entries(conn, limit=total)
        batches = conn.execute("SELECT count(*) AS n FROM sdk_simulation_journal_seals").fetchone()
    assert sorted(e.seq or 0 for e in entries) == list(range(1, total + 1))
    assert batches is not None and batches["n"] > 1, "sealed in several batches meanwhile"


@pytest.mark.parametrize(
    "tamper",
    [
        "UPDATE sdk_simulation_journal SET actor = 'ops:mallory' WHERE id = {id}",
        "UPDATE sdk_simulation_journal SET details = '{{\"seed\": 999}}' WHERE id = {id}",
        "DELETE FROM sdk_simulation_journal WHERE id = {id}",
        # Unsealed again: the next seal would put it at the end, leaving a hole here.
        "UPDATE sdk_simulation_journal SET seq = NULL, prev_hash = NULL, hash = NULL "
        "WHERE id = {id}",
    ],
)
def test_superuser_edit_bypassing_the_trigger_is_detected(
    service: SimulatorService, db_url: str, cli_env: dict[str, str], tamper: str
) -> None:
    ids = _work(service)
    journal.seal(service.db)  # what a worker does after its runs
    target = ids[1]
    _superuser(db_url, tamper.format(id=target))
    result = journal.verify(service.db)
    assert not result.ok
    expected = target if "actor" in tamper or "details" in tamper else ids[2]
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


@pytest.mark.parametrize("count", [1, 2])
def test_entries_cut_from_the_end_of_the_chain_are_detected(
    service: SimulatorService, db_url: str, count: int
) -> None:
    ids = _work(service)
    journal.seal(service.db)
    _superuser(db_url, "DELETE FROM sdk_simulation_journal WHERE id >= %s", ids[-count])
    result = journal.verify(service.db)
    assert not result.ok and result.first_break == ids[-1]
    assert "removed from the end" in result.reason
    # Entries sealed after the cut do not hide it: the chain goes on from the recorded end.
    with service.db.transaction() as conn:
        _append(conn, "later")
    result = journal.verify(service.db)
    assert not result.ok and "removed" in result.reason


def _migrate_upto(db: Database, version: int) -> None:
    with db.connect(autocommit=True) as conn:
        conn.execute(migrate._BOOKKEEPING)
        for m in migrate.available():
            if m.version <= version:
                with conn.transaction():
                    conn.execute(m.sql.encode())
                    conn.execute(
                        "INSERT INTO simcore_schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )


def test_version_1_entries_still_verify_and_the_chain_goes_on(
    empty_db_url: str, tmp_path: Path
) -> None:
    with Database(Settings(database_url=empty_db_url, data_dir=tmp_path)) as db:
        _migrate_upto(db, 5)
        with db.connect(autocommit=True) as conn:
            for actor in ("before-1", "before-2", "before-3"):
                conn.execute(
                    "SELECT sdk_journal_append(NULL, NULL, NULL, 'exported', %s, '{}')", (actor,)
                )
        migrate.migrate(db)
        with db.transaction() as conn:
            _append(conn, "after-1")
            _append(conn, "after-2")
        result = journal.verify(db)
        assert result.ok and result.checked == 5, result.describe()
        with db.transaction() as conn:
            entries = journal.entries(conn)
        assert [e.seq for e in entries] == [None, None, None, 1, 2]
        assert entries[3].prev_hash == entries[2].hash
        with psycopg.connect(empty_db_url, autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute(
                "UPDATE sdk_simulation_journal SET actor = 'x' WHERE id = %s", (entries[1].id,)
            )
        result = journal.verify(db)
        assert not result.ok and result.first_break == entries[1].id
