"""Command groups of `simcore`; each module has ``register(subparsers)``."""

from __future__ import annotations

from types import ModuleType

from simcore.commands import db, doctor, scenario

COMMAND_MODULES: tuple[ModuleType, ...] = (db, doctor, scenario)
