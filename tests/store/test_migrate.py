"""Migrations: applied once, tracked, safe when several processes start together."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from simcore.config import Settings
from simcore.store import Database, migrate
from tests.conftest import simcore_bin

RUNBOOK_TABLES = {
    "sdk_self_healing_registry",
    "sdk_simulations",
    "sdk_simulation_runs",
    "sdk_simulation_journal",
    "sdk_patch_approvals",
    "sdk_anonymized_errors",
}


def _schema(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        }
        views = {
            r[0]
            for r in conn.execute(
                "SELECT viewname FROM pg_views WHERE schemaname = 'public'"
            ).fetchall()
        }
        rows = conn.execute(
            "SELECT version, name FROM simcore_schema_migrations ORDER BY version"
        ).fetchall()
    return {"tables": tables, "views": views, "migrations": rows}


def test_four_processes_migrating_at_once_leave_one_schema(
    empty_db_url: str, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "SIMTUI_DATABASE_URL": empty_db_url}
    procs = [
        subprocess.Popen(
            [simcore_bin(), "db", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outputs
    applied_lines = [o for o, _ in outputs if "applied 0001" in o]
    assert len(applied_lines) == 1, "exactly one process applies each migration"
    schema = _schema(empty_db_url)
    assert schema["tables"] >= RUNBOOK_TABLES
    assert "sdk_simulation_runs_summary" in schema["views"]
    assert [v for v, _ in schema["migrations"]] == [m.version for m in migrate.available()]


def test_status_lists_pending_then_applied(empty_db_url: str, tmp_path: Path) -> None:
    with Database(Settings(database_url=empty_db_url, data_dir=tmp_path)) as db:
        assert [s.applied for s in migrate.status(db)] == [False] * len(migrate.available())
        assert not migrate.is_current(db)
        assert [m.version for m in migrate.migrate(db)] == [m.version for m in migrate.available()]
        assert migrate.migrate(db) == []
        assert migrate.is_current(db)


def test_cli_status_and_url(db_url: str, cli_env: dict[str, str]) -> None:
    out = subprocess.run(
        [simcore_bin(), "db", "status"], env=cli_env, capture_output=True, text=True, check=True
    ).stdout
    assert "0001_runbook_schema" in out and "0 pending" in out
    url = subprocess.run(
        [simcore_bin(), "db", "url"], env=cli_env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert url == db_url


def test_an_edited_migration_is_refused(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE simcore_schema_migrations SET checksum = 'x' WHERE version = 1")
    with (
        Database(Settings(database_url=db_url, data_dir=tmp_path)) as db,
        pytest.raises(migrate.MigrationError, match="changed after it was applied"),
    ):
        migrate.migrate(db)


def test_a_newer_database_is_refused(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO simcore_schema_migrations (version, name, checksum) "
            "VALUES (9999, 'future', 'x')"
        )
    with (
        Database(Settings(database_url=db_url, data_dir=tmp_path)) as db,
        pytest.raises(migrate.MigrationError, match="upgrade simcore"),
    ):
        migrate.migrate(db)
