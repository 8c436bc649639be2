"""Fixtures for the sandbox image tests: a Docker engine and the built molam/sim-* images.

Without an engine these tests are skipped, saying why; with ``SIMTUI_REQUIRE_TOOLS=1`` (CI,
where .ci/run starts the engine and builds the images) they fail instead, so a broken
engine set-up cannot pass as a green run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, NoReturn

import pytest

from simcore.images import DockerUnavailable, docker_client, sandbox_images
from tests.conftest import simcore_bin

REQUIRED = os.environ.get("SIMTUI_REQUIRE_TOOLS") == "1"


def unavailable(reason: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(f"{reason} (SIMTUI_REQUIRE_TOOLS=1: required, not skipped)", pytrace=False)
    pytest.skip(reason)


def simcore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [simcore_bin(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="session")
def engine() -> Any:
    if shutil.which("docker") is None:
        unavailable("no docker CLI on PATH")
    try:
        return docker_client(timeout=120)
    except DockerUnavailable as exc:
        reason = str(exc)
    # Outside the except block: a failure in CI should read as one line, not a chain.
    unavailable(reason)


@pytest.fixture(scope="session")
def built(engine: Any) -> str:
    """Make sure the images are current; return the build's output.

    A missing image is not built here (debootstrap takes a minute or more): that is a skip
    locally, a failure in CI. A stale one (the runner changed since) is rebuilt, which
    takes seconds on top of an existing base.
    """
    present = {tag for image in engine.images.list() for tag in image.tags}
    missing = [name for name in sandbox_images() if name not in present]
    if missing:
        unavailable(
            f"sandbox images not built: {', '.join(missing)} (run: simcore images build --offline)"
        )
    done = simcore("images", "build", "--offline", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
