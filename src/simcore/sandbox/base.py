"""The contract every sandbox backend keeps (process today, docker next).

A backend starts ONE runner for a run: the SDK runner of a language, isolated, reading the
worker's JSON lines on stdin and answering on stdout, its stderr streamed as the run log. The
session (``simcore.gateway.session``) only needs the few operations below, so a backend is free
to use a namespaced subprocess, a container attached over the Docker API, or anything else
that can carry lines both ways and be killed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from simcore.errors import SimError

MAX_RUN_TIME_MS = 180_000
SUPPORTED_LANGUAGES = ("python", "node")

LogCallback = Callable[[str], None]


class SandboxUnavailable(SimError):
    """The backend cannot isolate a runner here; the message says why and what to do."""


class SandboxStartError(SimError):
    """The runner could not be started (interpreter missing, engine down...)."""


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    language: str
    max_run_time_ms: int = MAX_RUN_TIME_MS
    on_log: LogCallback | None = None
    """Called with each line of the runner's stderr (capped), from a reader thread."""
    run_id: str | None = None
    """The queued run this sandbox serves, when there is one: backends may tag their
    resources with it (the docker backend labels its container) so an operator can find
    them."""


@dataclass(frozen=True, slots=True)
class SandboxExit:
    exit_code: int | None
    deadline_hit: bool
    log_lines: int
    log_truncated: bool
    log_tail: tuple[str, ...]


@runtime_checkable
class Sandbox(Protocol):
    """One running, isolated SDK runner."""

    @property
    def deadline_hit(self) -> bool:
        """True once the runner was killed for exceeding ``max_run_time_ms``."""
        ...

    def send(self, data: bytes) -> None:
        """Write one or more complete lines; raise ``BrokenPipeError`` once it is gone."""
        ...

    def recv(self) -> bytes:
        """The next stdout line (with its newline), at most ``MAX_LINE_BYTES + 1`` bytes so an
        oversized line is noticed without reading it all; ``b""`` at end of output."""
        ...

    def kill_after(self, seconds: float) -> None:
        """Kill the runner if still alive after ``seconds`` (a grace period, not a timeout)."""
        ...

    def kill(self) -> None: ...

    def close(self) -> SandboxExit:
        """Kill whatever is left, wait for it, release every resource (idempotent)."""
        ...


@runtime_checkable
class SandboxBackend(Protocol):
    name: str

    def check(self) -> str:
        """A one-line description of the isolation in use, or raise ``SandboxUnavailable``."""
        ...

    def start(self, spec: SandboxSpec) -> Sandbox:
        """Start a runner for ``spec.language``; raise ``SandboxUnavailable`` or
        ``SandboxStartError`` when it cannot."""
        ...
