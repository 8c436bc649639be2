"""One run over one sandbox: hello, the baseline phase, the patched phase, the verdict, bye.

The session is the only code that reads what a sandbox writes. Every line goes through
``protocol.decode`` and the checks below; anything unexpected ends the run ``failed`` with
reason ``protocol_violation``, a runner killed at the deadline ends it ``timeout``, and a
runner that dies before saying ``ready`` ends it ``error`` (infrastructure, not the patch).
No exception caused by sandbox output leaves ``Session.run``.
"""

from __future__ import annotations

import gc
import select
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, runtime_checkable

from simcore.gateway.faults import FaultPlan, plan_fault
from simcore.gateway.forked import COLLECT_TIMEOUT_S, ChildReport, ForkedPhase, Outcome
from simcore.gateway.protocol import (
    EVENT_NAMES,
    MAX_DETAIL,
    MAX_SLEEP_MS,
    MAX_TIMEOUT_MS,
    PROTOCOL_VERSION,
    ProtocolViolation,
    decode,
    encode,
    need_headers,
    need_int,
    need_method,
    need_str,
    optional_str,
)
from simcore.gateway.scoring import (
    OpRecord,
    PhaseOutcome,
    PhaseScore,
    run_metrics,
    score_phase,
)
from simcore.gateway.server import (
    EPOCH_MS,
    HttpResponse,
    PaymentsServer,
    SimConfig,
    latency_stream,
)
from simcore.gateway.verdict import Verdict, decide
from simcore.gateway.workload import Workload
from simcore.model import Patch, RunStatus, Scenario
from simcore.sandbox.base import Sandbox, SandboxExit

BASELINE = "baseline"
PATCHED = "patched"
MAX_MESSAGES_PER_OP = 200
MAX_NOTABLE_EVENTS = 50
BYE_GRACE_S = 2.0


PhasePlay = Generator[None, dict[str, Any], None]
"""A phase being played: sent each message of its runner, it answers it (see ``_play``)."""


class SandboxGone(Exception):
    """The runner's stdout closed (it exited, crashed or was killed)."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__("the SDK runner's output closed")
        self.sandbox = sandbox


@dataclass(slots=True)
class EventLog:
    """Counts of sandbox events per phase, and the few worth reading (capped)."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    notable: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0

    def add(self, phase: str, name: str, op_id: str | None, detail: str | None) -> None:
        per_phase = self.counts.setdefault(phase, {})
        per_phase[name] = per_phase.get(name, 0) + 1
        if name == "patch_applied":
            return
        if len(self.notable) >= MAX_NOTABLE_EVENTS:
            self.dropped += 1
            return
        self.notable.append({"phase": phase, "name": name, "op_id": op_id, "detail": detail})

    def to_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "notable": self.notable, "notable_dropped": self.dropped}


@runtime_checkable
class PolledSandbox(Sandbox, Protocol):
    """A sandbox whose output can be waited on alongside something else's, and that a forked
    copy of this process can drive (the process sandbox)."""

    def fileno(self) -> int:
        """What to poll for the runner's output."""
        ...

    def recv_nowait(self) -> bytes | None:
        """What ``recv`` would return, if it is in already; None if it has to wait."""
        ...

    def pull(self) -> None:
        """Read what the runner wrote (at once once polled), or note the end of output."""
        ...

    def descriptors(self) -> tuple[int, ...]:
        """What a forked copy of this process needs open to play a phase on this runner."""
        ...


