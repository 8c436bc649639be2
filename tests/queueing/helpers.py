from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from simcore.auth import Principal
from simcore.events import RUNS_CHANNEL, Event, Listener
from simcore.model import Role, TenantType
from simcore.service import SimulatorService
from simcore.templates import get_template

OPS = Principal("alice", Role.OPS)


def make_simulation(
    service: SimulatorService,
    *,
    language: str = "python",
    template: str = "signature_mismatch",
    tenant_type: str = "internal",
    tenant_id: str = "default",
    patch: Any = None,
    total_requests: int | None = None,
) -> Any:
    scenario = get_template(template).scenario
    if total_requests is not None:
        scenario = scenario.model_copy(update={"total_requests": total_requests})
    return service.create_simulation(
        OPS,
        {
            "name": f"{template} test",
            "sdk_language": language,
            "scenario": scenario,
            "tenant_type": TenantType(tenant_type),
            "tenant_id": tenant_id,
            "patch_reference": patch,
        },
    )


class RunEvents:
    """The run-change notifications received so far, and a wait bounded by one deadline."""

    def __init__(self, seconds: float = 10) -> None:
        self.got: list[Event] = []
        self.deadline = time.monotonic() + seconds

    def wait(self, done: Callable[[], bool]) -> None:
        while not done() and time.monotonic() < self.deadline:
            time.sleep(0.05)


@contextmanager
def run_events(service: SimulatorService) -> Iterator[RunEvents]:
    """Listen on the runs channel as a live pane does; connected when the block starts."""
    events = RunEvents()
    listener = Listener(service.db, [RUNS_CHANNEL], events.got.append, tick_seconds=0.1).start()
    try:
        events.wait(lambda: listener.connected)
        yield events
    finally:
        listener.stop()
