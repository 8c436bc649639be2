"""The canary rule against a real Prometheus-text endpoint, on virtual time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID, uuid4

import pytest

from simcore import journal, rollout
from simcore.errors import Conflict, InvalidInput
from simcore.model import ApprovalStatus
from simcore.rollout import CanaryMetricsError, Decision
from simcore.service import SimulatorService
from tests.rollout.conftest import BOB, Runs, reconfigured

T0 = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
"""Virtual time: nothing in these tests waits for real."""


class MetricsServer:
    """Serves ``/metrics`` from ``text``, which the test changes as virtual time goes by."""

    def __init__(self) -> None:
        self.text = ""
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.text.encode()
                self.send_response(outer.status if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def metrics() -> Iterator[MetricsServer]:
    server = MetricsServer()
    yield server
    server.close()


def exposition(rate: float, patch_id: UUID | None, *, requests: int = 0) -> str:
    """What the SDK service exposes: its canary patch's series among others."""
    other = uuid4()
    lines = [
        "# HELP patch_success_rate Requests the patched SDK completed, over all requests.",
        "# TYPE patch_success_rate gauge",
        f'patch_success_rate{{patch_id="{other}",sdk_language="node"}} 0.42',
    ]
    if patch_id is None:
        lines.append(f"patch_success_rate {rate}")
    else:
        lines.append(f'patch_success_rate{{patch_id="{patch_id}",sdk_language="python"}} {rate}')
        lines += [
            "# TYPE patch_requests_total counter",
            f'patch_requests_total{{patch_id="{patch_id}",sdk_language="python"}} {requests}',
        ]
    return "\n".join(lines) + "\n"


def _staged(service: SimulatorService, runs: Runs, url: str, steps: str) -> tuple[Any, UUID]:
    svc = reconfigured(service, canary_metrics_url=url, rollout_steps=steps)
    (run_id,) = runs.approved()
    staged = svc.stage_patch(BOB, run_id, "canary", now=T0)
    return svc, staged.rollout.patch_id


def _tick(
    svc: SimulatorService,
    metrics: MetricsServer,
    run_id: UUID,
    patch_id: UUID | None,
    minute: int,
    rate: float,
    *,
    auto: bool = False,
) -> rollout.CanaryReport:
    metrics.text = exposition(rate, patch_id, requests=1000 * (minute + 1))
    return svc.evaluate_canary(
        BOB, run_id, scrape=True, apply=auto, now=T0 + timedelta(minutes=minute)
    )


def test_above_95_percent_for_an_hour_promotes_step_by_step(
    service: SimulatorService, runs: Runs, metrics: MetricsServer
) -> None:
    svc, patch_id = _staged(service, runs, metrics.url, "5,25,100")
    run_id = runs.service.list_approvals(BOB)[0].simulation_run_id
    for minute in range(0, 60, 10):
        report = _tick(svc, metrics, run_id, patch_id, minute, 0.97, auto=True)
        assert report.evaluation is not None
        assert report.evaluation.decision is Decision.WAIT and report.applied is None
    assert "needs 60 min above 95.0%" in report.evaluation.reason
    assert report.recorded is not None and report.recorded.requests == 51_000
    assert report.recorded.source == "scrape" and report.recorded.success_rate == 0.97

    report = _tick(svc, metrics, run_id, patch_id, 60, 0.97, auto=True)
    assert report.evaluation is not None
    e = report.evaluation
    assert (e.decision, e.in_window, e.min_rate, e.next_percentage) == (
        Decision.PROMOTE,
        7,
        0.97,
        25,
    )
    assert report.applied is not None
    r = report.applied.rollout
    assert (r.status, r.rollout_percentage, r.step_started_at) == (
        ApprovalStatus.STAGED,
        25,
        T0 + timedelta(minutes=60),
    )
    assert r.last_transition_reason is not None
    assert r.last_transition_reason.startswith("canary rule: above 95.0% for 60 min at 5%")

    # The hour starts again at 25 %: the evidence gathered at 5 % does not count.
    report = _tick(svc, metrics, run_id, patch_id, 70, 0.99, auto=True)
    assert report.evaluation is not None and report.evaluation.decision is Decision.WAIT
    assert report.evaluation.observations == 1 and "at 25% for 10 min" in report.evaluation.reason
    for minute in range(80, 130, 10):
        report = _tick(svc, metrics, run_id, patch_id, minute, 0.99, auto=True)
    assert report.applied is not None
    assert report.applied.rollout.status is ApprovalStatus.DEPLOYED
    with svc.db.transaction() as conn:
        entries = journal.entries(conn, approval_id=report.rollout.approval_id)
    assert [(e.action, e.details.get("to_percent")) for e in entries][-3:] == [
        ("staged", 5),
        ("staged", 25),
        ("deployed", 100),
    ]


