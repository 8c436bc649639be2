"""Tables that are updated in place: keyed rows, changed cells only, the cursor kept on its row.

Clearing and refilling a table on every refresh loses the cursor and the scroll position
and redraws everything; here a refresh removes rows that left, updates the cells that
changed (``update_cell``), adds the new rows and re-sorts only when the order changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

from simcore.approvals import Approval
from simcore.enums import ApprovalStatus
from simcore.snapshot import LanguageRate, RecentRun
from simtui import format as fmt
from simtui.rollouts import Canary

Cell = str | Text


@dataclass(frozen=True, slots=True)
class Ordered:
    """A cell that shows ``text`` and sorts by ``order`` (DataTable sorts on cell values)."""

    text: str
    order: float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Row:
    key: str
    cells: tuple[Cell | Ordered, ...]
    order: float
    """Rows are shown by descending ``order`` (newest first)."""


def _plain(cell: Cell | Ordered) -> Text | Ordered:
    """A str cell as the Text that DataTable would make of it, made once, without markup.

    DataTable reads a str cell as markup each time it measures or draws it (rich's markup
    parser, and its emoji table on first use): a table's first fill measures every cell of
    every row. No cell here is markup: a bracket in a value is shown as it is.
    """
    if isinstance(cell, str):
        return Text(cell, no_wrap=True, end="")  # as DataTable's formatter, for one-line rows
    return cell


def _same(a: object, b: object) -> bool:
    if isinstance(a, Text) and isinstance(b, Text):
        return a.plain == b.plain and a.style == b.style
    return a == b


class NavTable(DataTable[Any]):
    """A row-cursor table with vi keys; ``enter`` opens the row (shown in the footer)."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open", id="open"),
        Binding("j", "cursor_down", "Down", show=False, id="down"),
        Binding("k", "cursor_up", "Up", show=False, id="up"),
        Binding("g", "scroll_top", "Top", show=False, id="top"),
        Binding("G", "scroll_bottom", "Bottom", show=False, id="bottom"),
    ]

    def __init__(self, columns: Sequence[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._columns_spec = tuple(columns)
        self._order: dict[str, float] = {}
        self._shown: dict[str, Row] = {}
        self._built: dict[str, tuple[object, Row]] = {}

    def on_mount(self) -> None:
        for label, key in self._columns_spec:
            # Text: a str label would be parsed as markup (see _plain).
            self.add_column(Text(label), key=key)

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except CellDoesNotExist:
            return None
        return key.value

    def select_key(self, key: str) -> bool:
        """Move the cursor to the row ``key``; False if there is no such row (yet)."""
        try:
            index = self.get_row_index(key)
        except Exception:  # RowDoesNotExist: the row is not shown (filtered, not loaded)
            return False
        self.move_cursor(row=index, scroll=True)
        return True

    def sync(self, rows: Sequence[Row]) -> bool:
        """Show exactly ``rows``, touching only what changed; returns whether anything did."""
        selected = self.selected_key
        wanted = {row.key: row for row in rows}
        changed = False
        for key in [k.value for k in list(self.rows) if k.value not in wanted]:
            assert key is not None
            self.remove_row(key)
            self._order.pop(key, None)
            self._shown.pop(key, None)
            changed = True
        column_keys = [key for _, key in self._columns_spec]
        reorder = False
        for row in rows:
            if self._shown.get(row.key) is row:
                continue  # the very row shown last time: nothing to compare
            self._shown[row.key] = row
            cells = [_plain(cell) for cell in row.cells]
            if row.key in self._order:
                current = self.get_row(row.key)
                for column, old, new in zip(column_keys, current, cells, strict=True):
                    if not _same(old, new):
                        # Widen a column for a longer value, never narrow it: narrowing
                        # re-measures every cell of the column, for each cell updated.
                        wider = len(str(new)) > len(str(old))
                        self.update_cell(row.key, column, new, update_width=wider)
                        changed = True
                if self._order[row.key] != row.order:
                    reorder = True
            else:
                self.add_row(*cells, key=row.key)
                changed = reorder = True
            self._order[row.key] = row.order
        if reorder:
            order = self._order
            self._sort_by_order(order)
        if selected is not None and selected in wanted and self.selected_key != selected:
            self.select_key(selected)
        return changed

    def built(self, key: str, source: object, build: Callable[[], Row]) -> Row:
        """The row for ``source``, built again only when ``source`` changed.

        Returning the same Row object lets ``sync`` skip the row without looking at it: an
        idle refresh of fifty unchanged runs then costs fifty comparisons, not five hundred
        cells.
        """
        cached = self._built.get(key)
        if cached is not None and cached[0] == source:
            return cached[1]
        row = build()
        self._built[key] = (source, row)
        return row

    def _sort_by_order(self, order: dict[str, float]) -> None:
        # DataTable sorts on cell values only: the first column carries an Ordered cell.
        first = self._columns_spec[0][1]

        def by_order(cell: object) -> float:
            return cell.order if isinstance(cell, Ordered) else 0.0

        self.sort(first, key=by_order, reverse=True)

    def action_scroll_top(self) -> None:
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(row=max(self.row_count - 1, 0))


RUN_COLUMNS = (
    ("age", "age"),
    ("status", "status"),
    ("simulation", "simulation"),
    ("lang", "lang"),
    ("succ", "success"),
    ("lat", "latency"),
    ("time", "time"),
    ("approval", "approval"),
    ("patch", "patch"),
    ("run", "run"),
)


class RunsTable(NavTable):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(RUN_COLUMNS, **kwargs)

    @staticmethod
    def matches(run: RecentRun, needle: str) -> bool:
        if not needle:
            return True
        hay = " ".join(
            str(x)
            for x in (
                run.id,
                run.status.value,
                run.simulation_name,
                run.sdk_language,
                run.error,
                run.patch_slug,
                run.approval_status.value if run.approval_status else "",
                run.launched_by,
            )
        ).lower()
        return all(part in hay for part in needle.lower().split())

    def show(self, runs: Sequence[RecentRun], now: datetime, needle: str = "") -> bool:
        rows = []
        for r in runs:
            if not self.matches(r, needle):
                continue
            age = fmt.age(r.run_at, now)
            rows.append(self.built(str(r.id), (r, age), partial(self._row, r, age)))
        return self.sync(rows)

    @staticmethod
    def _row(r: RecentRun, age: str) -> Row:
        return Row(
            str(r.id),
            (
                Ordered(age, r.run_at.timestamp()),
                fmt.status_text(r.status),
                Text(fmt.clip(r.simulation_name, 20)),
                r.sdk_language,
                fmt.percent(r.success_rate),
                fmt.latency(r.avg_latency_ms),
                fmt.span(r.duration_seconds),
                fmt.approval_text(r.approval_status),
                Text(fmt.clip(fmt.patch_name(r.patch_slug, r.error, r.sdk_language), 22)),
                fmt.short_id(r.id),
            ),
            r.run_at.timestamp(),
        )


APPROVAL_COLUMNS = (
    ("age", "age"),
    ("state", "state"),
    ("canary", "canary"),
    ("simulation", "simulation"),
    ("lang", "lang"),
    ("patch", "patch"),
    ("base→patched", "rates"),
    ("by", "by"),
    ("run", "run"),
)

QUEUE_RANK = {
    ApprovalStatus.STAGED: 3,
    ApprovalStatus.PENDING: 2,
    ApprovalStatus.DEPLOYED: 1,
}
"""Staged patches first (a canary on live traffic wants watching), then the decisions to
make, then what is deployed; newest first within each."""

STATE_STYLE = {
    ApprovalStatus.PENDING: "bold yellow",
    ApprovalStatus.APPROVED: "green",
    ApprovalStatus.STAGED: "bold cyan",
    ApprovalStatus.DEPLOYED: "bold green",
    ApprovalStatus.ROLLED_BACK: "red",
}


def state_text(a: Approval) -> Text:
    """``pending``, ``staged 5%``, ``deployed 100%``: the rollout percentage while it has one."""
    label = a.status.value
    if a.status in (ApprovalStatus.STAGED, ApprovalStatus.DEPLOYED):
        label += f" {a.rollout_percentage}%"
    return Text(label, style=STATE_STYLE.get(a.status, ""))


class ApprovalsTable(NavTable):
    """The approval queue: pending decisions, and the patches in rollout with their canary."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(APPROVAL_COLUMNS, **kwargs)
        self.run_of: dict[str, str] = {}
        """Approval id -> run id: the keys a/r/enter act on."""
        self.approval_of: dict[str, Approval] = {}
        """Approval id -> the approval as shown: its state decides what s/P/b may do."""

    def show(
        self,
        approvals: Sequence[Approval],
        now: datetime,
        canary: Mapping[str, Canary] | None = None,
    ) -> bool:
        self.run_of = {str(a.id): str(a.simulation_run_id) for a in approvals}
        self.approval_of = {str(a.id): a for a in approvals}
        rows = []
        for a in approvals:
            age = fmt.age(a.created_at, now)
            seen = (canary or {}).get(str(a.simulation_run_id))
            rows.append(self.built(str(a.id), (a, age, seen), partial(self._row, a, age, seen)))
        return self.sync(rows)

    @staticmethod
    def _row(a: Approval, age: str, canary: Canary | None) -> Row:
        order = QUEUE_RANK.get(a.status, 0) * 1e10 + a.created_at.timestamp()
        return Row(
            str(a.id),
            (
                Ordered(age, order),
                state_text(a),
                Text(canary.label) if canary is not None else Text("-", style="dim"),
                Text(fmt.clip(a.simulation_name or "-", 20)),
                a.sdk_language or "-",
                Text(fmt.clip(fmt.patch_name(a.patch_slug, a.error, a.sdk_language), 20)),
                f"{fmt.percent(a.baseline_success_rate)}→{fmt.percent(a.success_rate)}",
                Text(a.requested_by),
                fmt.short_id(a.simulation_run_id),
            ),
            order,
        )

    @property
    def selected_run(self) -> str | None:
        key = self.selected_key
        return self.run_of.get(key) if key else None

    @property
    def selected_approval(self) -> Approval | None:
        key = self.selected_key
        return self.approval_of.get(key) if key else None


LANGUAGE_COLUMNS = (
    ("lang", "lang"),
    ("runs", "runs"),
    ("ok", "ok"),
    ("req", "req"),
)


class LanguageTable(NavTable):
    """The runbook's "success rate par SDK language" over 7 days; enter filters the runs."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(LANGUAGE_COLUMNS, **kwargs)

    def show(self, rates: Sequence[LanguageRate]) -> bool:
        count = len(rates)
        rows = [
            Row(
                r.sdk_language,
                (
                    Ordered(r.sdk_language, float(count - i)),
                    str(r.total_runs),
                    fmt.percent(r.success_rate),
                    fmt.percent(r.avg_success_rate),
                ),
                float(count - i),
            )
            for i, r in enumerate(rates)
        ]
        return self.sync(rows)
