"""The rules of runs and journal entries, enforced by their row triggers (migration 0009).

Each rule was a CHECK constraint; a client must see no difference: the same rows refused, with
check_violation and the constraint's name, and NULL let through where CHECK let it through.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.store.seed_runbook import seed


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def _queued_run(conn: psycopg.Connection[Any]) -> Any:
    data = seed(conn)
    row = conn.execute(
        "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed) "
        "VALUES (%s, 'internal', 1) RETURNING id",
        (data.sim_node,),
    ).fetchone()
    assert row is not None
    return row[0]


@pytest.mark.parametrize(
    ("assignment", "constraint", "column"),
    [
        ("status = 'done'", "sdk_simulation_runs_status_check", "status"),
        ("tenant_type = 'partner'", "sdk_simulation_runs_tenant_type_check", "tenant_type"),
        ("idempotency_key = ''", "sdk_simulation_runs_idempotency_key_check", "idempotency_key"),
        ("attempts = -1", "sdk_simulation_runs_attempts_check", "attempts"),
        ("max_attempts = 0", "sdk_simulation_runs_max_attempts_check", "max_attempts"),
        ("log_lines = -1", "sdk_simulation_runs_log_lines_check", "log_lines"),
        ("log_bytes = -1", "sdk_simulation_runs_log_bytes_check", "log_bytes"),
        ("status = 'running', worker_id = NULL", "sdk_simulation_runs_check", ""),
        ("completed_at = now()", "sdk_simulation_runs_check1", ""),
    ],
)
def test_a_run_breaking_a_rule_is_refused_by_name(
    conn: psycopg.Connection[Any], assignment: str, constraint: str, column: str
) -> None:
    run = _queued_run(conn)
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"UPDATE sdk_simulation_runs SET {assignment} WHERE id = %s", (run,))
    assert info.value.diag.constraint_name == constraint
    assert info.value.diag.table_name == "sdk_simulation_runs"
    assert (info.value.diag.column_name or "") == column
    row = conn.execute(
        "SELECT status, attempts, completed_at FROM sdk_simulation_runs WHERE id = %s", (run,)
    ).fetchone()
    assert row == ("queued", 0, None)


def test_a_run_is_checked_at_insert_too(conn: psycopg.Connection[Any]) -> None:
    data = seed(conn)
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(
            "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed, status) "
            "VALUES (%s, 'internal', 1, 'finished')",
            (data.sim_node,),
        )
    assert info.value.diag.constraint_name == "sdk_simulation_runs_status_check"
    assert "'finished' is not a run status" in (info.value.diag.message_detail or "")


def test_a_null_passes_as_it_passed_a_check(conn: psycopg.Connection[Any]) -> None:
    run = _queued_run(conn)
    conn.execute(
        "UPDATE sdk_simulation_runs SET idempotency_key = NULL, lease_until = NULL WHERE id = %s",
        (run,),
    )


def test_the_success_rate_follows_the_metrics(conn: psycopg.Connection[Any]) -> None:
    data = seed(conn)
    row = conn.execute(
        "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed, metrics) "
        "VALUES (%s, 'internal', 1, %s) RETURNING id, metrics_success_rate",
        (data.sim_node, json.dumps({"success_rate": 0.75})),
    ).fetchone()
    assert row is not None and row[1] == 0.75
    rates = [
        conn.execute(
            f"UPDATE sdk_simulation_runs SET {assignment} WHERE id = %s "
            "RETURNING metrics_success_rate",
            (row[0],),
        ).fetchone()
        for assignment in (
            "metrics = '{\"success_rate\": 0.5}'",
            "seed = 2",  # metrics unchanged: the rate stays
            "metrics_success_rate = 0.99",  # derived: a direct write does not stick
            'metrics = \'{"success_rate": "high"}\'',
            "metrics = NULL",
        )
    ]
    assert rates == [(0.5,), (0.5,), (0.5,), (None,), (None,)]


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ("('promoted', 'system')", "sdk_simulation_journal_action_check"),
        ("('queued', '')", "sdk_simulation_journal_actor_check"),
        ("('queued', repeat('a', 201))", "sdk_simulation_journal_actor_check"),
    ],
)
def test_a_journal_entry_breaking_a_rule_is_refused_by_name(
    conn: psycopg.Connection[Any], values: str, constraint: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute(f"INSERT INTO sdk_simulation_journal (action, actor) VALUES {values}")
    assert info.value.diag.constraint_name == constraint
    assert conn.execute("SELECT count(*) FROM sdk_simulation_journal").fetchone() == (0,)


def test_a_seal_with_a_malformed_previous_hash_is_refused(
    conn: psycopg.Connection[Any],
) -> None:
    entry = conn.execute(
        "INSERT INTO sdk_simulation_journal (action, actor) VALUES ('queued', 'system') "
        "RETURNING id, content_hash"
    ).fetchone()
    assert entry is not None
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(
            "UPDATE sdk_simulation_journal SET seq = 1, prev_hash = 'short', "
            "hash = sdk_journal_chain_hash(1, 'short', content_hash) WHERE id = %s",
            (entry[0],),
        )
    assert conn.execute("SELECT sdk_journal_seal()").fetchone() == (1,)
