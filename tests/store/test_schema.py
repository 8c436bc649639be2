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


def _journal_row(conn: psycopg.Connection[Any], *, sealed: bool = False) -> int:
    row = conn.execute(
        "INSERT INTO sdk_simulation_journal (action, actor) VALUES ('queued', 'system') "
        "RETURNING id"
    ).fetchone()
    assert row is not None
    if sealed:
        conn.execute("SELECT sdk_journal_seal()")
    return int(row[0])


@pytest.mark.parametrize("sealed", [False, True], ids=["unsealed", "sealed"])
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sdk_simulation_journal SET actor = 'ops:mallory' WHERE id = {id}",
        "UPDATE sdk_simulation_journal SET seq = 7, prev_hash = repeat('0', 64), "
        "hash = repeat('1', 64) WHERE id = {id}",
        "DELETE FROM sdk_simulation_journal WHERE id = {id}",
        "TRUNCATE sdk_simulation_journal",
    ],
)
def test_journal_refuses_update_delete_truncate(
    conn: psycopg.Connection[Any], statement: str, sealed: bool
) -> None:
    entry = _journal_row(conn, sealed=sealed)
    before = conn.execute(
        "SELECT actor, seq, hash FROM sdk_simulation_journal WHERE id = %s", (entry,)
    ).fetchone()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement.format(id=entry))
    after = conn.execute(
        "SELECT actor, seq, hash FROM sdk_simulation_journal WHERE id = %s", (entry,)
    ).fetchone()
    assert after == before and after is not None and after[0] == "system"
    assert (after[1] is not None) is sealed


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sdk_simulation_journal_seals SET last_hash = repeat('1', 64)",
        "DELETE FROM sdk_simulation_journal_seals",
        "TRUNCATE sdk_simulation_journal_seals",
    ],
)
def test_the_seal_log_is_append_only(conn: psycopg.Connection[Any], statement: str) -> None:
    _journal_row(conn, sealed=True)
    before = conn.execute("SELECT * FROM sdk_simulation_journal_seals").fetchall()
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)
    assert conn.execute("SELECT * FROM sdk_simulation_journal_seals").fetchall() == before
    assert len(before) == 1


def test_an_entry_is_written_unsealed_with_its_content_hash(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="written unsealed"):
        conn.execute(
            "INSERT INTO sdk_simulation_journal (action, actor, prev_hash, hash) "
            "VALUES ('queued', 'system', %s, %s)",
            (HASH, "a" * 64),
        )
    entry = _journal_row(conn)
    row = conn.execute(
        "SELECT seq, prev_hash, hash, content_hash FROM sdk_simulation_journal WHERE id = %s",
        (entry,),
    ).fetchone()
    assert row is not None and row[:3] == (None, None, None)
    assert len(row[3]) == 64


def test_sealing_is_the_one_update_allowed(conn: psycopg.Connection[Any]) -> None:
    first, second = _journal_row(conn), _journal_row(conn)
    # By hand, the seal must carry the hash that fits its position and content...
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only sdk_journal_seal"):
        conn.execute(
            "UPDATE sdk_simulation_journal SET seq = 1, prev_hash = %s, hash = %s WHERE id = %s",
            (HASH, "b" * 64, first),
        )
    # ...and the sealer gives it, once: a sealed entry is not sealed again.
    assert conn.execute("SELECT sdk_journal_seal()").fetchone() == (2,)
    assert conn.execute("SELECT sdk_journal_seal()").fetchone() == (0,)
    rows = conn.execute(
        "SELECT id, seq, prev_hash, hash, sdk_journal_chain_hash(seq, prev_hash, content_hash) "
        "FROM sdk_simulation_journal ORDER BY seq"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(first, 1), (second, 2)]
    assert rows[0][2] == HASH and rows[1][2] == rows[0][3]
    assert all(r[3] == r[4] for r in rows)
    assert conn.execute(
        "SELECT first_seq, last_seq, last_entry_id, last_hash FROM sdk_simulation_journal_seals"
    ).fetchall() == [(1, 2, second, rows[1][3])]
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(
            "UPDATE sdk_simulation_journal SET seq = NULL, prev_hash = NULL, hash = NULL "
            "WHERE id = %s",
            (second,),
        )


def test_a_second_sealer_skips_instead_of_waiting(db_url: str) -> None:
    with (
        psycopg.connect(db_url) as holder,
        psycopg.connect(db_url, autocommit=True) as other,
    ):
        other.execute("INSERT INTO sdk_simulation_journal (action, actor) VALUES ('queued', 'x')")
        assert holder.execute("SELECT sdk_journal_seal()").fetchone() == (1,)
        other.execute("INSERT INTO sdk_simulation_journal (action, actor) VALUES ('queued', 'y')")
        other.execute("SET statement_timeout = '2s'")
        assert other.execute("SELECT sdk_journal_seal()").fetchone() == (None,)
        holder.commit()
        assert other.execute("SELECT sdk_journal_seal()").fetchone() == (1,)
        seqs = other.execute("SELECT actor, seq FROM sdk_simulation_journal ORDER BY id").fetchall()
        assert seqs == [("x", 1), ("y", 2)]


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
