from __future__ import annotations

from collections.abc import Iterator

import pytest

from simcore.config import Settings
from simcore.service import SimulatorService
from tests.api.conftest import live, tokens  # noqa: F401 - API mode's server and tokens


@pytest.fixture
def service(settings: Settings) -> Iterator[SimulatorService]:
    with SimulatorService(settings) as svc:
        yield svc
