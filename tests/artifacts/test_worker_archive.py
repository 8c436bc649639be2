"""A worker archives each run's log and report; a storage outage never loses a run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simcore.config import Settings
from simcore.executor import make_worker
from simcore.patches import default_patch
from simcore.service import SimulatorService
from simcore.templates import get_template
from tests.artifacts.conftest import MotoServer, create_bucket
from tests.conftest import simcore_bin
from tests.queueing.helpers import OPS


def _service(settings: Settings, artifacts: str) -> SimulatorService:
    return SimulatorService(
        settings.model_copy(update={"artifacts": artifacts, "sandbox": "process"})
    ).start()


@pytest.fixture
def local_service(settings: Settings, tmp_path: Path) -> Iterator[SimulatorService]:
    service = _service(settings, str(tmp_path / "artifacts"))
    yield service
    service.close()


def _run_once(service: SimulatorService, seed: int = 12345) -> Any:
    scenario = get_template("signature_mismatch").scenario
    patch = default_patch("signature_mismatch", "python")
    assert patch is not None
    sim = service.create_simulation(
        OPS,
        {
            "name": "HMAC",
            "sdk_language": "python",
            "scenario": scenario,
            "patch_reference": patch.id,
        },
    )
    run_id = service.launch_run(OPS, sim.id, seed).run.id
    make_worker(service.settings, service.db, exit_when_idle=True, on_event=lambda m: None).run()
    return service.get_run(OPS, run_id)


def test_local_archive_and_cli_download(
    local_service: SimulatorService, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    detail = _run_once(local_service)
    run = detail.run
    assert run.status.value == "success"
    assert run.artifact_s3_key and run.artifact_s3_key.endswith(f"{run.id}.log")
    log = local_service.get_artifact(OPS, run.id).decode()
    assert log.count("patch_applied") == run.metrics["patch_invocations"]  # type: ignore[index]
    report = json.loads(local_service.get_artifact(OPS, run.id, "report"))
    assert report["status"] == "success" and report["seed"] == 12345
    assert detail.journal[-1].details["artifact"] == run.artifact_s3_key
    # The runbook: download the log, then grep "patch_applied" in it.
    env = {**cli_env, "SIMTUI_ARTIFACTS": str(tmp_path / "artifacts")}
    out = tmp_path / f"{run.id}.log"
    done = subprocess.run(
        [simcore_bin(), "runs", "artifact", str(run.id), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    grep = subprocess.run(["grep", "patch_applied", str(out)], capture_output=True, text=True)
    assert (
        grep.returncode == 0 and len(grep.stdout.splitlines()) == run.metrics["patch_invocations"]
    )  # type: ignore[index]


def test_s3_archive(settings: Settings, s3_endpoint: str) -> None:
    bucket = create_bucket(s3_endpoint)
    service = _service(settings, f"s3://{bucket}/runs")
    try:
        run = _run_once(service).run
        assert run.artifact_s3_key == f"s3://{bucket}/runs/{run.id}.log"
        assert b"patch_applied" in service.get_artifact(OPS, run.id)
    finally:
        service.close()


def test_s3_down_during_upload_the_run_still_completes(
    settings: Settings, s3_endpoint: str, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import simcore.artifacts as artifacts

    bucket = create_bucket(s3_endpoint)
    service = _service(settings, f"s3://{bucket}/runs")
    # No real waiting between the retries of the upload.
    original = artifacts.archive_run
    monkeypatch.setattr(
        "simcore.worker.archive_run", lambda *a, **k: original(*a, **{**k, "sleep": lambda s: None})
    )
    moto_server.stop()
    try:
        detail = _run_once(service)
    finally:
        moto_server.restart()
        service.close()
    run = detail.run
    assert run.status.value == "success" and run.metrics is not None
    assert run.artifact_s3_key is None and run.artifact_error
    assert service.read_log(OPS, run.id), "the log stays in the database"
    assert "archive_missing" in detail.journal[-1].details