def test_a_dip_makes_the_hour_start_again(
    service: SimulatorService, runs: Runs, metrics: MetricsServer
) -> None:
    # The SDK service runs one patch: its series carries no label.
    svc, _ = _staged(service, runs, metrics.url, "5,100")
    run_id = runs.service.list_approvals(BOB)[0].simulation_run_id
    decisions = {}
    for minute in range(0, 110, 10):
        rate = 0.93 if minute == 30 else 0.98
        report = _tick(svc, metrics, run_id, None, minute, rate)
        assert report.evaluation is not None
        decisions[minute] = report.evaluation
    assert decisions[30].decision is Decision.WAIT and decisions[30].consecutive_breaches == 1
    assert decisions[60].decision is Decision.WAIT
    assert "93.0% at 2030-03-01T12:30+00:00 is not above 95.0%" in decisions[60].reason
    assert decisions[60].min_rate == 0.93
    assert decisions[90].decision is Decision.WAIT  # 12:30 is still inside 11:30..12:30
    assert decisions[100].decision is Decision.PROMOTE
    assert decisions[100].min_rate == 0.98 and decisions[100].in_window == 7
    # Nothing was applied without --auto.
    with svc.db.transaction() as conn:
        assert rollout.load(conn, run_id).rollout_percentage == 5


def test_three_breaches_in_a_row_roll_back(
    service: SimulatorService, runs: Runs, metrics: MetricsServer
) -> None:
    svc, patch_id = _staged(service, runs, metrics.url, "5,100")
    run_id = runs.service.list_approvals(BOB)[0].simulation_run_id
    rates = {0: 0.97, 10: 0.97, 20: 0.97, 30: 0.90, 40: 0.91, 50: 0.89}
    for minute, rate in rates.items():
        report = _tick(svc, metrics, run_id, patch_id, minute, rate, auto=True)
        assert report.evaluation is not None
        expected = Decision.ROLLBACK if minute == 50 else Decision.WAIT
        assert report.evaluation.decision is expected, (minute, report.evaluation.reason)
    assert report.evaluation is not None
    assert report.evaluation.reason.startswith(
        "success rate at or below 95.0% in the last 3 observations (90.0%, 91.0%, 89.0%)"
    )
    assert report.applied is not None
    rolled = report.applied.rollout
    assert (rolled.status, rolled.rollout_percentage) == (ApprovalStatus.ROLLED_BACK, 0)
    assert report.applied.hook.argv[-1] == "PATCH_ROLLOUT_PERCENTAGE=0"
    # Rolled back: nothing more to observe.
    with pytest.raises(Conflict, match="rolled_back: there is no canary to observe"):
        _tick(svc, metrics, run_id, patch_id, 60, 0.99)


def test_an_endpoint_that_does_not_say_what_is_needed_is_a_clear_error(
    service: SimulatorService, runs: Runs, metrics: MetricsServer
) -> None:
    svc, _ = _staged(service, runs, metrics.url, "5,100")
    run_id = runs.service.list_approvals(BOB)[0].simulation_run_id
    now = T0 + timedelta(minutes=5)
    metrics.status = 503
    with pytest.raises(CanaryMetricsError, match=r"127\.0\.0\.1:\d+/metrics: HTTP 503"):
        svc.evaluate_canary(BOB, run_id, scrape=True, now=now)
    metrics.status = 200
    metrics.text = 'patch_success_rate{patch_id="someone-else"} 0.99\n'
    with pytest.raises(
        CanaryMetricsError,
        match=r"no patch_success_rate series for patch .* \(series found: patch_id=someone-else\)",
    ):
        svc.evaluate_canary(BOB, run_id, scrape=True, now=now)
    metrics.text = "patch_success_rate 97\n"
    with pytest.raises(CanaryMetricsError, match=r"is 97\.0: expected a ratio from 0 to 1"):
        svc.evaluate_canary(BOB, run_id, scrape=True, now=now)
    metrics.text = "this is { not prometheus\n"
    with pytest.raises(CanaryMetricsError, match="not Prometheus text format"):
        svc.evaluate_canary(BOB, run_id, scrape=True, now=now)
    with svc.db.transaction() as conn:
        assert rollout.observations(conn, runs.service.list_approvals(BOB)[0].id) == []


