"""Numbered plain-SQL migrations, applied in order, tracked in ``simcore_schema_migrations``.

Several processes may start together (the dashboard, a worker, the API): a session advisory
lock serialises them, and each migration runs in its own transaction with its bookkeeping row,
so a failure leaves the schema at the last complete migration.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

import psycopg

from simcore.errors import SimError
from simcore.store.database import Database

# Arbitrary but fixed: "simtui" in ASCII, as a bigint advisory lock key.
MIGRATION_LOCK_KEY = 0x73696D747569
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True)
class MigrationState:
    migration: Migration
    applied_at: datetime | None

    @property
    def applied(self) -> bool:
        return self.applied_at is not None


class MigrationError(SimError):
    pass


def available() -> list[Migration]:
    found = []
    for entry in resources.files("simcore.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migrations share a number")
    return found


_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS simcore_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def _applied(conn: psycopg.Connection[Any]) -> dict[int, dict[str, Any]]:
    """Applied migrations by version (the connection uses dict rows)."""
    row = conn.execute(
        "SELECT to_regclass('simcore_schema_migrations') IS NOT NULL AS t"
    ).fetchone()
    if not row or not row["t"]:
        return {}
    rows = conn.execute(
        "SELECT version, checksum, applied_at FROM simcore_schema_migrations"
    ).fetchall()
    return {int(r["version"]): r for r in rows}


def status(db: Database) -> list[MigrationState]:
    with db.connect() as conn:
        applied = _applied(conn)
    return [
        MigrationState(m, applied[m.version]["applied_at"] if m.version in applied else None)
        for m in available()
    ]


def migrate(db: Database) -> list[Migration]:
    """Apply pending migrations; return those this call applied."""
    done: list[Migration] = []
    with db.connect(autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(_BOOKKEEPING)
            applied = _applied(conn)
            known = {m.version for m in available()}
            newer = sorted(v for v in applied if v not in known)
            if newer:
                raise MigrationError(
                    f"the database has migration {newer[-1]}, which this "
                    "version of simcore does not know: upgrade simcore"
                )
            for migration in available():
                if migration.version in applied:
                    if applied[migration.version]["checksum"] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied; write a new migration instead"
                        )
                    continue
                try:
                    with conn.transaction():
                        conn.execute(migration.sql.encode())
                        conn.execute(
                            "INSERT INTO simcore_schema_migrations (version, name, checksum) "
                            "VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} failed: "
                        f"{str(exc).strip().splitlines()[0]}"
                    ) from None
                done.append(migration)
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return done


def is_current(db: Database) -> bool:
    return all(s.applied for s in status(db))
