"""What the command modules share: the service for this environment, output helpers."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from simcore.auth import Principal, local_principal
from simcore.config import load_settings
from simcore.facade import Simulator
from simcore.service import SimulatorService


@contextmanager
def local_service() -> Iterator[tuple[Simulator, Principal]]:
    """The service for this environment, with the principal acting through it.

    With ``SIMTUI_API_URL`` set this is the API (remote mode) and the principal is the one
    ``SIMTUI_TOKEN`` stands for; otherwise this machine's database and the local user as ops.
    """
    settings = load_settings()
    if settings.api_url:
        from simcore.client import RemoteService

        with RemoteService.from_settings(settings) as remote:
            yield remote, remote.whoami()
        return
    service = SimulatorService(settings).start()
    try:
        yield service, local_principal()
    finally:
        service.close()


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def age(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    seconds = int((datetime.now(UTC) - moment).total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def percent(value: Any) -> str:
    return "-" if value is None else f"{float(value) * 100:.1f}%"
