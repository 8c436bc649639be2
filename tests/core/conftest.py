"""Fixtures for the simulation core: the real process sandbox, and a cache of finished runs.

Without namespace isolation or node on the machine the sandbox tests are skipped, saying why;
with ``SIMTUI_REQUIRE_TOOLS=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

from simcore.model import Patch, Scenario
from simcore.patches import find_patch
from simcore.runner import Report, run_simulation
from simcore.sandbox.base import SandboxUnavailable
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES

REQUIRED = os.environ.get("SIMTUI_REQUIRE_TOOLS") == "1"
LANGUAGES = ("python", "node")


def _missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (SIMTUI_REQUIRE_TOOLS=1: required, not skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def backend() -> ProcessBackend:
    """The process sandbox with real isolation (namespaces, rlimits, empty environment)."""
    chosen = ProcessBackend()
    try:
        chosen.check()
    except SandboxUnavailable as exc:
        _missing(f"process sandbox unavailable: {exc}")
    if shutil.which("node") is None:
        _missing("node is not installed")
    return chosen


RunFn = Callable[..., Report]


@pytest.fixture(scope="session")
def run(backend: ProcessBackend) -> RunFn:
    """``run(scenario, language, patch=None, seed=1, max_run_time_ms=60000)``."""

    def _run(
        scenario: Scenario,
        language: str,
        patch: Patch | None = None,
        seed: int = 1,
        max_run_time_ms: int = 60_000,
        on_log: Callable[[str], None] | None = None,
    ) -> Report:
        return run_simulation(scenario, language, seed, patch, backend, max_run_time_ms, on_log)

    return _run


@pytest.fixture(scope="session")
def template_run(run: RunFn) -> Callable[[str, str, str | None], Report]:
    """A template run with a built-in patch (slug without language, or None), cached: the
    conformance, verdict and bad-patch tests look at the same runs from different angles."""
    cache: dict[tuple[str, str, str | None], Report] = {}

    def _get(template: str, language: str, patch: str | None) -> Report:
        key = (template, language, patch)
        if key not in cache:
            chosen = find_patch(patch, language) if patch else None
            cache[key] = run(TEMPLATES[template].scenario, language, chosen)
        return cache[key]

    return _get
