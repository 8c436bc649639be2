"""``sdk_simulation_runs``: the columns every reader of a run selects.

A module of its own, as for simulations and patches: the service builds its run query at
import from these names, without importing the queue (its statements and pool) with them.
"""

from __future__ import annotations

COLUMNS = (
    "id, simulation_id, tenant_type, tenant_id, idempotency_key, seed, status, patch_id, "
    "metrics, reasons, artifact_s3_key, run_at, started_at, completed_at, worker_id, "
    "lease_until, attempts, max_attempts, cancel_requested, error_message, sandbox_backend, "
    "simulator_version, launched_by, log_lines, log_bytes, log_truncated, artifact_error"
)
FIELDS = tuple(c.strip() for c in COLUMNS.split(","))
