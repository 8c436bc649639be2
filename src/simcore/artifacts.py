"""Run artifacts (``<run_id>.log``, ``<run_id>.report.json``): a local folder or S3.

``SIMTUI_ARTIFACTS`` chooses: a folder (default ``<data_dir>/artifacts``) or
``s3://bucket/prefix``. The S3 store reads the standard AWS variables (credentials, region,
``AWS_PROFILE``) and ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` for S3-compatible
servers (MinIO, Ceph, moto).

The run's result and log always live in the database; the artifact store is a copy for
people and tools (``aws s3 cp s3://.../RUN_ID.log .``). So archiving never fails a run:
``archive_run`` retries a few times and, if the store stays unavailable, says the archive is
missing and why.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from simcore.config import Settings
from simcore.errors import ConfigError, InvalidInput, NotFound, SimError

ENV_NAME = "SIMTUI_ARTIFACTS"
TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
BINARY = "application/octet-stream"
# Short: the worker archives after a run and must not hang on a dead endpoint.
S3_CONNECT_TIMEOUT_S = 3
S3_READ_TIMEOUT_S = 10


class ArtifactError(SimError):
    """The artifact store failed; ``transient`` says whether trying again may help."""

    http_status = 503

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class ArtifactNotFound(NotFound):
    pass


_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def validate_key(key: str) -> str:
    """A key is a relative path of plain segments: no ``..``, no leading ``/``, no ``\\``."""
    if not isinstance(key, str) or not 1 <= len(key) <= 512:
        raise InvalidInput("artifact key", "must be 1 to 512 characters")
    for part in key.split("/"):
        if not _SEGMENT.fullmatch(part):
            raise InvalidInput(
                "artifact key",
                f"{key!r}: each '/'-separated part must start with a letter or digit and use"
                " only letters, digits, '.', '_' and '-'",
            )
    return key


@runtime_checkable
class ArtifactStore(Protocol):
    def put_bytes(self, key: str, data: bytes, content_type: str = BINARY) -> None: ...

    def put_text(self, key: str, text: str, content_type: str = TEXT) -> None: ...

    def get_bytes(self, key: str) -> bytes:
        """The stored bytes; ``ArtifactNotFound`` when there is no such key."""
        ...

    def exists(self, key: str) -> bool: ...

    def check(self) -> None:
        """Raise ``ArtifactError`` naming the problem if the store cannot be written to."""
        ...

    def describe(self) -> str:
        """Where the store is, for people: a folder or ``s3://bucket/prefix``."""
        ...

    def location(self, key: str) -> str:
        """Where ``key`` is (or would be): a file path or ``s3://bucket/prefix/key``."""
        ...


# ---------------------------------------------------------------------------------------------
# Local folder
# ---------------------------------------------------------------------------------------------

_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EINTR, errno.EIO, errno.EBUSY, errno.ENOSPC}


