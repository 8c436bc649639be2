"""Everything a sandbox writes is validated; a violation ends the run, never the worker."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from simcore.gateway.protocol import MAX_LINE_BYTES, ProtocolViolation, decode
from simcore.gateway.session import Session
from simcore.model import RunStatus, Scenario
from simcore.sandbox.base import Sandbox
from tests.core.sandbox_double import READY, ScriptedSandbox, line

SCENARIO = Scenario.parse(
    {"error": "timeout", "error_frequency": 0.0, "latency_ms": 100, "total_requests": 3,
     "success_threshold": 0.9}
)  # fmt: skip


def _req(op_id: str = "op-000001", attempt: int = 1, **extra: Any) -> bytes:
    message = {"type": "req", "op_id": op_id, "attempt": attempt, "method": "POST",
               "path": "/v1/payments", "headers": {}, "body": "{}", "timeout_ms": 1000}  # fmt: skip
    return line({**message, **extra})


def _play(*lines: bytes) -> tuple[RunStatus, tuple[str, ...], ScriptedSandbox]:
    sandbox = ScriptedSandbox(*lines)
    result = Session(SCENARIO, "python", 1, None, sandbox).run()
    assert sandbox.closed
    return result.status, result.reasons, sandbox


def test_the_double_speaks_the_same_protocol_as_real_sandboxes() -> None:
    assert isinstance(ScriptedSandbox(), Sandbox)


def test_a_line_of_exactly_the_cap_is_accepted_one_byte_more_is_not() -> None:
    padding = MAX_LINE_BYTES - len(b'{"type":"done","x":""}')
    exact = b'{"type":"done","x":"' + b"a" * padding + b'"}'
    assert len(exact) == MAX_LINE_BYTES
    assert decode(exact + b"\n")["type"] == "done"
    with pytest.raises(ProtocolViolation, match="longer than 65536"):
        decode(exact[:-2] + b'a"}\n')


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"garbage\n", "not a JSON protocol message"),
        (b"\xff\xfe\x00\n", "not a JSON protocol message"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"type": "report", "status": "success"}\n', "unknown message type 'report'"),
        (b'{"status": "success"}\n', "unknown message type None"),
        (b'{"type": "done"} {"type": "done"}\n', "not a JSON protocol message"),
        # The standard library's decoder recurses: this used to be a RecursionError.
        (b'{"type": "done", "x": ' + b"[" * 30_000 + b"\n", "not a JSON protocol message"),
        # A lone surrogate could not be encoded again (say, to check a signature).
        (b'{"type": "req", "body": "\\ud800"}\n', "not a JSON protocol message"),
    ],
)
def test_decode_rejects(raw: bytes, detail: str) -> None:
    with pytest.raises(ProtocolViolation, match=detail):
        decode(raw)


@pytest.mark.parametrize(
    ("lines", "detail"),
    [
        ((b"x" * (MAX_LINE_BYTES + 10) + b"\n",), "line longer than 65536 bytes"),
        ((b"not json\n",), "not a JSON protocol message"),
        ((line({"type": "report", "status": "success"}),), "unknown message type 'report'"),
        ((_req("op-000002"),), "req for op 'op-000002' while 'op-000001' is in flight"),
        ((_req(attempt=2),), "attempt 2 out of order (expected 1)"),
        (
            (_req(attempt=1), _req(attempt=2), _req(attempt=3), _req(attempt=4)),
            "attempt 4 exceeds the attempt budget of 3",
        ),
        ((_req(method="DELETE"),), "req.method 'DELETE' not supported"),
        ((_req(timeout_ms=-5),), "req.timeout_ms must be an integer"),
        ((_req(headers={"X": 1}),), "req.headers['X'] must be a short string"),
        ((line({"type": "sleep", "op_id": "op-000001", "ms": -1}),), "sleep.ms must be"),
        ((line({"type": "done", "op_id": "op-000001", "ok": "yes"}),), "done.ok must be"),
        (
            (line({"type": "event", "name": "patch_applied", "op_id": "op-000001"}),),
            "patch_applied event during the baseline phase",
        ),
        ((line({"type": "event", "name": "pwned", "op_id": "op-000001"}),), "unknown event"),
        ((READY,), "unexpected ready during an op"),
        ((), "the SDK runner exited or closed its output before the run finished"),
    ],
)
def test_violations_end_the_run_failed(lines: tuple[bytes, ...], detail: str) -> None:
    status, reasons, sandbox = _play(READY, *lines)
    assert status is RunStatus.FAILED
    assert sandbox.killed or not lines  # a runner that broke the protocol is not trusted
    assert reasons[0].startswith("protocol_violation: "), reasons
    assert detail in reasons[0]


def test_a_forged_done_cannot_make_an_op_succeed() -> None:
    # The sandbox claims success without ever asking the gateway for a payment.
    forged = [
        line({"type": "done", "op_id": f"op-00000{i}", "ok": True, "payment_id": "pay_x"})
        for i in (1, 2, 3)
    ]
    status, reasons, _ = _play(READY, *forged, b"")
    assert status is RunStatus.FAILED
    assert "success rate 0.0% below the 90.0% threshold" in reasons


def test_a_runner_that_dies_before_ready_is_an_infrastructure_error() -> None:
    status, reasons, _ = _play()
    assert status is RunStatus.ERROR
    assert "exited before it was ready" in reasons[0]


def test_the_session_sends_hello_then_the_baseline_phase_then_ops() -> None:
    _, _, sandbox = _play(READY, b"")
    kinds = [m["type"] for m in sandbox.sent]
    assert kinds[:3] == ["hello", "phase", "op"]
    hello = sandbox.sent[0]
    assert hello["protocol"] == 2 and hello["patch"] is None
    assert set(hello["config"]) == {"api_key_id", "secret", "timeout_ms", "max_attempts",
                                    "clock_offset_ms"}  # fmt: skip
    op = sandbox.sent[2]
    assert op["op_id"] == "op-000001" and op["payment"]["amount"] > 0
    json.dumps(sandbox.sent)  # everything sent is plain JSON


def test_patch_error_details_are_cleaned_and_capped() -> None:
    from simcore.gateway.protocol import optional_str

    cleaned = optional_str({"type": "event", "detail": "\x1b[31mboom\n" * 100}, "detail", 50)
    assert cleaned is not None and len(cleaned) == 50 and "\x1b" not in cleaned


def _op(sandbox: ScriptedSandbox, op_id: str) -> list[dict[str, Any]]:
    return [m for m in sandbox.sent if m["type"] == "op" and m["op_id"] == op_id]


def test_a_resp_carries_the_next_op_which_the_runner_starts_after_done() -> None:
    done = {"type": "done", "ok": False, "payment_id": None, "error": "x"}
    _, _, sandbox = _play(
        READY,
        _req("op-000001"), line({**done, "op_id": "op-000001"}),
        _req("op-000002"), line({**done, "op_id": "op-000002"}),
        _req("op-000003"), line({**done, "op_id": "op-000003"}),
        b"",
    )  # fmt: skip
    kinds = [m["type"] for m in sandbox.sent]
    # One op message (the first); the others travel as ``next``; nothing after the last op.
    assert kinds == ["hello", "phase", "op", "resp", "resp", "resp", "bye"]
    first, second, third = (m for m in sandbox.sent if m["type"] == "resp")
    assert first["next"]["type"] == "op" and first["next"]["op_id"] == "op-000002"
    assert second["next"]["op_id"] == "op-000003"
    assert third["next"] is None  # the phase is over: wait for the worker
    # ``next`` is the op exactly as an ``op`` message would have carried it.
    assert set(first["next"]) == set(sandbox.sent[2])
    assert first["next"]["deadline_ms"] == sandbox.sent[2]["deadline_ms"]
    assert first["next"]["now_ms"] == first["now_ms"]  # no clock drift in this scenario


def test_after_an_op_without_requests_the_next_op_is_sent_as_a_message() -> None:
    done = {"type": "done", "ok": False, "payment_id": None, "error": "sdk_error"}
    _, _, sandbox = _play(
        READY,
        line({**done, "op_id": "op-000001"}),  # it never asked anything: no ``next`` went out
        _req("op-000002"), line({**done, "op_id": "op-000002"}),
        line({**done, "op_id": "op-000003"}),  # announced in op 2's resp
        b"",
    )  # fmt: skip
    kinds = [m["type"] for m in sandbox.sent]
    assert kinds == ["hello", "phase", "op", "op", "resp", "bye"]
    assert [m["op_id"] for m in sandbox.sent if m["type"] == "op"] == ["op-000001", "op-000002"]
    assert _op(sandbox, "op-000003") == []


def test_a_slept_carries_the_next_op_too() -> None:
    _, _, sandbox = _play(
        READY,
        line({"type": "sleep", "op_id": "op-000001", "ms": 250}),
        line({"type": "done", "op_id": "op-000001", "ok": False}),
        b"",
    )
    slept = next(m for m in sandbox.sent if m["type"] == "slept")
    assert slept["ms"] == 250 and slept["next"]["op_id"] == "op-000002"
    assert slept["next"]["now_ms"] == slept["now_ms"]
    assert _op(sandbox, "op-000002") == []


@pytest.mark.parametrize(
    "text", ["pay_b0000001", "tab\there", "del\x7f", "c1\x85", "é ok", "\x1b[2J", "", "a" * 80]
)
def test_short_texts_lose_exactly_their_control_characters(text: str) -> None:
    from simcore.gateway.protocol import optional_str

    cleaned = optional_str({"type": "done", "x": text}, "x", 64)
    assert cleaned == re.sub(r"[\x00-\x1f\x7f-\x9f]", "\ufffd", text[:64])
