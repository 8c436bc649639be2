"""KPI tiles and the alert banner: the runbook's targets and alerts, stated in words.

Every state is written out (✓/✗, "▲ CRITICAL") so that it reads the same with NO_COLOR; colour
only repeats it.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from simcore.snapshot import Alert, Kpi
from simtui import format as fmt


class KpiTile(Static):
    """One KPI: value and mark on the first line, target and window on the second."""

    def __init__(self, key: str) -> None:
        super().__init__("", id=f"kpi-{key}", classes="kpi", markup=False)
        self.key = key
        self._shown: tuple[str, str, bool | None] | None = None

    def show(self, kpi: Kpi) -> None:
        line1 = f"{kpi.label} {fmt.kpi_value(kpi)} {fmt.kpi_mark(kpi)}"
        line2 = f"{fmt.kpi_target(kpi)} · {kpi.window}"
        if self._shown == (line1, line2, kpi.ok):
            return
        self._shown = (line1, line2, kpi.ok)
        self.set_class(kpi.ok is True, "-ok")
        self.set_class(kpi.ok is False, "-bad")
        self.set_class(kpi.ok is None, "-none")
        self.update(Text(f"{line1}\n{line2}"))


class KpiBar(Horizontal):
    KEYS = ("success_rate", "avg_run_seconds", "queue_depth", "approval_rate", "sira_exports")

    def compose(self) -> ComposeResult:
        for key in self.KEYS:
            yield KpiTile(key)

    def show(self, kpis: Sequence[Kpi]) -> None:
        by_key = {k.key: k for k in kpis}
        for tile in self.query(KpiTile):
            if tile.key in by_key:
                tile.show(by_key[tile.key])


class AlertBanner(Static):
    """Shown only while one of the runbook's alerts would fire."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._shown: tuple[str, ...] = ()
        self.display = False

    def show(self, alerts: Sequence[Alert]) -> None:
        lines = tuple(f"▲ {a.severity.upper()} {a.name}: {a.summary}" for a in alerts if a.firing)
        if lines == self._shown:
            return
        self._shown = lines
        self.display = bool(lines)
        self.set_class(any(a.firing and a.severity == "critical" for a in alerts), "-critical")
        self.update(Text("\n".join(lines)))
