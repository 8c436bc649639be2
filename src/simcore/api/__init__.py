"""The runbook's HTTP API (FastAPI): ``create_app(settings)``; served by `simcore serve`.

The application is imported on first use, so that the remote client, which shares the
request and response models of ``simcore.api.schemas``, does not load FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simcore.api.app import create_app, create_app_from_env

__all__ = ["create_app", "create_app_from_env"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from simcore.api import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
