"""The runbook's metrics, read from the database, and the alert rules that use them."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from simcore.metrics import MetricsSnapshot, SimulatorCollector, build_registry, exposition
from simcore.model import RunStatus
from simcore.service import SimulatorService
from simcore.templates import get_template
from tests.api.conftest import LAUNCHER, LiveServer, Tokens, client_for, finish_run

RULES_DIR = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("SIMTUI_REQUIRE_TOOLS") == "1":
            pytest.fail("promtool is required (Debian: apt-get install prometheus)")
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    return found


def test_the_alert_rules_are_valid_prometheus() -> None:
    done = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rules found" in done.stdout


def test_each_alert_fires_and_stays_quiet_as_its_unit_tests_say() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"],
        cwd=RULES_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tests = (RULES_DIR / "alerts_test.yml").read_text(encoding="utf-8")
    for alert in ("SimulatorHighFailureRate", "SimulatorQueueStuck"):
        cases = re.findall(rf"alertname: {alert}\n\s+exp_alerts:(.*)", tests)
        assert "" in cases and " []" in cases, f"{alert} needs firing and quiet cases"


def _sample_snapshot() -> MetricsSnapshot:
    return MetricsSnapshot(
        runs_by_status={"queued": 3, "running": 1, "success": 245, "failed": 12},
        avg_latency_ms=187.0,
        oldest_queued_age_seconds=42.0,
        pending_approvals=2,
        workers_alive=1,
        duration_buckets=((1.0, 0), (60.0, 200), (120.0, 250)),
        duration_count=257,
        duration_sum_seconds=9000.0,
    )


def test_the_rules_only_read_metrics_that_are_exposed() -> None:
    registry = build_registry(_sample_snapshot)
    exposed = {
        f.name if f.type != "counter" else f.name + "_total"
        for f in text_string_to_metric_families(exposition(registry).decode())
    }
    rules = (RULES_DIR / "alerts.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\b(molam_simulator_[a-z_]+)", rules))
    assert used and used <= exposed, used - exposed


def test_the_runbook_example_reads_as_in_the_runbook() -> None:
    text = exposition(build_registry(_sample_snapshot)).decode()
    # The runbook's "Exemple output".
    assert 'molam_simulator_runs_total{status="success"} 245.0' in text
    assert 'molam_simulator_runs_total{status="failed"} 12.0' in text
    assert "molam_simulator_success_rate 0.953" in text
    assert "molam_simulator_avg_latency_ms 187.0" in text
    assert "molam_simulator_queue_depth 3.0" in text


def test_a_database_outage_is_reported_not_raised() -> None:
    def broken() -> MetricsSnapshot:
        from simcore.errors import DatabaseUnavailable

        raise DatabaseUnavailable("down")

    families = list(SimulatorCollector(broken).collect())
    assert [(f.name, f.samples[0].value) for f in families] == [("molam_simulator_database_up", 0)]


def _values(text: str) -> dict[str, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_the_metrics_count_what_the_database_holds(
    live: LiveServer, tokens: Tokens, service: SimulatorService
) -> None:
    empty = _values(httpx.get(f"{live.url}/metrics", timeout=10).text)
    assert empty["molam_simulator_database_up"] == 1
    assert math.isnan(empty["molam_simulator_success_rate"])
    assert empty["molam_simulator_oldest_queued_age_seconds"] == 0

    patch = next(
        p for p in service.list_patches(LAUNCHER, language="python") if p.slug and p.active
    )
    sim = service.create_simulation(
        LAUNCHER,
        {
            "name": "m",
            "sdk_language": "python",
            "scenario": get_template("signature_mismatch").scenario,
            "patch_reference": patch.id,
        },
    )

    def launch(seed: int) -> UUID:
        return service.launch_run(LAUNCHER, sim.id, seed).run.id

    outcomes = [RunStatus.SUCCESS] * 3 + [RunStatus.FAILED, RunStatus.ERROR, RunStatus.CANCELLED]
    ran = []
    for seed, status in enumerate(outcomes):
        run_id = launch(seed)
        finish_run(
            service, run_id, status, {"success_rate": 0.9, "avg_latency_ms": 100 + 100 * seed}
        )
        ran.append(run_id)
    for seed in range(10, 14):
        launch(seed)
    with client_for(live, tokens.ops2) as bob:
        assert bob.post(f"/api/simulator/runs/{ran[0]}/approve-patch", json={}).is_success

    api = httpx.get(f"{live.url}/api/simulator/metrics", timeout=10).text
    values = _values(api)
    root = _values(httpx.get(f"{live.url}/metrics", timeout=10).text)
    moving = ("process_", "molam_simulator_oldest_queued_age_seconds")
    assert {k: v for k, v in values.items() if not k.startswith(moving)} == {
        k: v for k, v in root.items() if not k.startswith(moving)
    }
    assert values["molam_simulator_runs_total{status=success}"] == 3
    assert values["molam_simulator_runs_total{status=failed}"] == 1
    assert values["molam_simulator_runs_total{status=cancelled}"] == 1
    assert values["molam_simulator_runs_total{status=queued}"] == 4
    assert values["molam_simulator_queue_depth"] == 4
    assert values["molam_simulator_running"] == 0
    # 3 successes of 5 finished runs; the cancelled one is not an outcome.
    assert values["molam_simulator_success_rate"] == pytest.approx(0.6)
    assert values["molam_simulator_avg_latency_ms"] == pytest.approx(
        sum(100 + 100 * s for s in range(5)) / 5
    )
    assert values["molam_simulator_pending_approvals"] == 2
    assert values["molam_simulator_oldest_queued_age_seconds"] >= 0
    assert values["molam_simulator_run_duration_seconds_count"] == 6
    assert values["molam_simulator_run_duration_seconds_bucket{le=+Inf}"] == 6
    assert values["molam_simulator_run_duration_seconds_bucket{le=1.0}"] == 6
    rate = f"approval_status=approved,patch={patch.slug},sdk_language=python"
    assert values[f"molam_simulator_patch_success_rate{{{rate}}}"] == pytest.approx(0.9)
    assert "# TYPE molam_simulator_run_duration_seconds histogram" in api
