"""A small, known data set for checking the runbook's queries row by row."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass
class RunbookData:
    patch: uuid.UUID
    sim_node: uuid.UUID
    sim_python: uuid.UUID
    runs: dict[str, uuid.UUID]


def _metrics(rate: float) -> str:
    return json.dumps(
        {
            "success_rate": rate,
            "avg_latency_ms": 187,
            "total_requests": 100,
            "failed_requests": round(100 * (1 - rate)),
            "regressions": 0,
            "baseline": {"success_rate": 0.7},
        }
    )


def seed(conn: psycopg.Connection[Any]) -> RunbookData:
    patch = conn.execute(
        "INSERT INTO sdk_self_healing_registry (slug, description, sdk_language, "
        "error_signature, patch_code, rollback_code, source) VALUES "
        "('node-hmac-resync', 'Resync the clock offset and retry', 'node', "
        "'signature_mismatch', 'ctx.client.clockOffsetMs = ctx.error.body.server_time_ms "
        "- ctx.now(); return ctx.retry();', 'ctx.client.clockOffsetMs = 0;', 'builtin') "
        "RETURNING id"
    ).fetchone()
    assert patch is not None
    patch_id = _id(patch)
    sims = {}
    for lang, name in (("node", "HMAC Signature Test"), ("python", "Timeout Network")):
        row = conn.execute(
            "INSERT INTO sdk_simulations (tenant_type, name, description, sdk_language, "
            "scenario, patch_reference) VALUES ('internal', %s, 'runbook', %s, %s, %s) "
            "RETURNING id",
            (
                name,
                lang,
                json.dumps(
                    {
                        "error": "signature_mismatch",
                        "error_frequency": 0.3,
                        "latency_ms": 500,
                        "total_requests": 100,
                        "success_threshold": 0.85,
                    }
                ),
                patch_id if lang == "node" else None,
            ),
        ).fetchone()
        sims[lang] = _id(row)
    # name: (simulation, status, success rate or None, age)
    plan = {
        "r1_recent_success": ("node", "success", 0.92, "1 hour"),
        "r2_recent_failed": ("node", "failed", 0.40, "2 hours"),
        "r3_week_success": ("python", "success", 1.0, "3 days"),
        "r4_queued_new": ("python", "queued", None, "5 minutes"),
        "r5_queued_old": ("node", "queued", None, "30 hours"),
        "r6_running_old": ("python", "running", None, "26 hours"),
        "r7_old_success": ("node", "success", 0.99, "10 days"),
    }
    runs = {}
    for key, (lang, status, rate, age) in plan.items():
        terminal = status not in ("queued", "running")
        row = conn.execute(
            "INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, seed, status, "
            "patch_id, metrics, artifact_s3_key, run_at, started_at, completed_at, worker_id, "
            "lease_until) VALUES (%s, 'internal', 12345, %s, %s, %s, %s, "
            "now() - %s::interval, CASE WHEN %s <> 'queued' THEN now() - %s::interval END, "
            "CASE WHEN %s THEN now() - %s::interval + interval '90 seconds' END, "
            "CASE WHEN %s = 'running' THEN 'w-1' END, "
            "CASE WHEN %s = 'running' THEN now() - %s::interval + interval '1 minute' END) "
            "RETURNING id",
            (
                sims[lang],
                status,
                patch_id if lang == "node" else None,
                _metrics(rate) if rate is not None else None,
                f"{key}.log" if terminal else None,
                age,
                status,
                age,
                terminal,
                age,
                status,
                status,
                age,
            ),
        ).fetchone()
        runs[key] = _id(row)
    conn.execute(
        "INSERT INTO sdk_patch_approvals (simulation_run_id, patch_id, tenant_type) "
        "VALUES (%s, %s, 'internal')",
        (runs["r1_recent_success"], patch_id),
    )
    # The runbook stages a patch after its approval (step 4 before step 5).
    conn.execute(
        "UPDATE sdk_patch_approvals SET status = 'approved' WHERE simulation_run_id = %s",
        (runs["r1_recent_success"],),
    )
    errors = [
        ("signature_mismatch:401", "node", 0.3, False),
        ("signature_mismatch:401", "node", 0.2, False),
        ("timeout:client", "python", 0.1, False),
        ("signature_mismatch:401", "node", 0.9, True),
    ]
    for i, (sig, lang, freq, exported) in enumerate(errors):
        conn.execute(
            "INSERT INTO sdk_anonymized_errors (run_id, error_signature, sdk_language, "
            "frequency, context_hash, exported_to_sira, exported_at) VALUES "
            "(%s, %s, %s, %s, encode(sha256(%s::bytea), 'hex'), %s, "
            "CASE WHEN %s THEN now() END)",
            (runs["r1_recent_success"], sig, lang, freq, f"ctx-{i}", exported, exported),
        )
    return RunbookData(patch_id, sims["node"], sims["python"], runs)


def _id(row: Any) -> uuid.UUID:
    assert row is not None
    value = row["id"] if isinstance(row, dict) else row[0]
    assert isinstance(value, uuid.UUID)
    return value
