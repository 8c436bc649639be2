"""The baseline and the patched phase side by side, each on its own runner (process sandbox):
the same report as one after the other in one runner, a run log that says which is which and
keeps the run's caps, and a cancelled run that stops both runners."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest

from simcore.executor import _TrackingBackend
from simcore.gateway.session import collector_paused
from simcore.model import RunStatus
from simcore.patches import default_patch, find_patch
from simcore.runner import BASELINE_LOG_TAG, run_simulation
from simcore.sandbox.base import Sandbox, SandboxSpec
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES


class OneAfterTheOther:
    """The process backend, without side-by-side phases: one runner plays both."""

    parallel_phases = False

    def __init__(self, inner: ProcessBackend) -> None:
        self.inner = inner
        self.name = inner.name
        self.started = 0

    def check(self) -> str:
        return self.inner.check()

    def start(self, spec: SandboxSpec) -> Sandbox:
        self.started += 1
        return self.inner.start(spec)


class Counting(OneAfterTheOther):
    parallel_phases = True


@pytest.mark.parametrize("language", ["python", "node"])
@pytest.mark.parametrize(
    ("template", "patch"),
    [
        ("signature_mismatch", None),
        ("timeout", None),
        ("invalid_currency", "invalid_currency-force-xof"),
        ("timeout", "timeout-retry-without-key"),
    ],
)
def test_side_by_side_reports_what_one_runner_reports(
    backend: ProcessBackend, language: str, template: str, patch: str | None
) -> None:
    scenario = TEMPLATES[template].scenario.model_copy(update={"total_requests": 60})
    chosen = find_patch(patch, language) if patch else default_patch(scenario.error, language)
    serial, parallel = OneAfterTheOther(backend), Counting(backend)
    one = run_simulation(scenario, language, 4242, chosen, serial)
    two = run_simulation(scenario, language, 4242, chosen, parallel)
    assert (serial.started, parallel.started) == (1, 2)
    assert one.to_json() == two.to_json()
    # A good patch heals, a bad one fails for its reason: the phases were really both played.
    expected = RunStatus.FAILED if patch else RunStatus.SUCCESS
    assert two.status is expected, two.reasons


def test_without_a_patch_there_is_one_runner(backend: ProcessBackend) -> None:
    counting = Counting(backend)
    scenario = TEMPLATES["timeout"].scenario.model_copy(update={"total_requests": 10})
    report = run_simulation(scenario, "python", 1, None, counting)
    assert counting.started == 1
    assert report.metrics["baseline"]["total_requests"] == 10


def test_the_run_log_says_which_lines_are_the_baselines(backend: ProcessBackend) -> None:
    scenario = TEMPLATES["signature_mismatch"].scenario.model_copy(update={"total_requests": 5})
    lines: list[str] = []
    patch = default_patch(scenario.error, "python")
    report = run_simulation(scenario, "python", 9, patch, backend, on_log=lines.append)
    assert report.status is RunStatus.SUCCESS
    assert f"{BASELINE_LOG_TAG}phase baseline started" in lines
    assert "phase patched started" in lines
    assert not any(line == "phase baseline started" for line in lines)
    assert report.log_lines == len(lines)


def test_a_cancelled_run_stops_both_runners(backend: ProcessBackend) -> None:
    # Long enough to be in flight when the cancel comes.
    scenario = TEMPLATES["signature_mismatch"].scenario.model_copy(
        update={"total_requests": 200_000}
    )
    tracking = _TrackingBackend(backend)
    patch = default_patch(scenario.error, "python")
    done: list[object] = []
    thread = threading.Thread(
        target=lambda: done.append(
            run_simulation(scenario, "python", 1, patch, tracking, max_run_time_ms=120_000)
        )
    )
    started = time.monotonic()
    thread.start()
    while len(tracking.sandboxes) < 2 and time.monotonic() - started < 10:
        time.sleep(0.01)
    assert len(tracking.sandboxes) == 2
    time.sleep(0.3)
    tracking.kill()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - started < 20
    assert all(sandbox.close().exit_code is not None for sandbox in tracking.sandboxes)


def test_the_collector_pauses_while_any_run_plays_and_resumes_after() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():  # another run, on another thread of the worker
            assert not gc.isenabled()
        assert not gc.isenabled()  # the first one still plays
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_overlapping_runs_still_free_cyclic_garbage_as_each_one_ends() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with collector_paused():
        with collector_paused():  # a second run, which ends while the first still plays
            garbage = weakref.ref(Node())
            assert garbage() is not None  # a cycle: the paused collector leaves it
        assert garbage() is None  # freed as that run ended, the collector still paused
        assert not gc.isenabled()
