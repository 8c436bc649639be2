"""``sdk_simulations``: scenarios, languages and patches, in a tenant's scope."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.types.json import Jsonb

from simcore.model import Scenario, Simulation

COLUMNS = (
    "id, tenant_type, tenant_id, name, description, sdk_language, scenario, patch_reference, "
    "created_by, created_at"
)
FIELDS = tuple(c.strip() for c in COLUMNS.split(","))


def to_simulation(row: dict[str, Any]) -> Simulation:
    return Simulation.model_validate({**row, "scenario": Scenario.model_validate(row["scenario"])})


def insert(
    conn: psycopg.Connection[Any],
    *,
    tenant_type: str,
    tenant_id: str,
    name: str,
    description: str,
    sdk_language: str,
    scenario: Scenario,
    patch_reference: UUID | None,
    created_by: str,
) -> Simulation:
    row = conn.execute(
        f"INSERT INTO sdk_simulations (tenant_type, tenant_id, name, description, "
        f"sdk_language, scenario, patch_reference, created_by) "
        f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
        (
            tenant_type,
            tenant_id,
            name,
            description,
            sdk_language,
            Jsonb(scenario.to_json()),
            patch_reference,
            created_by,
        ),
    ).fetchone()
    assert row is not None
    return to_simulation(row)


def get(conn: psycopg.Connection[Any], simulation_id: UUID) -> dict[str, Any] | None:
    row: dict[str, Any] | None = conn.execute(
        f"SELECT {COLUMNS} FROM sdk_simulations WHERE id = %s", (simulation_id,)
    ).fetchone()
    return row


def list_scoped(
    conn: psycopg.Connection[Any], tenant_type: str | None, tenant_id: str | None, limit: int
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = conn.execute(
        f"SELECT {COLUMNS} FROM sdk_simulations "
        "WHERE (%(tt)s::text IS NULL OR tenant_type = %(tt)s) "
        "AND (%(ti)s::text IS NULL OR tenant_id = %(ti)s) "
        "ORDER BY created_at DESC LIMIT %(limit)s",
        {"tt": tenant_type, "ti": tenant_id, "limit": limit},
    ).fetchall()
    return rows