class LocalArtifactStore:
    """Files under ``root``; a write is atomic (temporary file, fsync, rename).

    Files are private to the user (logs may hold customer data); content types are not
    kept, the names (``.log``, ``.json``) say enough.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def location(self, key: str) -> str:
        return str(self._path(key))

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*validate_key(key).split("/"))
        # Defence in depth: a symlink planted inside the folder must not lead writes out of it.
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise InvalidInput("artifact key", f"{key!r} resolves outside {self.root}")
        return path

    def _error(self, action: str, path: Path, exc: OSError) -> ArtifactError:
        reason = exc.strerror or type(exc).__name__
        return ArtifactError(
            f"cannot {action} {path}: {reason}", transient=exc.errno in _TRANSIENT_ERRNOS
        )

    def put_bytes(self, key: str, data: bytes, content_type: str = BINARY) -> None:
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            tmp = None
            _fsync_dir(path.parent)
        except OSError as exc:
            raise self._error("write", path, exc) from None
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)

    def put_text(self, key: str, text: str, content_type: str = TEXT) -> None:
        self.put_bytes(key, text.encode("utf-8"), content_type)

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ArtifactNotFound(f"artifact {key!r} not found in {self.root}") from None
        except OSError as exc:
            raise self._error("read", path, exc) from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._error("create", self.root, exc) from None
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ArtifactError(f"cannot write to {self.root}: permission denied", transient=False)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (the directory entry), where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the data itself is synced
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# S3
# ---------------------------------------------------------------------------------------------

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_LIKE = re.compile(r"\d+\.\d+\.\d+\.\d+")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``; ConfigError otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "s3" or not url.strip().lower().startswith("s3://"):
        raise ConfigError(f"{ENV_NAME}: {url!r} is not an s3://bucket/prefix URL")
    bucket = parts.netloc
    if not bucket:
        raise ConfigError(f"{ENV_NAME}: {url!r} names no bucket; expected s3://bucket/prefix")
    if "@" in bucket or ":" in bucket:
        raise ConfigError(
            f"{ENV_NAME}: put credentials in the AWS variables and the endpoint in"
            " AWS_ENDPOINT_URL, not in the s3:// URL"
        )
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _IP_LIKE.fullmatch(bucket):
        raise ConfigError(
            f"{ENV_NAME}: {bucket!r} is not a valid S3 bucket name (3 to 63 lowercase letters,"
            " digits, '.' and '-', starting and ending with a letter or digit)"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"{ENV_NAME}: {url!r}: an s3:// URL takes no '?' or '#' part")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except InvalidInput as exc:
            raise ConfigError(f"{ENV_NAME}: prefix {exc.reason}") from None
    return bucket, prefix


def _endpoint_from_env() -> str | None:
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = os.environ.get(name, "").strip()
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{name}: {value!r} is not an http(s):// URL")
            return value
    return None


class S3ArtifactStore:
    """Objects under ``s3://bucket/prefix/``.

    botocore's own retries are off: they would sleep for real and multiply the attempts
    that ``archive_run`` already bounds (with a sleep tests can replace).
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        # Imported here: boto3 takes a noticeable part of a second to import, which every
        # `simcore` command would pay on start-up for a store most of them never open.
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url if endpoint_url is not None else _endpoint_from_env()
        options: dict[str, Any] = {
            "connect_timeout": S3_CONNECT_TIMEOUT_S,
            "read_timeout": S3_READ_TIMEOUT_S,
            "retries": {"mode": "standard", "total_max_attempts": 1},
        }
        if self.endpoint_url:
            # S3-compatible servers rarely serve virtual-hosted bucket names.
            options["s3"] = {"addressing_style": "path"}
        try:
            self._client: Any = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url, config=Config(**options)
            )
        except ValueError as exc:  # botocore: "Invalid endpoint: ..."
            raise ConfigError(f"AWS_ENDPOINT_URL: {exc}") from None
        except BotoCoreError as exc:  # unknown AWS_PROFILE, bad region name...
            raise ConfigError(f"{ENV_NAME}: cannot set up the S3 client: {exc}") from None

    @classmethod
    def from_url(cls, url: str) -> S3ArtifactStore:
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where

    def _key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _error(self, exc: Exception, action: str, key: str | None) -> SimError:
        from botocore.exceptions import (
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            PartialCredentialsError,
            ReadTimeoutError,
        )

        what = self.location(key) if key is not None else self.describe()
        endpoint = self.endpoint_url or "the AWS S3 endpoint"
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ArtifactError(
                f"cannot {action} {what}: no AWS credentials (set AWS_ACCESS_KEY_ID and"
                " AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)",
                transient=False,
            )
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            return ArtifactError(
                f"cannot {action} {what}: S3 endpoint {endpoint} is unreachable ({exc})",
                transient=True,
            )
        if isinstance(exc, ReadTimeoutError | ConnectionClosedError):
            return ArtifactError(
                f"cannot {action} {what}: S3 endpoint {endpoint} stopped answering: {exc}",
                transient=True,
            )
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code == "NoSuchBucket":
                return ArtifactError(
                    f"S3 bucket {self.bucket!r} does not exist (at {endpoint});"
                    f" create it or fix {ENV_NAME}",
                    transient=False,
                )
            if code in ("NoSuchKey", "404", "NotFound") and key is not None:
                return ArtifactNotFound(f"artifact {key!r} not found in {self.describe()}")
            if code in ("404", "NotFound"):
                return ArtifactError(
                    f"S3 bucket {self.bucket!r} does not exist (at {endpoint})", transient=False
                )
            if status in (401, 403) or code in (
                "AccessDenied",
                "InvalidAccessKeyId",
                "SignatureDoesNotMatch",
                "ExpiredToken",
                "403",
            ):
                return ArtifactError(
                    f"cannot {action} {what}: access denied ({code or status}); check the AWS"
                    " credentials and the bucket policy",
                    transient=False,
                )
            transient = status >= 500 or code in ("SlowDown", "RequestTimeout", "Throttling")
            detail = error.get("Message") or code or f"HTTP {status}"
            return ArtifactError(f"cannot {action} {what}: {detail}", transient=transient)
        return ArtifactError(f"cannot {action} {what}: {exc}", transient=True)

    def _call(self, action: str, key: str | None, fn: Callable[[], Any]) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn()
        except (BotoCoreError, ClientError) as exc:
            raise self._error(exc, action, key) from None

    def put_bytes(self, key: str, data: bytes, content_type: str = BINARY) -> None:
        name = self._key(key)
        self._call(
            "write",
            key,
            lambda: self._client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            ),
        )

    def put_text(self, key: str, text: str, content_type: str = TEXT) -> None:
        self.put_bytes(key, text.encode("utf-8"), content_type)

    def get_bytes(self, key: str) -> bytes:
        name = self._key(key)

        def fetch() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=name)
            body: bytes = response["Body"].read()
            return body

        result: bytes = self._call("read", key, fetch)
        return result

    def exists(self, key: str) -> bool:
        name = self._key(key)
        try:
            self._call(
                "look up", key, lambda: self._client.head_object(Bucket=self.bucket, Key=name)
            )
        except ArtifactNotFound:
            return False
        return True

    def check(self) -> None:
        self._call("open", None, lambda: self._client.head_bucket(Bucket=self.bucket))


