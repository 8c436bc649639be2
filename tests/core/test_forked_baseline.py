"""The baseline phase played by a forked copy of the worker (``simcore.gateway.forked``).

Its runner misbehaving ends the run as the patched runner's would, at once and with the
reason; the copy never outlives the run, nor a worker killed with SIGKILL, and holds no
descriptor of anything else the worker has open.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import simcore.gateway.session as session_module
import simcore.sandbox.process as process_module
from simcore.gateway.forked import ChildReport, ForkedPhase
from simcore.gateway.session import Session
from simcore.model import RunStatus
from simcore.patches import default_patch
from simcore.runner import Report, run_simulation
from simcore.sandbox.base import Sandbox, SandboxSpec
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES

RUNNER = Path(process_module.__file__).parent.parent / "sdk" / "python" / "runner.py"
READY = '{"type":"ready","protocol":2,"language":"python","sdk":"fake/1","patch_error":null}'


class FakeBaseline:
    """The process backend, except that the baseline's runner (the run's second) is a script."""

    parallel_phases = True

    def __init__(self, inner: ProcessBackend, script: str) -> None:
        self.inner, self.script, self.name = inner, script, inner.name
        self.started: list[Sandbox] = []

    def check(self) -> str:
        return self.inner.check()

    def start(self, spec: SandboxSpec) -> Sandbox:
        if not self.started:
            sandbox: Sandbox = self.inner.start(spec)
        else:
            argv = [sys.executable, "-I", "-c", self.script]
            sandbox = process_module.ProcessSandbox(argv, {}, "/", None, spec)
        self.started.append(sandbox)
        return sandbox


def _ready_then(rest: str) -> str:
    """A runner's script that answers the hello with ``ready``, then does ``rest``."""
    hello = f"import sys, time\nsys.stdin.readline()\nprint({READY!r}, flush=True)\n"
    return hello + textwrap.dedent(rest)


def _play(
    script: str, backend: ProcessBackend, ops: int, max_run_time_ms: int = 60_000
) -> tuple[Report, float, FakeBaseline]:
    fake = FakeBaseline(backend, script)
    scenario = TEMPLATES["signature_mismatch"].scenario.model_copy(update={"total_requests": ops})
    patch = default_patch(scenario.error, "python")
    started = time.monotonic()
    report = run_simulation(scenario, "python", 7, patch, fake, max_run_time_ms=max_run_time_ms)
    return report, time.monotonic() - started, fake


def _forked_children() -> list[int]:
    """Processes under this one that are copies of it (the same command line)."""
    me = _cmdline(os.getpid())
    return [pid for pid in _descendants(os.getpid()) if _cmdline(pid) == me]


def test_a_baseline_runner_that_breaks_the_protocol_ends_the_run_at_once(
    backend: ProcessBackend,
) -> None:
    script = _ready_then("""
        sys.stdin.readline()
        print("this is not json", flush=True)
        time.sleep(600)
    """)
    # 200,000 ops: the patched phase alone would take far longer than the bound below.
    report, seconds, fake = _play(script, backend, 200_000)
    assert report.status is RunStatus.FAILED
    assert any(r.startswith("protocol_violation") and "JSON" in r for r in report.reasons), (
        report.reasons
    )
    assert seconds < 20
    assert all(sandbox.close().exit_code is not None for sandbox in fake.started)
    assert _forked_children() == []


def test_a_baseline_runner_that_exits_mid_phase_fails_the_run_with_its_exit(
    backend: ProcessBackend,
) -> None:
    script = _ready_then("""
        sys.stdin.readline()
        print("giving up", file=sys.stderr, flush=True)
        sys.exit(5)
    """)
    report, seconds, _ = _play(script, backend, 200_000)
    assert report.status is RunStatus.FAILED
    assert any("exit status 5" in r and "giving up" in r for r in report.reasons), report.reasons
    assert seconds < 20
    assert _forked_children() == []


def test_a_baseline_runner_that_never_answers_times_the_run_out(backend: ProcessBackend) -> None:
    script = _ready_then("time.sleep(600)")
    report, seconds, _ = _play(script, backend, 50, max_run_time_ms=3_000)
    assert report.status is RunStatus.TIMEOUT
    assert 3 <= seconds < 15
    # What the patched phase played is kept; the baseline played nothing.
    assert report.metrics["total_requests"] == 50
    assert report.metrics["baseline"]["failed_requests"] == 50
    assert _forked_children() == []


def test_a_baseline_runner_that_lingers_after_bye_is_killed_and_the_verdict_stands(
    backend: ProcessBackend,
) -> None:
    # The real runner plays the phase; the script keeps its output open afterwards.
    script = textwrap.dedent(f"""
        import subprocess, sys, time
        subprocess.run([sys.executable, "-I", "-S", "-B", {str(RUNNER)!r}])
        time.sleep(600)
    """)
    report, seconds, fake = _play(script, backend, 30)
    assert report.status is RunStatus.SUCCESS, report.reasons
    assert report.metrics["baseline"]["total_requests"] == 30
    assert seconds < 15  # the two-second grace after bye, not the run's deadline
    assert fake.started[1].close().exit_code is not None


