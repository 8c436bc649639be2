"""Latency of one run in the docker sandbox, cold and from the warm pool (a benchmark, not a test).

    .venv/bin/python bench/bench_docker.py [--repeat 7] [--languages python,node]

One run: the signature_mismatch (HMAC) template, 100 requests, its good patch, both phases
(baseline then patched), measured end to end around ``run_simulation``, until its report is
ready: container start, the wire protocol over the attach connection, the runner's exit. A run
that ends normally does not wait for the engine to remove its stopped container (the backend's
reaper does that in the background); one that does not is inspected and removed first.

- bare: ``docker run --rm --network none`` with the sandbox's hardening flags and the image's
  interpreter doing nothing (``python3 -c pass``, ``node -e 0``), timed around the CLI. It is
  measured in the same benchmark run, interleaved with the others.
- cold: a backend without a pool: create, attach, start, run, remove.
- warm: a backend with a pool of 2; before each timed run the pool is full again (the steady
  state of a worker whose runs do not arrive faster than the pool refills).

Every measurement starts with a full pool, no removal pending and half a second of quiet, in a
shuffled order of the columns each round.
- process: the process sandbox on the same run, for reference.

Targets: cold <= 1.5x bare, warm <= 0.5x bare (medians over ``--repeat`` runs).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time

from simcore.images import image_for
from simcore.model import RunStatus
from simcore.patches import default_patch
from simcore.runner import run_simulation
from simcore.sandbox.base import Sandbox, SandboxBackend, SandboxExit, SandboxSpec
from simcore.sandbox.docker import SANDBOX_UID, DockerBackend
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES

COLD_TARGET = 1.5
WARM_TARGET = 0.5
BARE_COMMAND = {"python": ("python3", "-c", "pass"), "node": ("node", "-e", "0")}
HARDENED = (
    "--network", "none", "--read-only", "--cap-drop", "ALL",
    "--security-opt", "no-new-privileges", "--user", f"{SANDBOX_UID}:{SANDBOX_UID}",
)  # fmt: skip


def bare(language: str) -> float:
    argv = ["docker", "run", "--rm", *HARDENED, image_for(language), *BARE_COMMAND[language]]
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return time.perf_counter() - started


class _Timed:
    """A sandbox that notes when each stage of the run ends (for the breakdown table)."""

    def __init__(self, inner: Sandbox, marks: dict[str, float]) -> None:
        self.inner = inner
        self.marks = marks

    @property
    def deadline_hit(self) -> bool:
        return self.inner.deadline_hit

    def send(self, data: bytes) -> None:
        if data.startswith(b'{"type":"bye"'):
            self.marks["protocol"] = time.perf_counter()
        self.inner.send(data)

    def recv(self) -> bytes:
        line = self.inner.recv()
        if not line:
            self.marks.setdefault("exit", time.perf_counter())
        return line

    def kill_after(self, seconds: float) -> None:
        self.inner.kill_after(seconds)

    def kill(self) -> None:
        self.inner.kill()

    def close(self) -> SandboxExit:
        info = self.inner.close()
        self.marks.setdefault("close", time.perf_counter())
        return info


class _TimedBackend:
    def __init__(self, inner: SandboxBackend, marks: dict[str, float]) -> None:
        self.inner = inner
        self.name = inner.name
        self.marks = marks

    def check(self) -> str:
        return self.inner.check()

    def start(self, spec: SandboxSpec) -> Sandbox:
        sandbox = self.inner.start(spec)
        self.marks["start"] = time.perf_counter()
        return _Timed(sandbox, self.marks)


STAGES = ("start", "protocol", "exit", "close")


def one_run(
    backend: SandboxBackend, language: str, seed: int, stages: dict[str, list[float]] | None = None
) -> float:
    scenario = TEMPLATES["signature_mismatch"].scenario
    assert scenario.total_requests == 100
    patch = default_patch(scenario.error, language)
    marks: dict[str, float] = {}
    started = time.perf_counter()
    report = run_simulation(scenario, language, seed, patch, _TimedBackend(backend, marks), 60_000)
    elapsed = time.perf_counter() - started
    if report.status is not RunStatus.SUCCESS:
        raise SystemExit(f"{backend.name} {language}: unexpected {report.status}: {report.reasons}")
    if stages is not None:
        previous = started
        for stage in STAGES:
            stages.setdefault(stage, []).append(marks[stage] - previous)
            previous = marks[stage]
    return elapsed


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


COLUMNS = ("bare", "cold", "warm", "process")
SETTLE_S = 0.5
Times = dict[str, list[float]]


def measure(
    language: str, repeat: int, cold: DockerBackend, warm: DockerBackend, process: ProcessBackend
) -> tuple[Times, dict[str, Times]]:
    """``repeat`` rounds of the four columns; the times per column and the stages of the
    docker runs."""
    # One untimed round first: the images' pages in the cache, the pool activated.
    bare(language)
    one_run(cold, language, 0)
    one_run(process, language, 0)
    times: Times = {name: [] for name in COLUMNS}
    stages: dict[str, Times] = {"cold": {}, "warm": {}}
    order = random.Random(language)
    for seed in range(1, repeat + 1):
        # Interleaved, in a different order each round: the load of the machine, and the
        # engine's cleanup after the previous column, weigh on every column alike.
        for name in order.sample(COLUMNS, len(COLUMNS)):
            # No refill in the background while a column is timed: a full pool first, then
            # a moment for the engine to finish with the containers it just started/removed.
            if not warm.warm_up(language, timeout=60):
                raise SystemExit(f"{language}: the warm pool did not fill in 60 s")
            for backend in (cold, warm):
                backend.wait_removals(timeout=60)
            time.sleep(SETTLE_S)
            if name == "bare":
                elapsed = bare(language)
            elif name == "process":
                elapsed = one_run(process, language, seed)
            else:
                elapsed = one_run(cold if name == "cold" else warm, language, seed, stages[name])
            times[name].append(elapsed)
    return times, stages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per column")
    parser.add_argument("--languages", default="python,node")
    args = parser.parse_args()
    languages = [lang for lang in args.languages.split(",") if lang]

    cold_backend = DockerBackend(warm_pool=0)
    warm_backend = DockerBackend(warm_pool=2)
    process_backend = ProcessBackend()
    print(f"sandbox: {warm_backend.check()}", file=sys.stderr)
    print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.2f}",
          file=sys.stderr)  # fmt: skip
    results = []
    try:
        for language in languages:
            times, stages = measure(language, args.repeat, cold_backend, warm_backend,
                                    process_backend)  # fmt: skip
            results.append((language, times, stages))
    finally:
        cold_backend.close()
        warm_backend.close()
    print(f"load average after: {os.getloadavg()[0]:.2f}", file=sys.stderr)

    print(f"medians over {args.repeat} runs, milliseconds (min-max in brackets)")
    print(f"{'runner':<7} {'bare':>13} {'cold':>13} {'cold/bare':>10} {'target':>7}  "
          f"{'warm':>13} {'warm/bare':>10} {'target':>7}  {'process':>13}")  # fmt: skip
    ok = True
    for language, times, _ in results:
        median = {name: statistics.median(values) for name, values in times.items()}
        cold_ratio = median["cold"] / median["bare"]
        warm_ratio = median["warm"] / median["bare"]
        cold_ok, warm_ok = cold_ratio <= COLD_TARGET, warm_ratio <= WARM_TARGET
        ok = ok and cold_ok and warm_ok
        cells = {
            name: f"{_ms(median[name]):>4} [{_ms(min(times[name]))}-{_ms(max(times[name]))}]"
            for name in times
        }
        print(
            f"{language:<7} {cells['bare']:>13} {cells['cold']:>13} {cold_ratio:>9.2f}x "
            f"{'<=' + format(COLD_TARGET, 'g') + 'x':>7} {'ok' if cold_ok else 'MISS':<4}"
            f"{cells['warm']:>13} {warm_ratio:>9.2f}x "
            f"{'<=' + format(WARM_TARGET, 'g') + 'x':>7} {'ok' if warm_ok else 'MISS':<4}"
            f"{cells['process']:>13}"
        )

    print()
    print("where a docker run's time goes (medians, ms): start = until the runner is attached")
    print("and started; protocol = hello to bye (both phases); exit = bye until the output ends;")
    print("close = what closing the sandbox waits for (removal is in the background after a")
    print("normal end)")
    print(f"{'runner':<7} {'mode':<5} " + " ".join(f"{stage:>9}" for stage in STAGES))
    for language, _, stages in results:
        for mode, per_stage in stages.items():
            cells_ = " ".join(f"{_ms(statistics.median(per_stage[s])):>9}" for s in STAGES)
            print(f"{language:<7} {mode:<5} {cells_}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
