"""How values read on screen: short, and never by colour alone (NO_COLOR must still tell)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from rich.text import Text

from simcore.enums import ApprovalStatus, RunStatus
from simcore.snapshot import Kpi

STATUS_STYLE = {
    RunStatus.QUEUED: "bold",
    RunStatus.RUNNING: "bold cyan",
    RunStatus.SUCCESS: "green",
    RunStatus.PARTIAL_SUCCESS: "yellow",
    RunStatus.FAILED: "bold red",
    RunStatus.TIMEOUT: "red",
    RunStatus.CANCELLED: "dim",
    RunStatus.ERROR: "bold magenta",
}
STATUS_LABEL = {RunStatus.PARTIAL_SUCCESS: "partial"}
APPROVAL_STYLE = {
    ApprovalStatus.PENDING: "bold yellow",
    ApprovalStatus.APPROVED: "green",
    ApprovalStatus.REJECTED: "red",
}


def short_id(value: UUID | str) -> str:
    return str(value)[:8]


def status_text(status: RunStatus) -> Text:
    return Text(STATUS_LABEL.get(status, status.value), style=STATUS_STYLE.get(status, ""))


def approval_text(status: ApprovalStatus | None) -> Text:
    if status is None:
        return Text("-", style="dim")
    return Text(status.value, style=APPROVAL_STYLE.get(status, ""))


def percent(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f}%"


def span(seconds: float | None) -> str:
    """A duration in the shortest form that still reads: 42s, 3m05s, 2h10m, 3d."""
    if seconds is None:
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d"


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, to the unit that matters (5s, 3m, 2h, 4d)."""
    if moment is None:
        return "-"
    s = max(int((now - moment).total_seconds()), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f}ms" if ms < 10_000 else f"{ms / 1000:.1f}s"


def patch_name(slug: str | None, error: str | None = None, language: str | None = None) -> str:
    """``signature_mismatch-resync-clock-python`` reads ``resync-clock`` next to its error."""
    if not slug:
        return "-"
    name = slug
    if error and name.startswith(error + "-"):
        name = name[len(error) + 1 :]
    if language and name.endswith("-" + language):
        name = name[: -len(language) - 1]
    return name or slug


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def kpi_value(kpi: Kpi) -> str:
    if kpi.value is None:
        return "-"
    if kpi.key in ("success_rate", "approval_rate"):
        return percent(kpi.value, 1)
    if kpi.key == "avg_run_seconds":
        return span(kpi.value)
    return f"{kpi.value:.0f}"


def kpi_target(kpi: Kpi) -> str:
    sign = ">" if kpi.comparison.value == "above" else "<"
    if kpi.key in ("success_rate", "approval_rate"):
        target = percent(kpi.target)
    elif kpi.key == "avg_run_seconds":
        target = span(kpi.target)
    else:
        target = f"{kpi.target:.0f}"
    return f"{sign}{target}"


def kpi_mark(kpi: Kpi) -> str:
    """✓ on target, ✗ off target, · nothing to measure yet."""
    return {True: "✓", False: "✗", None: "·"}[kpi.ok]
