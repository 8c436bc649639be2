"""Every SQL statement of the runbook, verbatim, against a migrated database holding data."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.runbook import psql_commands, sql_block_statements
from tests.store.seed_runbook import RunbookData, seed


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url, autocommit=True) as connection:
        connection.row_factory = psycopg.rows.dict_row
        yield connection


@pytest.fixture
def data(conn: psycopg.Connection[Any]) -> RunbookData:
    return seed(conn)


def _fill(statement: str, data: RunbookData, run_key: str = "r1_recent_success") -> str:
    return (
        statement.replace("PATCH_ID", str(data.patch))
        .replace("SIM_ID", str(data.sim_node))
        .replace("RUN_ID", str(data.runs[run_key]))
    )


def _only(statements: list[str], needle: str) -> str:
    found = [s for s in statements if needle in s]
    assert len(found) == 1, f"expected one runbook statement with {needle!r}, got {found}"
    return found[0]


def test_the_runbook_statements_are_all_covered() -> None:
    # 3 in the SQL section, 7 psql -c commands (troubleshooting, staging, security).
    assert len(sql_block_statements()) == 3
    assert len(psql_commands()) == 7


def test_recent_runs_from_the_summary_view(
    conn: psycopg.Connection[Any], data: RunbookData
) -> None:
    rows = conn.execute(_only(sql_block_statements(), "sdk_simulation_runs_summary")).fetchall()
    assert [r["id"] for r in rows] == [
        data.runs["r4_queued_new"],
        data.runs["r1_recent_success"],
        data.runs["r2_recent_failed"],
    ]
    first_done = rows[1]
    assert first_done["status"] == "success"
    assert first_done["simulation_name"] == "HMAC Signature Test"
    assert first_done["sdk_language"] == "node"
    assert first_done["success_rate"] == Decimal("0.92")
    assert first_done["approval_status"] == "approved"
    assert first_done["duration_ms"] == 90_000


def test_success_rate_per_sdk_language(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    rows = conn.execute(_only(sql_block_statements(), "avg_success_rate")).fetchall()
    by_lang = {r["sdk_language"]: r for r in rows}
    assert set(by_lang) == {"node", "python"}
    # node: r1 success .92, r2 failed .40, r5 queued (r7 is older than 7 days)
    assert by_lang["node"]["total_runs"] == 3
    assert by_lang["node"]["successful"] == 1
    assert by_lang["node"]["avg_success_rate"] == Decimal("0.66")
    # python: r3 success 1.0, r4 queued, r6 running
    assert by_lang["python"]["total_runs"] == 3
    assert by_lang["python"]["successful"] == 1
    assert by_lang["python"]["avg_success_rate"] == Decimal("1.0")


def test_anonymized_errors_waiting_for_sira(
    conn: psycopg.Connection[Any], data: RunbookData
) -> None:
    rows = conn.execute(_only(sql_block_statements(), "exported_to_sira = false")).fetchall()
    assert [(r["error_signature"], r["sdk_language"], r["occurrences"]) for r in rows] == [
        ("signature_mismatch:401", "node", 2),
        ("timeout:client", "python", 1),
    ]
    assert rows[0]["avg_frequency"] == pytest.approx(0.25)


def test_queued_runs_oldest_first(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    rows = conn.execute(_only(psql_commands(), "WHERE status = 'queued'")).fetchall()
    assert [r["id"] for r in rows] == [data.runs["r5_queued_old"], data.runs["r4_queued_new"]]
    assert set(rows[0]) == {"id", "simulation_id", "status", "run_at"}


def test_purge_of_runs_older_than_24_hours(
    conn: psycopg.Connection[Any], data: RunbookData
) -> None:
    cur = conn.execute(_only(psql_commands(), "SET status = 'timeout'"))
    assert cur.rowcount == 2
    statuses = {
        r["id"]: r["status"]
        for r in conn.execute("SELECT id, status FROM sdk_simulation_runs").fetchall()
    }
    assert statuses[data.runs["r5_queued_old"]] == "timeout"
    assert statuses[data.runs["r6_running_old"]] == "timeout"
    assert statuses[data.runs["r4_queued_new"]] == "queued"


def test_patch_lookup(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    rows = conn.execute(
        _fill(_only(psql_commands(), "FROM sdk_self_healing_registry"), data)
    ).fetchall()
    assert len(rows) == 1
    assert rows[0]["description"] == "Resync the clock offset and retry"
    assert "ctx.retry()" in rows[0]["patch_code"]


def test_simulation_lookup(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    rows = conn.execute(_fill(_only(psql_commands(), "patch_reference"), data)).fetchall()
    assert rows == [
        {"id": data.sim_node, "name": "HMAC Signature Test", "patch_reference": data.patch}
    ]


def test_artifact_key_lookup(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    rows = conn.execute(_fill(_only(psql_commands(), "SELECT artifact_s3_key"), data)).fetchall()
    assert rows == [{"artifact_s3_key": "r1_recent_success.log"}]


def test_mark_approval_staged(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    cur = conn.execute(_fill(_only(psql_commands(), "SET status = 'staged'"), data))
    assert cur.rowcount == 1
    row = conn.execute(
        "SELECT status FROM sdk_patch_approvals WHERE simulation_run_id = %s",
        (data.runs["r1_recent_success"],),
    ).fetchone()
    assert row == {"status": "staged"}


def test_context_hash_is_sha256(conn: psycopg.Connection[Any], data: RunbookData) -> None:
    rows = conn.execute(_only(psql_commands(), "SELECT context_hash, error_signature")).fetchall()
    assert len(rows) == 4
    assert all(re.fullmatch(r"[0-9a-f]{64}", r["context_hash"]) for r in rows)
