"""Archiving a run's log and report: retries, backoff, and a missing archive never raises."""

from __future__ import annotations

import json
import uuid

import pytest

from simcore.artifacts import LocalArtifactStore, S3ArtifactStore, archive_run
from simcore.errors import InvalidInput
from tests.artifacts.conftest import MotoServer, create_bucket

RUN_ID = str(uuid.UUID(int=0x1234))
LOG = "phase baseline\npatch_applied op=op-000001\nphase patched\n"
REPORT = {"status": "success", "metrics": {"success_rate": 0.97}}


def test_archive_to_s3(s3_store: S3ArtifactStore) -> None:
    sleeps: list[float] = []
    result = archive_run(s3_store, RUN_ID, LOG, REPORT, sleep=sleeps.append)
    assert result.archived and result.missing_reason is None
    assert result.stored == (f"{RUN_ID}.log", f"{RUN_ID}.report.json")
    assert result.attempts == 2 and sleeps == []
    assert result.log_location == f"s3://{s3_store.bucket}/runs/2025/{RUN_ID}.log"
    assert s3_store.get_bytes(result.log_key).decode() == LOG
    assert json.loads(s3_store.get_bytes(result.report_key)) == REPORT


def test_server_down_during_upload_gives_a_missing_archive(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MotoServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    store = S3ArtifactStore(create_bucket(server.endpoint), "logs")
    server.stop()
    sleeps: list[float] = []

    result = archive_run(store, RUN_ID, LOG, REPORT, max_attempts=4, sleep=sleeps.append)

    assert not result.archived
    assert result.stored == ()
    assert result.attempts == 4
    assert sleeps == [0.5, 1.0, 2.0]  # exponential backoff, injected: no real waiting
    assert result.missing_reason is not None
    assert result.missing_reason.startswith(
        f"archive missing after 4 attempt(s) to {store.describe()}"
    )
    assert f"S3 endpoint {server.endpoint} is unreachable" in result.missing_reason


def test_upload_succeeds_when_the_server_comes_back(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = MotoServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    store = S3ArtifactStore(create_bucket(server.endpoint), "logs")
    server.stop()
    sleeps: list[float] = []

    def wait(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            server.restart()  # the outage ends during the second backoff

    try:
        result = archive_run(store, RUN_ID, LOG, "{}", sleep=wait)
    finally:
        server.stop()
    assert result.archived
    assert result.attempts == 4  # log: 3 tries, report: 1
    assert sleeps == [0.5, 1.0]


def test_missing_bucket_is_not_retried(s3_endpoint: str) -> None:
    store = S3ArtifactStore("no-such-bucket-here")
    sleeps: list[float] = []
    result = archive_run(store, RUN_ID, LOG, REPORT, sleep=sleeps.append)
    assert not result.archived
    assert result.attempts == 1 and sleeps == []
    assert result.missing_reason is not None
    assert "S3 bucket 'no-such-bucket-here' does not exist" in result.missing_reason


def test_backoff_is_capped(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    server = MotoServer()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    store = S3ArtifactStore("any-bucket")
    server.stop()
    sleeps: list[float] = []
    archive_run(store, RUN_ID, LOG, REPORT, max_attempts=6, max_delay_s=3.0, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_local_archive_and_a_partial_failure(local_store: LocalArtifactStore) -> None:
    result = archive_run(local_store, RUN_ID, LOG, REPORT)
    assert result.archived
    assert (local_store.root / f"{RUN_ID}.log").read_text() == LOG

    # The report's name is taken by a folder: the log is stored, the report cannot be.
    other = str(uuid.UUID(int=0x5678))
    (local_store.root / f"{other}.report.json").mkdir()
    sleeps: list[float] = []
    partial = archive_run(local_store, other, LOG, REPORT, sleep=sleeps.append)
    assert not partial.archived
    assert partial.stored == (f"{other}.log",)
    assert partial.missing_reason is not None
    assert f"{other}.report.json: cannot write" in partial.missing_reason
    assert sleeps == []  # "is a directory" will not fix itself


def test_a_run_id_that_is_not_a_key_is_refused(local_store: LocalArtifactStore) -> None:
    with pytest.raises(InvalidInput, match="artifact key"):
        archive_run(local_store, "../../etc/cron.d/x", LOG, REPORT)
