"""Environment checks behind `simcore doctor` (and the dashboard's start-up banner)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simcore.config import Settings
from simcore.errors import SimError
from simcore.images import SANDBOX_IMAGES as SANDBOX_IMAGES
from simcore.sandbox.base import SandboxUnavailable
from simcore.sandbox.process import ProcessBackend


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True


def check_database(settings: Settings) -> Check:
    from simcore.store import Database, migrate

    kind = "embedded" if settings.database_url is None else "SIMTUI_DATABASE_URL"
    try:
        with Database(settings) as db:
            version = db.check()
            states = migrate.status(db)
    except SimError as exc:
        return Check("database", False, f"{kind}: {exc}")
    pending = [s for s in states if not s.applied]
    where = f"{kind}, PostgreSQL {version // 10000}.{version % 10000}"
    if pending:
        return Check(
            "database",
            False,
            f"{where}; {len(pending)} migration(s) pending (run: simcore db migrate)",
        )
    return Check("database", True, f"{where}; migrations current ({len(states)} applied)")


def _docker_client() -> Any:
    """A connected docker client, or None when no engine answers."""
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return None
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except (DockerException, OSError):
        return None
    return client


def check_docker(settings: Settings) -> tuple[Check, Check]:
    required = settings.sandbox == "docker"
    client = _docker_client()
    if client is None:
        engine = Check(
            "docker engine",
            False,
            "not reachable (DOCKER_HOST or /var/run/docker.sock)",
            required=required,
        )
        images = Check("sandbox images", False, "unknown: no Docker engine", required=required)
        return engine, images
    version = client.version().get("Version", "?")
    engine = Check("docker engine", True, f"reachable, version {version}", required=required)
    present = []
    for name in SANDBOX_IMAGES:
        try:
            client.images.get(name)
            present.append(name)
        except Exception:
            pass
    missing = [n for n in SANDBOX_IMAGES if n not in present]
    images = Check(
        "sandbox images",
        not missing,
        "all present"
        if not missing
        else f"missing {', '.join(missing)} (run: simcore images build)",
        required=required,
    )
    return engine, images


def check_process_isolation(settings: Settings) -> Check:
    """What the process sandbox would do here: the same probe its runs use (namespaces and
    private tmpfs mounts included), so a refusal reads the same in both places."""
    required = settings.sandbox == "process"
    try:
        detail = ProcessBackend().check()
    except SandboxUnavailable as exc:
        return Check("process isolation", False, f"{exc}; it will refuse to run",
                     required=required)  # fmt: skip
    return Check("process isolation", True, detail, required=required)


def check_artifacts(settings: Settings) -> Check:
    location = settings.artifacts_location
    if location.startswith("s3://"):
        bucket = location[len("s3://") :].split("/", 1)[0]
        try:
            import boto3
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError

            s3 = boto3.client(
                "s3", config=Config(connect_timeout=3, read_timeout=3, retries={"max_attempts": 1})
            )
            s3.head_bucket(Bucket=bucket)
        except (BotoCoreError, ClientError) as exc:
            return Check("artifact store", False, f"{location}: {exc}")
        return Check("artifact store", True, f"{location}: bucket reachable")
    folder = Path(location)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as exc:
        return Check("artifact store", False, f"{folder}: not writable ({exc.strerror})")
    return Check("artifact store", True, f"{folder}: writable")


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = [check_database(settings)]
    checks.extend(check_docker(settings))
    steps: list[Callable[[Settings], Check]] = [check_process_isolation, check_artifacts]
    checks.extend(step(settings) for step in steps)
    if settings.sandbox == "auto":
        # auto needs one working backend, whichever it is.
        usable = any(c.ok for c in checks if c.name in ("docker engine", "process isolation"))
        if not usable:
            checks.append(
                Check("sandbox", False, "neither Docker nor process isolation is available")
            )
    return checks
