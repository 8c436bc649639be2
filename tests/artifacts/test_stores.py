"""Both artifact stores pass the same conformance tests; then what is special to each."""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
import pytest

from simcore.artifacts import (
    ArtifactError,
    ArtifactNotFound,
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    open_store,
    parse_s3_url,
)
from simcore.config import Settings
from simcore.errors import ConfigError, InvalidInput


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ArtifactStore:
    fixture = "local_store" if request.param == "local" else "s3_store"
    value: ArtifactStore = request.getfixturevalue(fixture)
    return value


# -- conformance ------------------------------------------------------------------------------


def test_round_trip(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)
    store.check()
    assert not store.exists("run-1.log")
    store.put_text("run-1.log", "patch_applied op=op-000001\nné à Dakar\n")
    store.put_bytes("nested/run-1.bin", b"\x00\xff")
    assert store.exists("run-1.log")
    assert store.get_bytes("run-1.log") == "patch_applied op=op-000001\nné à Dakar\n".encode()
    assert store.get_bytes("nested/run-1.bin") == b"\x00\xff"


def test_overwrite_replaces(store: ArtifactStore) -> None:
    store.put_text("r.log", "first")
    store.put_text("r.log", "second")
    assert store.get_bytes("r.log") == b"second"


def test_missing_key(store: ArtifactStore) -> None:
    with pytest.raises(ArtifactNotFound, match=r"artifact 'nope\.log' not found in"):
        store.get_bytes("nope.log")


BAD_KEYS = ("../escape.log", "/etc/passwd", "a/../../b.log", "a\\b.log", "", ".hidden",
            "a//b.log", "run 1.log", "x" * 513)  # fmt: skip


def test_keys_cannot_escape(store: ArtifactStore) -> None:
    for key in BAD_KEYS:
        with pytest.raises(InvalidInput, match="artifact key"):
            store.put_text(key, "x")
        with pytest.raises(InvalidInput, match="artifact key"):
            store.get_bytes(key)
        with pytest.raises(InvalidInput, match="artifact key"):
            store.exists(key)


# -- local folder -----------------------------------------------------------------------------


def test_local_write_is_atomic_and_private(local_store: LocalArtifactStore) -> None:
    local_store.put_text("runs/r.log", "line\n")
    folder = local_store.root / "runs"
    assert sorted(p.name for p in folder.iterdir()) == ["r.log"]  # no temporary file left
    assert (folder / "r.log").stat().st_mode & 0o077 == 0  # logs may hold customer data
    assert local_store.location("runs/r.log") == str(folder / "r.log")


def test_local_failed_write_is_named_and_leaves_nothing(local_store: LocalArtifactStore) -> None:
    local_store.put_text("r.log", "kept")
    # "r.log" is a file, so nothing can be stored under it (even for root, unlike chmod).
    with pytest.raises(ArtifactError, match=r"cannot write .*r\.log/x\.log: File exists"):
        local_store.put_text("r.log/x.log", "lost")
    assert local_store.get_bytes("r.log") == b"kept"
    assert [p.name for p in local_store.root.iterdir()] == ["r.log"]


def test_local_symlink_cannot_lead_outside(local_store: LocalArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    local_store.root.mkdir(parents=True)
    (local_store.root / "link").symlink_to(outside)
    with pytest.raises(InvalidInput, match="resolves outside"):
        local_store.put_text("link/r.log", "x")
    assert not any(outside.iterdir())


# -- S3 ---------------------------------------------------------------------------------------


def test_s3_objects_land_under_the_prefix(s3_store: S3ArtifactStore, s3_endpoint: str) -> None:
    s3_store.put_text("r.report.json", "{}", "application/json")
    head = boto3.client("s3", endpoint_url=s3_endpoint).head_object(
        Bucket=s3_store.bucket, Key="runs/2025/r.report.json"
    )
    assert head["ContentType"] == "application/json"
    assert s3_store.location("r.report.json") == f"s3://{s3_store.bucket}/runs/2025/r.report.json"
    assert s3_store.describe() == f"s3://{s3_store.bucket}/runs/2025 at {s3_endpoint}"


def test_s3_missing_bucket_is_named(s3_endpoint: str) -> None:
    store = S3ArtifactStore("no-such-bucket-here", "logs")
    with pytest.raises(ArtifactError) as caught:
        store.put_text("r.log", "x")
    assert "S3 bucket 'no-such-bucket-here' does not exist" in str(caught.value)
    assert s3_endpoint in str(caught.value)
    assert caught.value.transient is False
    with pytest.raises(ArtifactError, match="'no-such-bucket-here' does not exist"):
        store.check()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_s3_unreachable_endpoint_is_named(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    store = S3ArtifactStore("logs")
    with pytest.raises(ArtifactError) as caught:
        store.put_text("r.log", "x")
    assert f"S3 endpoint {endpoint} is unreachable" in str(caught.value)
    assert caught.value.transient is True


def test_s3_without_credentials(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ArtifactError, match="no AWS credentials"):
        S3ArtifactStore("logs").put_text("r.log", "x")


def test_s3_bad_endpoint_url(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "localhost:9000")
    with pytest.raises(ConfigError, match="AWS_ENDPOINT_URL: 'localhost:9000' is not an http"):
        S3ArtifactStore("logs")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "'s3://' names no bucket; expected s3://bucket/prefix"),
        ("s3:///prefix", "names no bucket"),
        ("s3:/bucket/x", "is not an s3://bucket/prefix URL"),
        ("s3://My_Bucket/x", "'My_Bucket' is not a valid S3 bucket name"),
        ("s3://ab/x", "'ab' is not a valid S3 bucket name"),
        ("s3://key:secret@bucket/x", "not in the s3:// URL"),
        ("s3://bucket/../x", "SIMTUI_ARTIFACTS: prefix"),
        ("s3://bucket/x?versioning=1", "takes no '?' or '#'"),
    ],
)
def test_bad_s3_urls_are_named(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_s3_url(url)
    assert str(caught.value).startswith("SIMTUI_ARTIFACTS: ")
    assert message in str(caught.value)


def test_s3_url_parts() -> None:
    assert parse_s3_url("s3://molam-simulator-logs") == ("molam-simulator-logs", "")
    assert parse_s3_url("s3://molam-simulator-logs/runs/2025/") == (
        "molam-simulator-logs",
        "runs/2025",
    )


def test_open_store_follows_the_settings(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SIMTUI_ARTIFACTS", raising=False)
    local = open_store(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalArtifactStore)
    assert local.root == tmp_path / "artifacts"
    folder = open_store(Settings(data_dir=tmp_path, artifacts=str(tmp_path / "elsewhere")))
    assert isinstance(folder, LocalArtifactStore) and folder.root == tmp_path / "elsewhere"
    s3 = open_store(Settings(data_dir=tmp_path, artifacts="s3://molam-simulator-logs/runs"))
    assert isinstance(s3, S3ArtifactStore)
    assert (s3.bucket, s3.prefix) == ("molam-simulator-logs", "runs")
    with pytest.raises(ConfigError, match="SIMTUI_ARTIFACTS: unsupported scheme 'gs'"):
        open_store(Settings(data_dir=tmp_path, artifacts="gs://bucket/x"))
    with pytest.raises(ConfigError, match="names no bucket"):
        open_store(Settings(data_dir=tmp_path, artifacts="s3://"))