def test_series_selection_by_id_or_slug() -> None:
    pid = uuid4()
    text = (
        'patch_success_rate{patch="hmac-resync-py"} 0.96\n'
        "patch_success_rate 0.5\n"
        'patch_requests_total{patch="hmac-resync-py"} 12\n'
    )
    reading = rollout.parse_metrics(text, patch_id=pid, slug="hmac-resync-py")
    assert (reading.success_rate, reading.requests) == (0.96, 12)
    assert rollout.parse_metrics(text, patch_id=pid, slug=None).success_rate == 0.5
    twice = f'patch_success_rate{{patch_id="{pid}",pod="a"}} 0.9\n' + (
        f'patch_success_rate{{patch_id="{pid}",pod="b"}} 0.8\n'
    )
    with pytest.raises(CanaryMetricsError, match="2 patch_success_rate series match"):
        rollout.parse_metrics(twice, patch_id=pid, slug=None)


def _obs(minute: int, rate: float) -> rollout.Observation:
    return rollout.Observation(
        minute, uuid4(), T0 + timedelta(minutes=minute), rate, None, 5, "api", "ops:bob"
    )


def test_the_rule_wants_observations_across_the_whole_hour() -> None:
    def decide(minutes: list[int], now: int) -> rollout.Evaluation:
        return rollout.evaluate(
            [_obs(m, 0.99) for m in minutes],
            status=ApprovalStatus.STAGED,
            percent=5,
            steps=(5, 100),
            step_started_at=T0,
            now=T0 + timedelta(minutes=now),
        )

    burst = decide([55, 56, 57, 58, 59, 60], 60)
    assert burst.decision is Decision.WAIT and "no observation for 55 min" in burst.reason
    assert decide([0, 10, 20, 30, 40, 50, 60], 60).decision is Decision.PROMOTE
    blind = decide([0, 10, 20, 30, 40, 50, 60], 90)
    assert blind.decision is Decision.WAIT and blind.stale and "blind" in blind.reason
    deployed = rollout.evaluate(
        [_obs(m, 0.99) for m in (0, 10)],
        status=ApprovalStatus.DEPLOYED,
        percent=100,
        steps=(5, 100),
        step_started_at=T0,
        now=T0 + timedelta(minutes=15),
    )
    assert deployed.decision is Decision.WAIT and deployed.next_percentage is None


def test_posted_observations_are_checked(service: SimulatorService, runs: Runs) -> None:
    (run_id,) = runs.approved()
    with pytest.raises(Conflict, match="is approved: observations are recorded while"):
        service.record_canary_observation(BOB, run_id, 0.99, now=T0)
    service.stage_patch(BOB, run_id, "canary", now=T0)
    with pytest.raises(InvalidInput, match="success_rate: must be a ratio from 0 to 1"):
        service.record_canary_observation(BOB, run_id, 1.5, now=T0)
    with pytest.raises(InvalidInput, match="observed_at: is before the current step"):
        service.record_canary_observation(
            BOB, run_id, 0.99, observed_at=T0 - timedelta(hours=2), now=T0
        )
    obs, evaluation = service.record_canary_observation(
        BOB, run_id, 0.99, requests=400, now=T0 + timedelta(minutes=10)
    )
    assert (obs.source, obs.recorded_by, obs.requests, obs.rollout_percentage) == (
        "api",
        "ops:bob",
        400,
        5,
    )
    assert evaluation.decision is Decision.WAIT
    with pytest.raises(InvalidInput, match="before the latest observation"):
        service.record_canary_observation(
            BOB, run_id, 0.99, observed_at=T0 + timedelta(minutes=5), now=T0 + timedelta(hours=1)
        )
