"""Real runs carry personal data in their workload; none of it reaches SIRA."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from simcore import sira
from simcore.config import Settings
from simcore.executor import make_worker
from simcore.gateway.workload import Workload
from simcore.model import ErrorKind, Scenario
from simcore.runner import run_simulation
from simcore.sandbox.process import ProcessBackend
from simcore.service import SimulatorService
from tests.queueing.helpers import OPS

PII_SCENARIOS = [
    Scenario(
        error=ErrorKind.INVALID_CURRENCY,
        error_frequency=0.6,
        latency_ms=10,
        total_requests=24,
        success_threshold=0.9,
    ),
    Scenario(
        error=ErrorKind.SIGNATURE_MISMATCH,
        error_frequency=0.6,
        latency_ms=10,
        total_requests=24,
        success_threshold=0.9,
    ),
]


def planted(seed: int, scenario: Scenario) -> set[str]:
    """Every personal datum the workload of this run gave its customers."""
    workload = Workload(seed, scenario)
    values: set[str] = set()
    for n in range(workload.pool_size):
        c = workload.customer(n)
        values |= {c.first_name, c.last_name, c.name, c.email, c.phone}
        for key in ("number", "iban", "phone", "holder"):
            value = c.payment_method.get(key)
            if isinstance(value, str):
                values |= {value, value.replace(" ", "")}
    return {v for v in values if len(v) >= 4}


def _leaks(text: str, secrets: set[str]) -> list[str]:
    return sorted(s for s in secrets if s in text)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(min_value=0, max_value=2**40), which=st.sampled_from([0, 1]))
def test_no_planted_datum_reaches_rows_hash_inputs_or_batches(seed: int, which: int) -> None:
    scenario = PII_SCENARIOS[which]
    report = run_simulation(scenario, "python", seed, None, ProcessBackend())
    secrets = planted(seed, scenario)
    raw = json.dumps(list(report.error_events))
    assert report.error_events and _leaks(raw, secrets), "the raw errors do carry PII"
    rows = sira.anonymize_errors(
        report.error_events, total_requests=scenario.total_requests, sdk_language="python"
    )
    hash_inputs = [sira.hash_input(e) for e in report.error_events]
    batch = sira.build_export_batch(rows)
    assert _leaks(json.dumps([r.to_row() for r in rows]), secrets) == []
    assert _leaks("\n".join(hash_inputs), secrets) == []
    assert _leaks(json.dumps(batch), secrets) == []
    assert _leaks(report.to_json(), secrets) == []


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[SimulatorService]:
    with SimulatorService(
        settings.model_copy(update={"artifacts": str(tmp_path / "art"), "sandbox": "process"})
    ) as svc:
        yield svc


def test_runs_record_signatures_and_export_flags_them(
    service: SimulatorService, db_url: str, tmp_path: Path
) -> None:
    scenario = PII_SCENARIOS[0]
    sim = service.create_simulation(
        OPS, {"name": "currency", "sdk_language": "node", "scenario": scenario}
    )
    run_id = service.launch_run(OPS, sim.id, 99).run.id
    make_worker(service.settings, service.db, exit_when_idle=True, on_event=lambda m: None).run()
    with psycopg.connect(db_url) as conn:
        conn.row_factory = psycopg.rows.dict_row
        rows = conn.execute(
            "SELECT * FROM sdk_anonymized_errors WHERE run_id = %s", (run_id,)
        ).fetchall()
    assert rows, "the run met errors: they are recorded"
    assert {r["sdk_language"] for r in rows} == {"node"}
    assert any(r["error_signature"].startswith("invalid_currency") for r in rows)
    assert all(0 < r["frequency"] <= 1 and len(r["context_hash"]) == 64 for r in rows)
    secrets = planted(99, scenario)
    assert _leaks(json.dumps(rows, default=str), secrets) == []

    sira_ops = OPS  # ops may export too
    result = service.export_sira(sira_ops)
    assert result.count == len(rows) and result.location
    lines = Path(result.location).read_text().splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "simtui.sira.anonymized_errors" and header["version"] == 1
    assert header["count"] == len(rows) == len(lines) - 1
    assert {json.loads(line)["context_hash"] for line in lines[1:]} == {
        r["context_hash"] for r in rows
    }
    assert service.export_sira(sira_ops).count == 0, "nothing is sent twice"
    with psycopg.connect(db_url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM sdk_anonymized_errors WHERE exported_to_sira = false"
        ).fetchone()
        entry = conn.execute(
            "SELECT action, details FROM sdk_simulation_journal ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert left == (0,)
    assert entry is not None and entry[0] == "exported" and entry[1]["count"] == len(rows)


def test_auditor_cannot_export(service: SimulatorService) -> Any:
    from simcore.auth import Principal
    from simcore.errors import Forbidden
    from simcore.model import Role

    with pytest.raises(Forbidden, match="may not export to SIRA"):
        service.export_sira(Principal("carol", Role.AUDITOR))
