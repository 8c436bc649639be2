"""The dashboard at scale (a benchmark, not a test).

    .venv/bin/python bench/bench_tui.py [--runs 100000] [--idle-seconds 60] [--approvals 20]

On an embedded PostgreSQL of its own (a temporary data folder), it bulk-inserts ``--runs``
finished runs over 30 days with ``generate_series`` (plus approvals and SIRA exports), then
measures, each in a fresh ``simtui`` process running headless at 80x24:

- start to the first full home screen (the first snapshot painted), with the embedded
  database already running (warm) and stopped beforehand (cold: its start is included);
  "start" is the moment the parent spawns the child, so interpreter start-up and imports
  count; the CPU time the child used by then (all threads) is noted too, as other processes
  on the machine sway it less than the wall time, and so is that of the process the
  dashboard forks to read its first snapshot (``simtui.prefetch``);
- CPU time of the dashboard process per minute of idling with every pane live (LISTEN up,
  polling fallback armed, the in-process worker waiting for work): ``time.process_time``
  over ``--idle-seconds``, all threads;
- keypress to commit of an approval: from sending ``enter`` in the note dialog to the
  return of ``approve_patch`` (its transaction committed), ``--approvals`` times.

Bytecode of simcore and simtui is compiled first, as an installed package has it. It also
times ``SimulatorService.dashboard`` alone. Targets: first home screen < 1.0 s warm
and < 1.6 s cold; idle < 1% of one core; approval < 100 ms. The load average is printed
with the results: other processes on the machine slow every figure down.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uuid import UUID

    from simtui.app import SimTUI
    from simtui.messages import HomeReady
    from simtui.widgets.tables import ApprovalsTable

TARGET_WARM_S = 1.0
TARGET_COLD_S = 1.6
TARGET_IDLE_PCT = 1.0
TARGET_APPROVAL_MS = 100.0
BENCH_ACTOR = "ops:bench"

# Runs over the last 30 days, newest first; statuses in the proportions of a healthy fleet.
_RUNS_SQL = """
INSERT INTO sdk_simulation_runs (simulation_id, tenant_type, tenant_id, seed, status, patch_id,
    metrics, run_at, started_at, completed_at, worker_id, attempts, launched_by, log_lines)
SELECT s.id, 'internal', 'default', g, st.status, s.patch_reference,
       jsonb_build_object(
           'success_rate', st.rate, 'avg_latency_ms', 300 + g %% 700, 'total_requests', 100,
           'failed_requests', round(100 * (1 - st.rate)), 'regressions', 0,
           'baseline', jsonb_build_object('success_rate', 0.7)),
       t.at, t.at + interval '5 seconds',
       t.at + interval '5 seconds' + (20 + g %% 100) * interval '1 second',
       'bench-worker', 1, %(actor)s, 40
  FROM generate_series(1, %(runs)s) g
  CROSS JOIN LATERAL (SELECT now() - interval '2 minutes'
                             - (g::float8 / %(runs)s) * interval '30 days' AS at) t
  JOIN (SELECT id, patch_reference, row_number() OVER (ORDER BY id) - 1 AS rn
          FROM sdk_simulations) s ON s.rn = g %% %(sims)s
  CROSS JOIN LATERAL (SELECT
      CASE WHEN g %% 100 < 90 THEN 'success' WHEN g %% 100 < 96 THEN 'failed'
           WHEN g %% 100 < 98 THEN 'partial_success' WHEN g %% 100 < 99 THEN 'cancelled'
           ELSE 'error' END AS status,
      CASE WHEN g %% 100 < 90 THEN 0.9 + (g %% 10) / 100.0 ELSE 0.5 END AS rate) st
"""

_APPROVALS_SQL = """
INSERT INTO sdk_patch_approvals (simulation_run_id, patch_id, tenant_type, tenant_id, status,
    requested_by, decided_by, decided_at, created_at, updated_at)
