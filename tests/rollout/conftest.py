"""Approvals to roll out: successful patched runs, executed in-process, then approved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from simcore.auth import Principal
from simcore.config import Settings
from simcore.model import Role
from simcore.service import SimulatorService
from simcore.worker import Worker
from tests.queueing.helpers import OPS, make_simulation
from tests.queueing.test_worker import ScriptedExecutor

LAUNCHER = OPS
"""alice launches the runs: four eyes keep her from approving their patches."""
BOB = Principal("bob", Role.OPS)
"""Approves, stages, promotes, rolls back."""


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc


class Runs:
    """Makes successful patched runs of one simulation; their approvals start pending."""

    def __init__(self, service: SimulatorService, slug: str = "hmac-resync-py") -> None:
        self.service = service
        self.patch = service.add_patch(
            LAUNCHER,
            {
                "slug": slug,
                "sdk_language": "python",
                "error_signature": "signature_mismatch",
                "patch_code": "ctx.retry()",
            },
        )
        self.simulation = make_simulation(service, patch=self.patch.id)
        self._seed = 0

    def pending(self, count: int = 1) -> list[UUID]:
        ids = []
        for _ in range(count):
            self._seed += 1
            ids.append(self.service.launch_run(LAUNCHER, self.simulation.id, self._seed).run.id)
        Worker(
            self.service.db, ScriptedExecutor(lines=0), exit_when_idle=True, on_event=_quiet
        ).run()
        return ids

    def approved(self, count: int = 1) -> list[UUID]:
        ids = self.pending(count)
        for run_id in ids:
            self.service.approve_patch(BOB, run_id, "Validated in sandbox, ready for staging")
        return ids


def _quiet(message: Any) -> None:
    pass


@pytest.fixture
def runs(service: SimulatorService) -> Runs:
    return Runs(service)


def reconfigured(service: SimulatorService, **update: Any) -> SimulatorService:
    """The same database under other settings (validated, as load_settings would)."""
    settings = Settings.model_validate({**service.settings.model_dump(), **update})
    return SimulatorService(settings, db=service.db, migrate_on_start=False)
