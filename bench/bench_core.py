"""Throughput of the simulation core in the process sandbox (a benchmark, not a test).

    .venv/bin/python bench/bench_core.py [--ops 20000] [--repeat 3]

Two figures per SDK language, each the best of ``--repeat`` runs:

- simulated operations per second: ``2 x ops`` (baseline + patched phase) over the wall time
  of ``run_simulation`` on the signature_mismatch template scaled to ``--ops`` operations,
  with its good patch (sandbox start-up included);
- simulated time over wall time on the timeout template as the runbook writes it (200 ops,
  1 s latency, 10 s timeouts), start-up included.

Targets: >= 5,000 simulated ops/s and >= 1,000x real time.

Wall time depends on what else the machine runs, so the table also gives the CPU time per
simulated operation, from the same best run: this process (every thread; it plays the
patched phase's gateway) and its children, from their resource usage once reaped (both
runners' process trees, and the forked copy of this process that plays the baseline's
gateway: see simcore.gateway.forked).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import NamedTuple

from simcore.model import RunStatus, Scenario
from simcore.patches import default_patch
from simcore.runner import Report, run_simulation
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES

OPS_TARGET = 5_000
RATIO_TARGET = 1_000


class Timing(NamedTuple):
    wall_s: float
    worker_cpu_s: float
    children_cpu_s: float
    report: Report


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(backend: ProcessBackend, scenario: Scenario, language: str) -> Timing:
    patch = default_patch(scenario.error, language)
    started, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
    report = run_simulation(scenario, language, 1, patch, backend, max_run_time_ms=600_000)
    elapsed = time.perf_counter() - started
    worker_cpu, children_cpu = time.process_time() - cpu, _children_cpu() - children
    if report.status is not RunStatus.SUCCESS:
        raise SystemExit(f"{language}: unexpected {report.status}: {report.reasons}")
    return Timing(elapsed, worker_cpu, children_cpu, report)


class Throughput(NamedTuple):
    ops_per_s: float
    worker_us_per_op: float
    children_us_per_op: float


def ops_per_second(backend: ProcessBackend, language: str, ops: int, repeat: int) -> Throughput:
    scenario = TEMPLATES["signature_mismatch"].scenario.model_copy(update={"total_requests": ops})
    best = min((_timed(backend, scenario, language) for _ in range(repeat)),
               key=lambda t: t.wall_s)  # fmt: skip
    played = 2 * ops
    return Throughput(played / best.wall_s, best.worker_cpu_s / played * 1e6,
                      best.children_cpu_s / played * 1e6)  # fmt: skip


def time_ratio(backend: ProcessBackend, language: str, repeat: int) -> float:
    scenario = TEMPLATES["timeout"].scenario
    ratios: list[float] = []
    for _ in range(repeat):
        timing = _timed(backend, scenario, language)
        metrics = timing.report.metrics
        simulated_ms = metrics["simulated_ms"] + metrics["baseline"]["simulated_ms"]
        ratios.append(simulated_ms / 1000 / timing.wall_s)
    return max(ratios)


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20_000, help="operations per phase")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best kept)")
    args = parser.parse_args()

    backend = ProcessBackend()
    print(f"sandbox: {backend.check()}", file=sys.stderr)
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    rows = []
    for language in ("python", "node"):
        rows.append((language, ops_per_second(backend, language, args.ops, args.repeat),
                     time_ratio(backend, language, args.repeat)))  # fmt: skip

    print(f"{'runner':<8} {'simulated ops/s':>16} {'target':>8} {'worker cpu':>13} "
          f"{'children cpu':>13} {'sim/wall time':>14} {'target':>8}")  # fmt: skip
    ok = True
    for language, throughput, ratio in rows:
        ops = throughput.ops_per_s
        ops_ok, ratio_ok = ops >= OPS_TARGET, ratio >= RATIO_TARGET
        ok = ok and ops_ok and ratio_ok
        ops_cell = f"{ops:>16,.0f} {'>=' + format(OPS_TARGET, ','):>8} {_mark(ops_ok):<4}"
        cpu_cell = (f"{throughput.worker_us_per_op:>7.1f} µs/op "
                    f"{throughput.children_us_per_op:>7.1f} µs/op")  # fmt: skip
        ratio_cell = f"{ratio:>12,.0f}x {'>=' + format(RATIO_TARGET, ','):>8} {_mark(ratio_ok)}"
        print(f"{language:<8} {ops_cell} {cpu_cell} {ratio_cell}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