def open_store(settings: Settings) -> ArtifactStore:
    """The store ``settings.artifacts_location`` names (no network call is made here)."""
    return open_location(settings.artifacts_location)


def open_location(location: str) -> ArtifactStore:
    """A store for a folder or an ``s3://bucket/prefix`` URL."""
    location = location.strip()
    if location.lower().startswith("s3:"):
        return S3ArtifactStore.from_url(location)
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise ConfigError(
            f"{ENV_NAME}: unsupported scheme {scheme!r}; use a folder or s3://bucket/prefix"
        )
    return LocalArtifactStore(Path(location).expanduser())


# ---------------------------------------------------------------------------------------------
# Archiving a run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveResult:
    """What became of a run's artifacts. ``missing_reason`` is set when they are not all
    stored; the run keeps its result and log in the database either way."""

    log_key: str
    report_key: str
    log_location: str
    report_location: str
    stored: tuple[str, ...]
    attempts: int
    missing_reason: str | None = None

    @property
    def archived(self) -> bool:
        return self.missing_reason is None


def run_keys(run_id: str) -> tuple[str, str]:
    return validate_key(f"{run_id}.log"), validate_key(f"{run_id}.report.json")


def archive_run(
    store: ArtifactStore,
    run_id: str,
    log_text: str,
    report_json: str | Mapping[str, Any],
    *,
    max_attempts: int = 4,
    base_delay_s: float = 0.5,
    max_delay_s: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> ArchiveResult:
    """Store ``<run_id>.log`` and ``<run_id>.report.json``; never raises for storage faults.

    Each object gets up to ``max_attempts`` tries on a transient failure (endpoint
    unreachable, 5xx, timeout), with exponential backoff between them; a permanent one
    (missing bucket, access denied) is reported at once, as trying again cannot help.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    log_key, report_key = run_keys(str(run_id))
    if not isinstance(report_json, str):
        report_json = json.dumps(report_json, indent=2, sort_keys=True, ensure_ascii=False)
    pending = [(log_key, log_text, TEXT), (report_key, report_json, JSON)]
    stored: list[str] = []
    attempts = 0
    reason: str | None = None
    for key, text, content_type in pending:
        for attempt in range(1, max_attempts + 1):
            attempts += 1
            try:
                store.put_text(key, text, content_type)
            except ArtifactError as exc:
                reason = f"{key}: {exc.message}"
                if not exc.transient or attempt == max_attempts:
                    break
                sleep(min(max_delay_s, base_delay_s * 2 ** (attempt - 1)))
            else:
                stored.append(key)
                reason = None
                break
        if reason is not None:
            break  # the same store holds the report: no use waiting on it again
    missing = None
    if reason is not None:
        missing = f"archive missing after {attempts} attempt(s) to {store.describe()}: {reason}"
    return ArchiveResult(
        log_key=log_key,
        report_key=report_key,
        log_location=store.location(log_key),
        report_location=store.location(report_key),
        stored=tuple(stored),
        attempts=attempts,
        missing_reason=missing,
    )
