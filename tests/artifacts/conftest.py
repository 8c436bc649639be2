"""A real S3-compatible server for the artifact tests: moto in server mode, over HTTP.

The server runs in a thread on 127.0.0.1 with a free port; the tests reach it the way
production reaches MinIO or AWS, through ``AWS_ENDPOINT_URL`` and dummy credentials.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from simcore.artifacts import LocalArtifactStore, S3ArtifactStore

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never look for credentials on an instance metadata endpoint that is not there.
    "AWS_EC2_METADATA_DISABLED": "true",
}


class MotoServer:
    """One moto server; ``stop`` really closes the port so clients are refused at once."""

    def __init__(self) -> None:
        self.port = 0  # the first start picks a free port; a restart reuses it
        self._start()

    def _start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        host, self.port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{self.port}"

    def stop(self) -> None:
        self._server.stop()
        # ThreadedMotoServer.stop() ends the serving loop but leaves the socket listening,
        # where connections would hang instead of being refused as with a dead server.
        inner = self._server._server
        if inner is not None:
            inner.server_close()

    def restart(self) -> None:
        self._start()


@pytest.fixture(scope="session", autouse=True)
def _quiet_werkzeug() -> Iterator[None]:
    # Every request is logged at INFO; the tests only care about failures.
    logger = logging.getLogger("werkzeug")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_endpoint(aws_env: None, moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.endpoint)
    return moto_server.endpoint


def create_bucket(endpoint: str) -> str:
    """A fresh bucket: moto keeps its state for the whole process, so names never repeat."""
    name = f"simtui-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    return create_bucket(s3_endpoint)


@pytest.fixture
def s3_store(bucket: str) -> S3ArtifactStore:
    return S3ArtifactStore(bucket, "runs/2025")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")
