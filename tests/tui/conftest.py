from __future__ import annotations

from collections.abc import Iterator

import pytest

from simcore.config import Settings
from simcore.service import SimulatorService


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc
