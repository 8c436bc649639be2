"""SIRA batches: to a folder or S3; a failed upload flags nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import boto3
import psycopg
import pytest

from simcore.artifacts import ArtifactError
from simcore.config import Settings
from simcore.service import SimulatorService
from tests.artifacts.conftest import create_bucket
from tests.conftest import simcore_bin
from tests.queueing.helpers import OPS


def _plant(db_url: str, n: int) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(n):
            conn.execute(
                "INSERT INTO sdk_anonymized_errors (error_signature, category, sdk_language, "
                "frequency, context_hash) VALUES ('timeout', 'timeout', 'python', 0.2, "
                "encode(sha256(%s::bytea), 'hex'))",
                (f"ctx{i}",),
            )


def _pending(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM sdk_anonymized_errors WHERE NOT exported_to_sira"
        ).fetchone()
    return int(row[0]) if row else -1


def test_export_to_s3_then_nothing_twice(settings: Settings, db_url: str, s3_endpoint: str) -> None:
    _plant(db_url, 3)
    bucket = create_bucket(s3_endpoint)
    with SimulatorService(settings) as service:
        result = service.export_sira(OPS, f"s3://{bucket}/sira")
        assert result.count == 3 and _pending(db_url) == 0
        assert service.export_sira(OPS, f"s3://{bucket}/sira").count == 0
    body = (
        boto3.client("s3", endpoint_url=s3_endpoint)
        .get_object(Bucket=bucket, Key=f"sira/sira-{result.batch_id}.jsonl")["Body"]
        .read()
        .decode()
    )
    lines = body.splitlines()
    assert json.loads(lines[0])["count"] == 3 and len(lines) == 4


def test_failed_upload_flags_nothing(settings: Settings, db_url: str, s3_endpoint: str) -> None:
    _plant(db_url, 2)
    with SimulatorService(settings) as service, pytest.raises(ArtifactError):
        service.export_sira(OPS, "s3://no-such-bucket-here/sira")
    assert _pending(db_url) == 2


def test_cli_export_to_a_folder(db_url: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    _plant(db_url, 2)
    done = subprocess.run(
        [simcore_bin(), "sira", "export", "--out", str(tmp_path / "out")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    files = list((tmp_path / "out").glob("sira-*.jsonl"))
    assert len(files) == 1 and "exported 2 rows" in done.stdout
    again = subprocess.run(
        [simcore_bin(), "sira", "export", "--out", str(tmp_path / "out")],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.stdout.strip() == "nothing to export"