class _CollectorPause:
    """Pauses Python's cyclic garbage collector while at least one session plays its phases.

    A phase keeps every op's ledger entries, records and slots until it is scored: tens of
    thousands of containers that live until the run ends and are never cyclic garbage (they
    are freed by reference counting with the session). The collector cannot know that: it
    scans them again at every full collection, whose frequency grows with the heap: about a
    tenth of the worker's CPU time on a 20,000-op run (0.76 s of it). Runs may be played on
    several threads of one worker, and the collector is per process: it is paused while any of
    them plays, and resumed (if it was enabled) when the last one is done."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    if self._resume:
                        gc.enable()
                elif self._resume:
                    # Runs that overlap could keep the collector paused for good in a busy
                    # worker (or an API serving in-process workers): each run that ends
                    # collects what was allocated meanwhile, so cyclic garbage made beside
                    # the runs is still freed, once per run rather than hundreds of times.
                    gc.collect(0)


collector_paused = _CollectorPause()


class _Slot(NamedTuple):
    """What both phases need of one op: its fault plan, its wire prefix, its intended payment,
    its latency stream."""

    plan: FaultPlan
    op_id: str
    prefix: bytes
    expected: tuple[int, str]
    latency_state: int


@dataclass(slots=True)
class SessionResult:
    status: RunStatus
    reasons: tuple[str, ...]
    metrics: dict[str, Any]
    events: EventLog
    exit: SandboxExit | None = None
    error_events: list[dict[str, Any]] = field(default_factory=list)
    """Error responses the SDK met in the baseline phase, raw (personal data included): they
    feed the anonymized signatures for SIRA and must never be stored or sent as they are."""


MAX_ERROR_EVENTS = 2000


def _patch_wire(patch: Patch | None) -> dict[str, Any] | None:
    if patch is None:
        return None
    return {
        "id": str(patch.id),
        "error_signature": patch.error_signature,
        "code": patch.patch_code,
        "rollback": patch.rollback_code,
    }


class Session:
    """One run. With a patch and a second sandbox (``baseline_sandbox``), the two phases are
    played side by side: the baseline on that sandbox by a forked copy of this process, the
    patched phase on ``sandbox`` here (``_play_side_by_side``). Each phase has its own payments
    server and clock, and both draw the same ops (``_slot``), so the report is the one the two
    phases played one after the other in one sandbox give, byte for byte; only the wall time
    differs (less on two cores, where each phase has a gateway of its own)."""

    def __init__(
        self,
        scenario: Scenario,
        language: str,
        seed: int,
        patch: Patch | None,
        sandbox: Sandbox,
        baseline_sandbox: Sandbox | None = None,
        max_run_time_ms: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.language = language
        self.seed = seed
        self.patch = patch
        self.sandbox = sandbox
        self.baseline_sandbox = baseline_sandbox if patch is not None else None
        self.sandboxes = (sandbox,) if self.baseline_sandbox is None else (
            sandbox, self.baseline_sandbox)  # fmt: skip
        self.config = SimConfig.for_run(scenario, seed)
        self.max_run_time_ms = max_run_time_ms
        """The sandboxes' deadline, if known: it bounds the wait for a forked baseline."""
        self._started = time.monotonic()
        self.events = EventLog()
        self.phases: list[PhaseOutcome] = []
        self.patch_errors: list[str] = []
        self.error_events: list[dict[str, Any]] = []
        self.rolled_back = False
        self.ready = False
        self._slots: list[_Slot] = []
        self._baseline_score: PhaseScore | None = None
        """The baseline's score, when a forked child played it (see ``_play_side_by_side``)."""
        self.workload = Workload(seed, scenario)

    # -- plumbing ----------------------------------------------------------------------------

    def _recv(self, sandbox: Sandbox | None = None) -> dict[str, Any]:
        sandbox = sandbox or self.sandbox
        line = sandbox.recv()
        if not line:
            raise SandboxGone(sandbox)
        return decode(line)

    def _send(self, data: bytes, sandbox: Sandbox | None = None) -> None:
        sandbox = sandbox or self.sandbox
        try:
            sandbox.send(data)
        except OSError:
            raise SandboxGone(sandbox) from None

    def _slot(self, index: int) -> _Slot:
        slots = self._slots
        while len(slots) <= index:
            slots.append(self._make_slot(len(slots)))
        return slots[index]

    @property
    def deadline_hit(self) -> bool:
        return any(sandbox.deadline_hit for sandbox in self.sandboxes)

    def _make_slot(self, index: int) -> _Slot:
        plan = plan_fault(self.seed, index, self.scenario)
        op = self.workload.op(index, plan)
        prefix = (
            f'{{"type":"op","op_id":"{op.op_id}","deadline_ms":{self.config.deadline_ms},'
            f'"payment":{op.to_json()},"now_ms":'
        ).encode()
        return _Slot(plan, op.op_id, prefix, (op.amount, op.intended_currency),
                     latency_stream(self.seed, index))  # fmt: skip

    def _record_event(self, phase: str, message: dict[str, Any], op_id: str | None) -> None:
        name = message.get("name")
        if name not in EVENT_NAMES:
            raise ProtocolViolation(f"unknown event {str(name)[:40]!r}")
        if message.get("op_id") != op_id:
            raise ProtocolViolation(f"event for op {str(message.get('op_id'))[:40]!r} "
                                    f"while {op_id!r} is in flight")  # fmt: skip
        if phase == BASELINE:
            raise ProtocolViolation(f"{name} event during the baseline phase (no patch there)")
        detail = optional_str(message, "detail", MAX_DETAIL)
        self.events.add(phase, str(name), op_id, detail)
        played = {p.name: p for p in self.phases}
        current = played.get(PATCHED) or played.get(BASELINE)
        if name == "patch_applied" and current is not None:
            current.patch_invocations += 1
        elif name == "patch_error":
            if current is not None:
                current.patch_errors += 1
            self.patch_errors.append(detail or "unknown error")
        elif name == "rollback":
            self.rolled_back = True
        elif name == "rollback_error":
            self.patch_errors.append(f"rollback raised: {detail or 'unknown error'}")

    # -- the run -----------------------------------------------------------------------------

    def _hello(self, patch: Patch | None) -> bytes:
        return encode({
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "language": self.language,
            "config": self.config.to_wire(),
            "patch": _patch_wire(patch),
        })  # fmt: skip

    def _handshake(self) -> None:
        # Both hellos go out before either ready is read: the runners start up together.
        self._send(self._hello(self.patch))
        if self.baseline_sandbox is not None:
            self._send(self._hello(None), self.baseline_sandbox)
        self._ready(self.sandbox, self.patch)
        if self.baseline_sandbox is not None:
            self._ready(self.baseline_sandbox, None)
        self.ready = True

    def _ready(self, sandbox: Sandbox, patch: Patch | None) -> None:
        message = self._recv(sandbox)
        if message["type"] != "ready":
            raise ProtocolViolation(f"expected ready, got {message['type']}")
        if message.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolViolation(f"unsupported protocol {str(message.get('protocol'))[:20]}")
        compile_error = optional_str(message, "patch_error", MAX_DETAIL)
        if compile_error is not None:
            if patch is None:
                raise ProtocolViolation("ready.patch_error without a patch")
            self.patch_errors.append(compile_error)
            self.events.add(PATCHED, "patch_error", None, compile_error)

    def _play_side_by_side(self) -> None:
        """Both phases at once: the baseline played by a forked copy of this process (see
        ``simcore.gateway.forked``) on its own runner, the patched phase here."""
        baseline, patched = self.baseline_sandbox, self.sandbox
        assert baseline is not None
        if not (isinstance(baseline, PolledSandbox) and isinstance(patched, PolledSandbox)):
            self._play_one_after_the_other(baseline)
            return
        try:
            child = ForkedPhase(lambda: self._baseline_in_child(baseline), baseline.descriptors())
        except OSError:
            # No process to spare (the worker's process limit, memory): the same report,
            # in more time.
            self._play_one_after_the_other(baseline)
            return
        try:
            self._play(PATCHED, patched, self._receive_watching(patched, child, baseline))
            report = child.collect(self._collect_timeout())
        except BaseException:
            # The run ends here: the baseline's runner goes, and what its phase played still
            # counts (a run cut short by its deadline keeps what was played).
            baseline.kill()
            self._adopt(child.collect(COLLECT_TIMEOUT_S))
            raise
        self._adopt(report)
        self._raise_for(report, baseline)

    def _collect_timeout(self) -> float | None:
        """How long the baseline's copy may still play: until its runner's deadline kills it,
        plus the time to report. A copy that takes longer is stuck (it would hold the run in
        ``running`` for good): it is killed and the run ends ``error``."""
        if self.max_run_time_ms is None:
            return None
        left = self._started + self.max_run_time_ms / 1000 - time.monotonic()
        return max(left, 0.0) + COLLECT_TIMEOUT_S

    def _play_one_after_the_other(self, baseline: Sandbox) -> None:
        self._play(BASELINE, baseline)
        self._bye_baseline(baseline)
        self._play(PATCHED)

    def _baseline_in_child(self, box: Sandbox) -> ChildReport:
        """The baseline phase and its runner's goodbye, in the forked child."""
        outcome: Outcome = "done"
        detail = None
        try:
            self._play(BASELINE, box)
            self._bye_baseline(box)
        except ProtocolViolation as exc:
            box.kill()
            outcome, detail = "violation", exc.detail
        except SandboxGone:
            outcome = "gone"
        phase = self.phases[0] if self.phases else PhaseOutcome(BASELINE)
        score = score_phase(phase, [s.expected for s in self._slots], self.scenario.total_requests)
        return ChildReport(outcome, detail, score, self.error_events)

    def _adopt(self, report: ChildReport) -> None:
        """What the child's phase adds to the run: its score and the errors the SDK met."""
        if report.score is not None:
            self._baseline_score = report.score
        self.error_events = report.error_events

    @staticmethod
    def _raise_for(report: ChildReport, box: Sandbox) -> None:
        if report.outcome == "violation":
            raise ProtocolViolation(report.detail or "the baseline's runner broke the protocol")
        if report.outcome == "gone":
            raise SandboxGone(box)
        if report.outcome == "crashed":
            raise RuntimeError(f"the baseline phase crashed: {report.detail}")

    def _play(
        self,
        name: str,
        box: Sandbox | None = None,
        receive: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Play phase ``name`` on runner ``box``, fed each message that ``receive`` returns
        (by default the runner's next one)."""
        runner = box or self.sandbox
        play = self._phase(name, runner)
        receive = receive or (lambda: self._recv(runner))
        try:
            next(play)
            while True:
                play.send(receive())
        except StopIteration:
            pass

    def _receive_watching(
        self, box: PolledSandbox, child: ForkedPhase, baseline: Sandbox
    ) -> Callable[[], dict[str, Any]]:
        """``box``'s next message, while watching the child that plays the other phase: a
        child that ends its phase early (a violation, its runner gone) ends this one at once."""
        poller = select.poll()
        poller.register(box.fileno(), select.POLLIN)
        poller.register(child.fileno(), select.POLLIN)

        def receive() -> dict[str, Any]:
            while (line := box.recv_nowait()) is None:
                # POLLHUP and POLLERR come unasked: pull then notes the end of output.
                for fd, _ in poller.poll():
                    if fd == box.fileno():
                        box.pull()
                        continue
                    poller.unregister(fd)
                    report = child.collect()
                    self._adopt(report)
                    if report.outcome != "done":
                        self._raise_for(report, baseline)
            if not line:
                raise SandboxGone(box)
            return decode(line)

        return receive

    def _bye_baseline(self, sandbox: Sandbox) -> None:
        """The baseline's own runner is done: it says nothing more (it has no patch)."""
        self._send(encode({"type": "bye", "rollback": False}), sandbox)
        sandbox.kill_after(BYE_GRACE_S)
        while True:
            try:
                message = self._recv(sandbox)
            except SandboxGone:
                return
            if message["type"] != "event":
                raise ProtocolViolation(f"unexpected {message['type']} after bye")
            self._record_event(BASELINE, message, None)  # refused: no events in the baseline

    def _phase(self, name: str, box: Sandbox) -> PhasePlay:
        """One phase on runner ``box``: yields whenever it waits for the runner's next
        message, which ``_play`` sends in."""
        server = PaymentsServer(self.scenario, self.seed, self.config, name[0])
        phase = PhaseOutcome(name, payments_by_op=server.payments_by_op)
        self.phases.append(phase)
        if name == PATCHED and self.patch_errors:
            phase.patch_errors += len(self.patch_errors)  # the patch did not even compile
        patch_on = name == PATCHED and self.patch is not None

        def send(data: bytes) -> None:
            self._send(data, box)

        handle, slot_of = server.handle, self._slot
        deadline_ms = self.config.deadline_ms
        records = phase.records
        total = self.scenario.total_requests
        # The phase message goes out with the first op, in one write.
        pending = encode({"type": "phase", "name": name, "patch": patch_on})
        # Whether the runner already holds the op about to begin: the ``next`` of our last
        # ``resp``/``slept``, which it starts as soon as it has sent ``done``.
        announced = False
        for index in range(total):
            slot = slot_of(index)
            op_id = slot.op_id
            server.begin_op(index, slot.plan, slot.latency_state)
            start = server.now_ms
            if not announced:
                send(pending + slot.prefix + str(server.local_now()).encode() + b"}\n")
                pending = b""
            following = slot_of(index + 1) if index + 1 < total else None
            # Prepared one op further ahead: once a resp is out, the runner works and the
            # worker would only wait, so on two cores the next op's data costs no wall time.
            ahead = index + 2 if index + 2 < total else -1
            announced = False
            attempts = 0
            for _ in range(MAX_MESSAGES_PER_OP):
                msg = yield
                kind = msg["type"]
                if kind == "ready":
                    raise ProtocolViolation("unexpected ready during an op")
                if msg.get("op_id") != op_id and kind != "event":
                    raise ProtocolViolation(
                        f"{kind} for op {str(msg.get('op_id'))[:40]!r} while {op_id!r} is in flight"
                    )
                if kind == "req":
                    attempts = self._check_attempt(msg, attempts)
                    response = handle(
                        need_method(msg),
                        need_str(msg, "path"),
                        need_headers(msg),
                        need_str(msg, "body", 60_000),
                        need_int(msg, "timeout_ms", 1, MAX_TIMEOUT_MS),
                    )
                    now = server.local_now()
                    if following is None:
                        send(_resp_line(op_id, attempts, response, now, b"null"))
                    else:
                        send(_resp_line(op_id, attempts, response, now,
                                        _op_object(following, server)))  # fmt: skip
                        announced = True
                    if ahead >= 0:
                        slot_of(ahead)
                    if (
                        name == BASELINE
                        and (response.status >= 400 or response.timed_out)
                        and len(self.error_events) < MAX_ERROR_EVENTS
                    ):
                        self.error_events.append(_error_event(msg, response))
                elif kind == "done":
                    ok = msg.get("ok")
                    if type(ok) is not bool:
                        raise ProtocolViolation("done.ok must be true or false")
                    payment_id = optional_str(msg, "payment_id", 64)
                    elapsed = server.now_ms - start
                    records.append(
                        OpRecord(index, attempts, elapsed, ok, payment_id, elapsed <= deadline_ms)
                    )
                    break
                elif kind == "sleep":
                    ms = need_int(msg, "ms", 0, MAX_SLEEP_MS)
                    server.sleep(ms)
                    upcoming = b"null" if following is None else _op_object(following, server)
                    send(f'{{"type":"slept","op_id":"{op_id}","ms":{ms},'
                         f'"now_ms":{server.local_now()},"next":'.encode()
                         + upcoming + b"}\n")  # fmt: skip
                    announced = following is not None
                else:  # decode() admits only the five sandbox types
                    self._record_event(name, msg, op_id)
            else:
                raise ProtocolViolation(f"more than {MAX_MESSAGES_PER_OP} messages for one op")
        if pending:
            send(pending)
        phase.simulated_ms = server.now_ms - EPOCH_MS

    def _check_attempt(self, message: dict[str, Any], attempts: int) -> int:
        """The attempt number of a ``req``: the next one, and within the budget."""
        attempt = need_int(message, "attempt", 1, 1_000_000)
        if attempt != attempts + 1:
            raise ProtocolViolation(f"attempt {attempt} out of order (expected {attempts + 1})")
        if attempt > self.config.max_attempts:
            raise ProtocolViolation(
                f"attempt {attempt} exceeds the attempt budget of {self.config.max_attempts}"
            )
        return attempt

    def _bye(self, rollback: bool) -> None:
        """Say goodbye (asking for the rollback on failure) and read the last events."""
        self._send(encode({"type": "bye", "rollback": rollback}))
        self.sandbox.kill_after(BYE_GRACE_S)
        while True:
            try:
                message = self._recv()
            except SandboxGone:
                return
            if message["type"] != "event":
                raise ProtocolViolation(f"unexpected {message['type']} after bye")
            self._record_event(PATCHED, message, None)

    def _score(self, violation: str | None) -> tuple[Verdict, dict[str, Any]]:
        total = self.scenario.total_requests
        expected = [s.expected for s in self._slots]
        played = {p.name: p for p in self.phases}
        base = self._baseline_score or score_phase(
            played.get(BASELINE) or PhaseOutcome(BASELINE), expected, total
        )
        patched: PhaseScore = base
        if self.patch is not None:
            patched = score_phase(played.get(PATCHED) or PhaseOutcome(PATCHED), expected, total)
        metrics = run_metrics(base, patched)
        verdict = decide(
            base,
            patched,
            metrics["regressions"],
            self.scenario.success_threshold,
            has_patch=self.patch is not None,
            patch_errors=self.patch_errors,
            violation=violation,
        )
        return verdict, metrics

    def run(self) -> SessionResult:
        violation: str | None = None
        gone: Sandbox | None = None
        try:
            self._handshake()
            if self.baseline_sandbox is not None:
                self._play_side_by_side()
            else:
                for name in (BASELINE, PATCHED) if self.patch is not None else (BASELINE,):
                    self._play(name)
        except ProtocolViolation as exc:
            violation = exc.detail
            for sandbox in self.sandboxes:
                sandbox.kill()  # nothing it says from now on can be trusted
        except SandboxGone as exc:
            gone = exc.sandbox

        if gone is not None and not self.deadline_hit:
            if not self.ready:
                return self._finish(RunStatus.ERROR, ("the SDK runner exited before it was "
                                                      "ready",), log_of=gone)  # fmt: skip
            violation = self._exit_detail(gone)
        if self.deadline_hit:
            return self._finish(RunStatus.TIMEOUT, ("run exceeded max_run_time_ms (killed)",))

        verdict, metrics = self._score(violation)
        if violation is None:
            rollback = (
                verdict.status is RunStatus.FAILED and self.patch is not None
                and not self.rolled_back
            )  # fmt: skip
            try:
                self._bye(rollback)
            except ProtocolViolation as exc:
                self.sandbox.kill()
                verdict, metrics = self._score(exc.detail)
            except SandboxGone:
                pass
        return self._finish(verdict.status, verdict.reasons, metrics)

    def _exit_detail(self, sandbox: Sandbox) -> str:
        """Why the runner stopped early, from its exit status and its last log line."""
        info = sandbox.close()
        detail = "the SDK runner exited or closed its output before the run finished"
        if info.exit_code is not None:
            detail += f" (exit status {info.exit_code})"
        if info.log_tail:
            detail += f"; last log line: {info.log_tail[-1][:200]}"
        return detail

    def _finish(
        self,
        status: RunStatus,
        reasons: tuple[str, ...],
        metrics: dict[str, Any] | None = None,
        log_of: Sandbox | None = None,
    ) -> SessionResult:
        if metrics is None:
            # A timeout keeps what was played (unplayed ops count as failed); an
            # infrastructure error has nothing worth scoring.
            metrics = {} if status is RunStatus.ERROR else self._score(None)[1]
        exits = {id(sandbox): sandbox.close() for sandbox in self.sandboxes}
        exit_info = exits[id(self.sandbox)]
        if len(exits) > 1:
            # One run, two runners: their logs count together; the tail is the patched
            # runner's unless the other one is the one that failed.
            both = tuple(exits.values())
            exit_info = SandboxExit(
                exit_code=exit_info.exit_code,
                deadline_hit=any(e.deadline_hit for e in both),
                log_lines=sum(e.log_lines for e in both),
                log_truncated=any(e.log_truncated for e in both),
                log_tail=exits[id(log_of or self.sandbox)].log_tail,
            )
        if status is RunStatus.ERROR and exit_info.log_tail:
            reasons = (*reasons, f"last log line: {exit_info.log_tail[-1]}")
        if exit_info.deadline_hit and status is not RunStatus.TIMEOUT:
            status, reasons = RunStatus.TIMEOUT, ("run exceeded max_run_time_ms (killed)",)
        return SessionResult(status, reasons, metrics, self.events, exit_info,
                             self.error_events)  # fmt: skip


def _error_event(request: dict[str, Any], response: HttpResponse) -> dict[str, Any]:
    """What the SDK saw of one failed request, as the SIRA signature code reads it."""
    body: dict[str, Any] = response.body if isinstance(response.body, dict) else {}
    raw_error = body.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    return {
        "code": "timeout" if response.timed_out else str(error.get("code") or "http_error"),
        "status": 0 if response.timed_out else response.status,
        "body": body,
        "headers": dict(response.headers),
        "request": {"path": request.get("path"), "body": request.get("body")},
    }


def _op_object(slot: _Slot, server: PaymentsServer) -> bytes:
    """The ``op`` message of ``slot`` as it would begin now, without its newline: the ``next``
    of a ``resp`` or ``slept``."""
    return slot.prefix + str(server.local_now_for(slot.plan)).encode() + b"}"


def _resp_line(
    op_id: str, attempt: int, response: HttpResponse, now_ms: int, upcoming: bytes
) -> bytes:
    """The ``resp`` for one request, assembled by hand: it is written once per request.
    ``upcoming`` is the JSON of its ``next`` field."""
    if response.timed_out:
        tail = '"status":0,"headers":{},"body":null,"timed_out":true'
    else:
        tail = (
            f'"status":{response.status},"headers":{response.headers_json},'
            f'"body":{response.body_json},"timed_out":false'
        )
    head = (
        f'{{"type":"resp","op_id":"{op_id}","attempt":{attempt},{tail},'
        f'"elapsed_ms":{response.elapsed_ms},"now_ms":{now_ms},"next":'
    )
    return head.encode() + upcoming + b"}\n"
