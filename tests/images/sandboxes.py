"""Helpers for the tests that run simulations in both sandbox backends.

Fixtures live in the test modules (each with its own backends, closed at the end); what they
share is here: building the backends (a skip, or a failure in CI, when one cannot run here),
a fake secret in the worker's environment, a backend wrapper that remembers its sandboxes,
and the host-side look for leftovers.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simcore.sandbox.base import Sandbox, SandboxSpec, SandboxUnavailable
from simcore.sandbox.docker import LABEL_WORKER, DockerBackend
from simcore.sandbox.process import ProcessBackend
from tests.images.conftest import unavailable

BACKENDS = ("process", "docker")
LANGUAGES = ("python", "node")

# In the worker's environment while the sandboxes of these tests exist; none may see them.
SECRETS = {
    "SIMTUI_TEST_SECRET": "sk_live_x",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-must-not-leak",
    "SIMTUI_TOKEN": "tok-must-not-leak",
}


@contextmanager
def worker_secrets() -> Iterator[dict[str, str]]:
    saved = {name: os.environ.get(name) for name in SECRETS}
    os.environ.update(SECRETS)
    try:
        yield SECRETS
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def leaked_secrets(text: str) -> list[str]:
    return [name for name, value in SECRETS.items() if value in text or name in text]


def process_backend() -> ProcessBackend:
    backend = ProcessBackend()
    try:
        backend.check()
    except SandboxUnavailable as exc:
        unavailable(f"process sandbox unavailable: {exc}")
    if shutil.which("node") is None:
        unavailable("node is not installed (process sandbox, node runner)")
    return backend


def docker_backend(**kwargs: Any) -> DockerBackend:
    """A docker backend with its own worker id, so tests can find its containers by label."""
    kwargs.setdefault("worker_id", f"pytest-{uuid.uuid4().hex[:8]}")
    try:
        return DockerBackend(**kwargs)
    except SandboxUnavailable as exc:
        reason = str(exc)
    unavailable(reason)


class Recording:
    """A backend that remembers the sandboxes it started (to look at them afterwards)."""

    def __init__(self, inner: ProcessBackend | DockerBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.started: list[Sandbox] = []

    def check(self) -> str:
        return self.inner.check()

    def start(self, spec: SandboxSpec) -> Sandbox:
        sandbox = self.inner.start(spec)
        self.started.append(sandbox)
        return sandbox


def containers(backend: DockerBackend, **labels: str) -> list[dict[str, Any]]:
    """The containers (any state) of ``backend``'s worker, with these extra labels."""
    wanted = [f"{LABEL_WORKER}={backend.worker_id}"] + [f"{k}={v}" for k, v in labels.items()]
    found: list[dict[str, Any]] = backend.api.containers(all=True, filters={"label": wanted})
    return found


def container_exists(backend: DockerBackend, container_id: str) -> bool:
    return bool(backend.api.containers(all=True, filters={"id": container_id}))


def removed_soon(backend: DockerBackend, container_id: str, within: float = 10.0) -> bool:
    """Whether the container is gone, now or within ``within`` seconds: a run that ended
    normally leaves its stopped container to the backend's reaper."""
    deadline = time.monotonic() + within
    while container_exists(backend, container_id):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def host_processes(argv: tuple[str, ...]) -> list[int]:
    """Pids of the host's processes whose command line is exactly ``argv``."""
    wanted = "\0".join(argv) + "\0"
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "cmdline").read_bytes().decode(errors="replace") == wanted:
                found.append(int(proc.name))
        except OSError:
            continue
    return found
