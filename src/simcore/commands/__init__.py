"""Command groups of `simcore`; each module has ``register(subparsers)``."""

from __future__ import annotations

from types import ModuleType

from simcore.commands import (
    checklist,
    db,
    doctor,
    images,
    journal,
    patches,
    redact,
    rollout,
    run,
    runs,
    scenario,
    serve,
    sim,
    sira,
    token,
    worker,
)

COMMAND_MODULES: tuple[ModuleType, ...] = (
    db,
    doctor,
    images,
    scenario,
    sim,
    runs,
    patches,
    journal,
    worker,
    run,
    redact,
    serve,
    token,
    sira,
    rollout,
    checklist,
)
