"""Charts (textual-plotext): queue depth over the last hour, success rate over 24 hours.

A plot is drawn again only when its data changed: plotext renders the whole figure on each
call, and an idle dashboard must cost next to nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from textual_plotext import PlotextPlot

from simcore.snapshot import SUCCESS_BUCKET, QueuePoint, RatePoint

MARKER = "braille"
BUCKET_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
"""The origin of ``date_bin`` in simcore.dashboard: buckets start on multiples from it."""


class _Chart(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: object = None

    def _changed(self, data: object) -> bool:
        if data == self._data:
            return False
        self._data = data
        return True

    def _frame(self, xlabel: str) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel(xlabel)
        plt.frame(False)


class QueueChart(_Chart):
    """Queued and running runs, minute by minute, over the last hour."""

    def show(self, points: Sequence[QueuePoint], now: datetime, caption: str) -> None:
        # Minutes from the start of the current minute (the last point, "now", floors to 0):
        # between two refreshes in the same minute nothing moves and nothing is drawn again.
        ref = now.replace(second=0, microsecond=0)
        xs = [math.floor((p.at - ref).total_seconds() / 60) for p in points]
        queued = [p.queued for p in points]
        running = [p.running for p in points]
        if not self._changed((xs, queued, running, caption)):
            return
        plt = self.plt
        self._frame(caption)
        if points:
            # Two markers, not two colours: the lines must stay apart with NO_COLOR.
            plt.plot(xs, running, marker="dot")
            plt.plot(xs, queued, marker=MARKER)
            top = max([*queued, *running, 1])
            plt.ylim(0, top)
            plt.yticks(sorted({0, top}))
            plt.xlim(min(xs), 0)
            plt.xticks([-60, -30, 0], ["-60", "-30", "now"])
        self.refresh()


class SuccessChart(_Chart):
    """Finished runs' success rate per 10-minute bucket over the last 24 hours."""

    def show(self, points: Sequence[RatePoint], now: datetime, caption: str) -> None:
        # Hours from the start of the current 10-minute bucket: the points stay put until
        # the next bucket begins.
        ref = now - (now - BUCKET_ORIGIN) % SUCCESS_BUCKET
        data = [
            (round((p.at - ref) / timedelta(hours=1), 3), round(p.success_rate * 100, 1))
            for p in points
            if p.success_rate is not None
        ]
        if not self._changed((data, caption)):
            return
        plt = self.plt
        self._frame(caption)
        plt.ylim(0, 100)
        plt.yticks([0, 50, 100], ["0%", "50%", "100%"])
        plt.xlim(-24, 0)
        plt.xticks([-24, -12, 0], ["-24", "-12", "now"])
        if data:
            plt.scatter([x for x, _ in data], [y for _, y in data], marker=MARKER)
        self.refresh()