SELECT r.id, r.patch_id, 'internal', 'default',
       CASE WHEN r.n <= %(pending)s THEN 'pending'
            WHEN r.n %% 7 = 0 THEN 'rejected' ELSE 'approved' END,
       %(actor)s,
       CASE WHEN r.n > %(pending)s THEN 'ops:someone' END,
       CASE WHEN r.n > %(pending)s THEN r.completed_at + interval '1 hour' END,
       r.completed_at, r.completed_at
  FROM (SELECT id, patch_id, completed_at, row_number() OVER (ORDER BY run_at DESC) AS n
          FROM sdk_simulation_runs
         WHERE status = 'success' AND patch_id IS NOT NULL AND seed %% 5 = 0) r
"""

_SIRA_SQL = """
INSERT INTO sdk_anonymized_errors (run_id, error_signature, sdk_language, frequency,
    context_hash, exported_to_sira, exported_at, created_at)
SELECT NULL, 'signature_mismatch:401', 'node', 0.3, encode(sha256(g::text::bytea), 'hex'),
       g %% 2 = 0, CASE WHEN g %% 2 = 0 THEN now() - (g %% 2880) * interval '1 minute' END,
       now() - (g %% 2880) * interval '1 minute'
  FROM generate_series(1, %(errors)s) g