def test_without_a_process_to_spare_the_phases_play_one_after_the_other(
    backend: ProcessBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = TEMPLATES["timeout"].scenario.model_copy(update={"total_requests": 40})
    patch = default_patch(scenario.error, "node")
    forked = run_simulation(scenario, "node", 3, patch, backend)

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    before = len(os.listdir("/proc/self/fd"))
    serial = run_simulation(scenario, "node", 3, patch, backend)
    assert serial.status is RunStatus.SUCCESS, serial.reasons
    assert serial.to_json() == forked.to_json()
    assert len(os.listdir("/proc/self/fd")) == before  # the pipe for the report was closed


def test_the_forked_copy_holds_nothing_else_open_and_is_reaped() -> None:
    unrelated_read, unrelated_write = os.pipe()  # another run's runner input, say
    kept_read, kept_write = os.pipe()

    def play() -> ChildReport:
        os.write(kept_write, b"x")
        time.sleep(0.5)
        return ChildReport("done", "played")

    child = ForkedPhase(play, keep=(kept_write,))
    try:
        os.close(unrelated_write)
        started = time.monotonic()
        # End of file at once: the child closed its copy of the write end it did not need.
        assert os.read(unrelated_read, 1) == b""
        assert time.monotonic() - started < 0.4
        assert os.read(kept_read, 1) == b"x"  # the one it kept works
    finally:
        report = child.collect()
        for fd in (unrelated_read, kept_read, kept_write):
            os.close(fd)
    assert report == ChildReport("done", "played")
    assert child.collect() is report
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)  # reaped


def test_a_child_that_crashes_or_hangs_reports_it() -> None:
    def crash() -> ChildReport:
        raise KeyError("bug")

    crashed = ForkedPhase(crash, keep=()).collect()
    assert crashed.outcome == "crashed" and "KeyError" in (crashed.detail or "")

    def hang() -> ChildReport:
        time.sleep(600)
        return ChildReport("done")

    hung = ForkedPhase(hang, keep=())
    started = time.monotonic()
    report = hung.collect(timeout=0.5)
    assert time.monotonic() - started < 5
    assert report.outcome == "crashed" and "without a report" in (report.detail or "")


def test_the_workers_signal_handlers_do_not_run_in_the_forked_copy() -> None:
    # The dashboard's process handles SIGWINCH (a terminal resize): the copy, in the same
    # process group, receives it too and must play on.
    def handler(signum: int, frame: object) -> None:
        raise RuntimeError("the worker's handler ran in the copy")

    previous = signal.signal(signal.SIGWINCH, handler)
    try:

        def play() -> ChildReport:
            os.kill(os.getpid(), signal.SIGWINCH)
            time.sleep(0.05)
            return ChildReport("done")

        report = ForkedPhase(play, keep=()).collect(timeout=10)
    finally:
        signal.signal(signal.SIGWINCH, previous)
    assert report == ChildReport("done")


def test_a_forked_copy_that_is_stuck_ends_the_run_at_its_deadline(
    backend: ProcessBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stuck without reading its runner (a lock it inherited, say): the runner's deadline
    # cannot unblock it. It must not hold the run in "running" for good.
    def stuck(self: Session, box: Sandbox) -> ChildReport:
        time.sleep(600)
        return ChildReport("done")

    monkeypatch.setattr(Session, "_baseline_in_child", stuck)
    monkeypatch.setattr(session_module, "COLLECT_TIMEOUT_S", 1.0)
    scenario = TEMPLATES["timeout"].scenario.model_copy(update={"total_requests": 20})
    patch = default_patch(scenario.error, "python")
    started = time.monotonic()
    report = run_simulation(scenario, "python", 1, patch, backend, max_run_time_ms=2_000)
    assert 2 <= time.monotonic() - started < 10
    assert report.status is RunStatus.ERROR
    assert any("without a report" in r for r in report.reasons), report.reasons
    assert _forked_children() == []


def test_collect_waits_on_descriptors_past_1024() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"this machine allows {hard} open files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        child = ForkedPhase(lambda: ChildReport("done"), keep=())
        assert child.fileno() > 1024
        assert child.collect(timeout=10) == ChildReport("done")
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


WORKER = """
import sys
from simcore.patches import default_patch
from simcore.runner import Report, run_simulation
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES
scenario = TEMPLATES["signature_mismatch"].scenario.model_copy(update={"total_requests": 500000})
patch = default_patch(scenario.error, "python")
print("start", flush=True)
run_simulation(scenario, "python", 1, patch, ProcessBackend(), max_run_time_ms=170_000)
"""


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            for child in children:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_worker_killed_with_sigkill_leaves_no_player_and_no_runner_behind(
    backend: ProcessBackend,
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert worker.stdout is not None and worker.stdout.readline() == b"start\n"
        # The forked player (a copy of the worker) and both runners, under their wrappers.
        deadline = time.monotonic() + 30
        left: set[int] = set()
        while time.monotonic() < deadline:
            left = _descendants(worker.pid)
            if any(_cmdline(p) == _cmdline(worker.pid) for p in left):
                break
            time.sleep(0.05)
        time.sleep(0.5)
        left = _descendants(worker.pid)
        assert any(_cmdline(p) == _cmdline(worker.pid) for p in left), left
        assert sum(b"runner.py" in _cmdline(p) for p in left) >= 2, left
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert worker.stdout is not None
        worker.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in left):
        time.sleep(0.05)
    assert not [p for p in left if _alive(p)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""
