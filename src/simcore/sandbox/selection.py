"""Which sandbox backend to use: ``docker``, ``process``, or ``auto`` (docker if it answers)."""

from __future__ import annotations

import importlib

from simcore.errors import InvalidInput
from simcore.sandbox.base import SandboxBackend, SandboxUnavailable
from simcore.sandbox.process import ProcessBackend

BACKENDS = ("auto", "docker", "process")


def _docker(required: bool) -> SandboxBackend | None:
    try:
        module = importlib.import_module("simcore.sandbox.docker")
    except ImportError:
        if required:
            raise SandboxUnavailable("the docker sandbox backend is not installed") from None
        return None
    try:
        backend: SandboxBackend = module.DockerBackend()
    except SandboxUnavailable:
        if required:
            raise
        return None
    return backend


def select(name: str, *, unsafe_no_isolation: bool = False) -> SandboxBackend:
    if name not in BACKENDS:
        raise InvalidInput("sandbox", f"unknown backend {name!r} (use {', '.join(BACKENDS)})")
    if name == "docker":
        backend = _docker(required=True)
        assert backend is not None
        return backend
    if name == "auto" and not unsafe_no_isolation:
        backend = _docker(required=False)
        if backend is not None:
            return backend
    return ProcessBackend(unsafe_no_isolation=unsafe_no_isolation)