"""


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


# -- set-up (parent) ------------------------------------------------------------------------


def prepare(data_dir: Path, runs: int, pending: int) -> str:
    from simcore.config import Settings
    from simcore.service import SimulatorService
    from simcore.store import embedded
    from simcore.templates import TEMPLATES
    from simtui.demo import DEMO_LANGUAGES

    url = embedded.start(data_dir)
    settings = Settings(database_url=None, data_dir=data_dir)
    with SimulatorService(settings) as service:
        from simcore.auth import Principal
        from simcore.model import Role
        from simcore.patches import default_patch

        bench = Principal("bench", Role.OPS)
        for template in TEMPLATES.values():
            for language in DEMO_LANGUAGES:
                patch = default_patch(template.scenario.error, language)
                service.create_simulation(
                    bench,
                    {
                        "name": f"{template.title} ({language.value})",
                        "sdk_language": language,
                        "scenario": template.scenario,
                        "patch_reference": patch.id if patch else None,
                    },
                )
        sims = len(TEMPLATES) * len(DEMO_LANGUAGES)
        started = time.perf_counter()
        with service.db.connect(autocommit=True) as conn:
            # A bulk load: no NOTIFY per row, no by-hand journal trigger.
            conn.execute("SET session_replication_role = replica")
            params = {"runs": runs, "sims": sims, "actor": BENCH_ACTOR}
            conn.execute(_RUNS_SQL, params)
            conn.execute(_APPROVALS_SQL, {"pending": pending, "actor": BENCH_ACTOR})
            conn.execute(_SIRA_SQL, {"errors": max(runs // 5, 1000)})
            conn.execute("SET session_replication_role = DEFAULT")
            conn.execute("VACUUM ANALYZE")
        print(f"loaded {runs:,} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        timings = []
        for _ in range(20):
            t = time.perf_counter()
            service.dashboard(bench)
            timings.append(time.perf_counter() - t)
        print(f"snapshot: {json.dumps(_stats(timings))}", file=sys.stderr)
    return url


def compile_sources() -> None:
    """Bytecode for simcore and simtui, as an installed package has it (pip compiles them).

    A source tree compiles a module on its first import after an edit, and with
    PYTHONDONTWRITEBYTECODE set on every import: the starts would time the compiler.
    """
    import compileall

    import simcore
    import simtui

    for package in (simcore, simtui):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))],
        "max": ordered[-1],
        "n": len(ordered),
    }


def spawn(
    mode: str, data_dir: Path, extra: list[str] | None = None
) -> tuple[float, dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMTUI_")}
    env.update(SIMTUI_DATA_DIR=str(data_dir), SIMTUI_SANDBOX="process", TERM="xterm-256color")
    start = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, *(extra or [])],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return start, result


# -- children: one fresh dashboard process each ------------------------------------------------


def child_start(idle_seconds: float) -> None:
    # Started as the simtui command starts (simtui.launch.prepare), with a subclass of the
    # app that notes the time of the first full home screen.
    from simtui.launch import prepare

    result: dict[str, Any] = {}
    app = prepare([], lambda: _bench_app(result, idle_seconds))
    result["imported"] = time.time()
    app.run(headless=True, size=(80, 24))
    app.session.close()
    print(json.dumps(result))


def _bench_app(result: dict[str, Any], idle_seconds: float) -> type[SimTUI]:
    from simtui.app import SimTUI

    class Bench(SimTUI):
        def on_home_ready(self, message: HomeReady) -> None:
            result["ready"] = time.time()
            result["cpu_ready"] = time.process_time()  # all threads: less noisy than the wall
            # The prefetch child's, reaped by now (simtui.prefetch): the start's CPU in all.
            times = os.times()
            result["cpu_child"] = times.children_user + times.children_system
            if idle_seconds <= 0:
                self.exit()
                return
            self.set_timer(5.0, self._measure)

        def _measure(self) -> None:
            result["cpu_start"] = time.process_time()
            result["wall_start"] = time.monotonic()
            self.set_timer(idle_seconds, self._done)

        def _done(self) -> None:
            result["cpu"] = time.process_time() - result["cpu_start"]
            result["wall"] = time.monotonic() - result["wall_start"]
            result["worker"] = self.session.in_process_worker
            result["live"] = self.session.listening
            self.exit()

    return Bench


def _shown_pending(table: ApprovalsTable, approval_id: UUID) -> bool:
    from simcore.enums import ApprovalStatus

    shown = table.approval_of.get(str(approval_id))
    return shown is not None and shown.status is ApprovalStatus.PENDING


def _first_pending_row(table: ApprovalsTable) -> int:
    from simcore.enums import ApprovalStatus

    for index, row in enumerate(table.ordered_rows):
        shown = table.approval_of.get(str(row.key.value))
        if shown is not None and shown.status is ApprovalStatus.PENDING:
            return index
    raise SystemExit("no pending approval left in the queue")


def child_approvals(count: int) -> None:
    from simcore.config import load_settings
    from simcore.enums import ApprovalStatus
    from simtui.app import SimTUI
    from simtui.screens.note import NoteScreen
    from simtui.session import Session
    from simtui.widgets.tables import ApprovalsTable

    session = Session.from_settings(load_settings(), executor_factory=None)
    committed: list[float] = []

    async def main() -> list[float]:
        app = SimTUI(session)
        latencies: list[float] = []
        async with app.run_test(size=(160, 48)) as pilot:
            while app.home.snapshot is None:
                await pilot.pause(0.05)
            simulator, _ = session.open()
            real = simulator.approve_patch

            def timed(*args: Any, **kwargs: Any) -> Any:
                out = real(*args, **kwargs)
                committed.append(time.perf_counter())
                return out

            simulator.approve_patch = timed  # type: ignore[method-assign]
            table = app.home.query_one(ApprovalsTable)
            table.focus()
            for _ in range(count):
                table.move_cursor(row=_first_pending_row(table))
                chosen = table.selected_approval
                assert chosen is not None and chosen.status is ApprovalStatus.PENDING
                await pilot.press("a")
                while not isinstance(app.screen, NoteScreen):
                    await pilot.pause(0.01)
                seen = len(committed)
                pressed = time.perf_counter()
                await pilot.press("enter")
                while len(committed) == seen:
                    await asyncio.sleep(0.001)
                latencies.append(committed[-1] - pressed)
                # Wait for the refresh before the next one: the approval is shown decided or
                # gone (the queue shows at most 50 rows, so the count alone may not move).
                while _shown_pending(table, chosen.id):
                    await pilot.pause(0.02)
        return latencies

    latencies = asyncio.run(main())
    session.close()
    print(json.dumps({"latencies": latencies}))


# -- the report ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--approvals", type=int, default=20)
    parser.add_argument("--warm", type=int, default=5, help="warm starts to time")
    parser.add_argument("--cold", type=int, default=3, help="cold starts to time")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-arg", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "start":
        child_start(args.child_arg)
        return
    if args.child == "approvals":
        child_approvals(int(args.child_arg))
        return

    from simcore.store import embedded

    compile_sources()
    data_dir = Path(tempfile.mkdtemp(prefix="simtui-bench-"))
    try:
        prepare(data_dir, args.runs, pending=args.approvals + 5)
        warm = []
        for _ in range(args.warm):
            start, out = spawn("start", data_dir)
            warm.append(
                (out["ready"] - start, out["imported"] - start, out["cpu_ready"], out["cpu_child"])
            )
        cold = []
        for _ in range(args.cold):
            embedded.stop(data_dir)
            start, out = spawn("start", data_dir)
            cold.append(out["ready"] - start)
        _, idle = spawn("start", data_dir, ["--child-arg", str(args.idle_seconds)])
        _, approvals = spawn("approvals", data_dir, ["--child-arg", str(args.approvals)])
        report(args, warm, cold, idle, approvals["latencies"])
    finally:
        embedded.stop(data_dir)
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def report(
    args: argparse.Namespace,
    warm: list[tuple[float, float, float, float]],
    cold: list[float],
    idle: dict[str, Any],
    approvals: list[float],
) -> None:
    warm_s = statistics.median(w for w, _, _, _ in warm)
    imports_s = statistics.median(i for _, i, _, _ in warm)
    cpu_s = statistics.median(c for _, _, c, _ in warm)
    child_s = statistics.median(c for _, _, _, c in warm)
    cold_s = statistics.median(cold)
    idle_pct = 100 * idle["cpu"] / idle["wall"]
    approval = _stats([x * 1000 for x in approvals])
    rows = [
        (
            "first full home screen, warm",
            f"< {TARGET_WARM_S} s",
            f"{warm_s:.2f} s",
            f"median of {len(warm)}, min {min(w for w, _, _, _ in warm):.2f} s; "
            f"{imports_s:.2f} s to the app's start; CPU {cpu_s:.2f} s, "
            f"+ {child_s:.2f} s in the prefetch child",
            warm_s < TARGET_WARM_S,
        ),
        (
            "first full home screen, cold",
            f"< {TARGET_COLD_S} s",
            f"{cold_s:.2f} s",
            f"median of {len(cold)}, min {min(cold):.2f} s; database start included",
            cold_s < TARGET_COLD_S,
        ),
        (
            "idle CPU, live panes",
            f"< {TARGET_IDLE_PCT}%",
            f"{idle_pct:.2f}%",
            f"{idle['cpu']:.2f} s CPU in {idle['wall']:.0f} s; worker in-process "
            f"{idle['worker']}, LISTEN {idle['live']}",
            idle_pct < TARGET_IDLE_PCT,
        ),
        (
            "approval, keypress to commit",
            f"< {TARGET_APPROVAL_MS:.0f} ms",
            f"{approval['median']:.0f} ms",
            f"p95 {approval['p95']:.0f} ms, max {approval['max']:.0f} ms, n={approval['n']:.0f}",
            approval["median"] < TARGET_APPROVAL_MS,
        ),
    ]
    print(f"simtui dashboard bench: {args.runs:,} runs; load average {load_average()}")
    print(f"{'metric':<30} {'target':<9} {'measured':<9} {'':<4} notes")
    for name, target, measured, notes, ok in rows:
        print(f"{name:<30} {target:<9} {measured:<9} {'ok' if ok else 'MISS':<4} {notes}")


if __name__ == "__main__":
    main()
