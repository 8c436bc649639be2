"""Constraints the database itself enforces, whatever client writes to it."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from tests.store.seed_runbook import seed

HASH = "0" * 64


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True) as connection:
        yield connection


def _journal_row(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute(
        "INSERT INTO sdk_simulation_journal (action, actor, prev_hash, hash) "
        "VALUES ('queued', 'system', %s, %s) RETURNING id",
        (HASH, "a" * 64),
    ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sdk_simulation_journal SET actor = 'ops:mallory' WHERE id = {id}",
        "DELETE FROM sdk_simulation_journal WHERE id = {id}",
        "TRUNCATE sdk_simulation_journal",
    ],
)
def test_journal_refuses_update_delete_truncate(
    conn: psycopg.Connection[Any], statement: str
) -> None:
    entry = _journal_row(conn)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement.format(id=entry))
    row = conn.execute(
        "SELECT actor FROM sdk_simulation_journal WHERE id = %s", (entry,)
    ).fetchone()
    assert row == ("system",)


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("sdk_simulations", "tenant_type", "partner"),
        ("sdk_simulations", "sdk_language", "cobol"),
        ("sdk_simulation_runs", "status", "done"),
        ("sdk_patch_approvals", "status", "maybe"),
    ],
)
def test_enumerations_are_checked(
    conn: psycopg.Connection[Any], table: str, column: str, value: str
) -> None:
    seed(conn)
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(f"UPDATE {table} SET {column} = %s", (value,))


def test_idempotency_key_is_unique_per_tenant(conn: psycopg.Connection[Any]) -> None:
    data = seed(conn)
    insert = (
        "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, tenant_id, "
        "idempotency_key, seed) VALUES (%s, 'internal', %s, 'ops-test-001', 1)"
    )
    conn.execute(insert, (data.sim_node, "default"))
    conn.execute(insert, (data.sim_node, "other-tenant"))
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(insert, (data.sim_node, "default"))


def test_foreign_keys_and_hash_shape(conn: psycopg.Connection[Any]) -> None:
    import uuid

    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed) "
            "VALUES (%s, 'internal', 1)",
            (uuid.uuid4(),),
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO sdk_anonymized_errors (error_signature, sdk_language, "
            "frequency, context_hash) VALUES ('x', 'node', 0.1, 'alice@example.com')"
        )
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "INSERT INTO sdk_simulations (tenant_type, name, sdk_language, scenario) "
            "VALUES ('internal', 'x', 'node', %s)",
            (json.dumps([1, 2]),),
        )


def test_claim_uses_the_partial_queued_index(conn: psycopg.Connection[Any]) -> None:
    seed(conn)
    conn.execute("SET enable_seqscan = off")
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "EXPLAIN SELECT id FROM sdk_simulation_runs WHERE status = 'queued' "
            "ORDER BY run_at, id LIMIT 1"
        ).fetchall()
    )
    assert "sdk_runs_queued_idx" in plan
