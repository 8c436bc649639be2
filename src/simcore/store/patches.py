"""``sdk_self_healing_registry``: the patches SDKs may run."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg

from simcore.errors import NotFound
from simcore.model import Patch

COLUMNS = (
    "id, slug, description, sdk_language, error_signature, patch_code, rollback_code, "
    "version, severity, source, active, sandbox_tested, created_at"
)


def to_patch(row: dict[str, Any]) -> Patch:
    return Patch.model_validate(row)


def get(conn: psycopg.Connection[Any], ref: str | UUID) -> Patch:
    """A patch by id or slug."""
    try:
        as_uuid = ref if isinstance(ref, UUID) else UUID(str(ref))
    except ValueError:
        as_uuid = None
    if as_uuid is not None:
        row = conn.execute(
            f"SELECT {COLUMNS} FROM sdk_self_healing_registry WHERE id = %s", (as_uuid,)
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {COLUMNS} FROM sdk_self_healing_registry WHERE slug = %s", (str(ref),)
        ).fetchone()
    if row is None:
        raise NotFound(f"patch {ref} not found in the registry")
    return to_patch(row)


def list_all(
    conn: psycopg.Connection[Any],
    *,
    language: str | None = None,
    error_signature: str | None = None,
    include_inactive: bool = False,
) -> list[Patch]:
    where = ["true"]
    params: list[Any] = []
    if language:
        where.append("sdk_language = %s")
        params.append(language)
    if error_signature:
        where.append("error_signature = %s")
        params.append(error_signature)
    if not include_inactive:
        where.append("active")
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM sdk_self_healing_registry WHERE {' AND '.join(where)} "
        "ORDER BY sdk_language, error_signature, slug NULLS LAST, created_at",
        params,
    ).fetchall()
    return [to_patch(r) for r in rows]


def insert(conn: psycopg.Connection[Any], patch: Patch, created_by: str) -> Patch:
    row = conn.execute(
        f"INSERT INTO sdk_self_healing_registry (id, slug, description, sdk_language, "
        f"error_signature, patch_code, rollback_code, version, severity, source, active, "
        f"sandbox_tested, created_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        f"%s, %s) RETURNING {COLUMNS}",
        (
            patch.id,
            patch.slug,
            patch.description,
            patch.sdk_language.value,
            patch.error_signature,
            patch.patch_code,
            patch.rollback_code,
            patch.version,
            patch.severity.value,
            patch.source.value,
            patch.active,
            patch.sandbox_tested,
            created_by,
        ),
    ).fetchone()
    assert row is not None
    return to_patch(row)


def sync_builtins(conn: psycopg.Connection[Any], builtins: Iterable[Patch]) -> int:
    """Insert or refresh the shipped patches (source builtin); returns how many changed."""
    changed = 0
    for p in builtins:
        cur = conn.execute(
            "INSERT INTO sdk_self_healing_registry (id, slug, description, sdk_language, "
            "error_signature, patch_code, rollback_code, version, severity, source, "
            "sandbox_tested) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'builtin', true) "
            "ON CONFLICT (id) DO UPDATE SET description = EXCLUDED.description, "
            "patch_code = EXCLUDED.patch_code, rollback_code = EXCLUDED.rollback_code, "
            "version = EXCLUDED.version, updated_at = now() "
            "WHERE sdk_self_healing_registry.version IS DISTINCT FROM EXCLUDED.version "
            "OR sdk_self_healing_registry.patch_code IS DISTINCT FROM EXCLUDED.patch_code",
            (
                p.id,
                p.slug,
                p.description,
                p.sdk_language.value,
                p.error_signature,
                p.patch_code,
                p.rollback_code,
                p.version,
                p.severity.value,
            ),
        )
        changed += cur.rowcount
    return changed
