"""Hostile patches in both languages: each ends with the right status and reason, quickly,
and the calling process (the worker) carries on as if nothing happened."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from simcore.model import Patch, RunStatus
from simcore.runner import Report, run_simulation
from simcore.sandbox.process import ProcessBackend
from tests.core.conftest import LANGUAGES
from tests.core.hostile_corpus import CODE, CONNECT, SCENARIO, SHORT_MS


def _patch(language: str, code: str) -> Patch:
    return Patch(id=uuid.uuid4(), sdk_language=language, error_signature="timeout",
                 patch_code=code, rollback_code="")  # fmt: skip


def _hostile(backend: ProcessBackend, language: str, code: str, **kw: object) -> Report:
    started = time.monotonic()
    report = run_simulation(SCENARIO, language, 1, _patch(language, code), backend, **kw)  # type: ignore[arg-type]
    assert time.monotonic() - started < 20
    return report


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("case", "detail"),
    [
        ("forged_done", "while 'op-000002' is in flight"),
        ("forged_report", "unknown message type 'report'"),
        ("garbage", "not a JSON protocol message"),
    ],
)
def test_writing_to_stdout_is_a_protocol_violation(
    backend: ProcessBackend, language: str, case: str, detail: str
) -> None:
    report = _hostile(backend, language, CODE[language][case])
    assert report.status is RunStatus.FAILED
    assert report.reasons[0].startswith("protocol_violation: ")
    assert detail in report.reasons[0]
    assert report.metrics["success_rate"] == 0.0  # nothing forged counts


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", ["blocks", "spins"])
def test_a_patch_that_never_returns_is_killed_at_the_deadline(
    backend: ProcessBackend, language: str, case: str
) -> None:
    started = time.monotonic()
    report = _hostile(backend, language, CODE[language][case], max_run_time_ms=SHORT_MS)
    elapsed = time.monotonic() - started
    assert report.status is RunStatus.TIMEOUT
    assert report.reasons == ("run exceeded max_run_time_ms (killed)",)
    assert SHORT_MS / 1000 <= elapsed < SHORT_MS / 1000 + 5


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_patch_too_deeply_nested_to_compile_fails_with_that_reason(
    backend: ProcessBackend, language: str
) -> None:
    # Under the 64 KiB limit; CPython answers it with MemoryError, V8 with RangeError.
    report = _hostile(backend, language, "-" * 60000 + "1")
    assert report.status is RunStatus.FAILED
    assert report.reasons[0] in (
        "patch raised: too deeply nested to compile",
        "patch raised: RangeError: Maximum call stack size exceeded",
    ), report.reasons


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_patch_that_raises_is_rolled_back_at_once_and_disabled(
    backend: ProcessBackend, language: str
) -> None:
    report = _hostile(backend, language, CODE[language]["raises"])
    assert report.status is RunStatus.FAILED
    assert report.reasons[0] in ("patch raised: RuntimeError: boom", "patch raised: Error: boom")
    counts = report.events["counts"]["patched"]
    assert counts["patch_applied"] == 1 and counts["patch_error"] == 1  # then disabled
    rollback = next(e for e in report.events["notable"] if e["name"] == "rollback")
    assert rollback["op_id"] == "op-000001"  # at once, not at the end of the run
    assert report.metrics["patch_errors"] == 1


@pytest.fixture
def listener() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on the host's loopback; records every connection it accepts."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    accepted: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, addr = server.accept()
            except TimeoutError:
                continue
            accepted.append(str(addr))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sandbox_has_no_network(
    backend: ProcessBackend, listener: tuple[int, list[str]], language: str
) -> None:
    port, accepted = listener
    code = CONNECT[language].replace("PORT", str(port))
    logs: list[str] = []
    _hostile(backend, language, code, on_log=logs.append)
    net = [line for line in logs if "net: " in line]
    assert net and all("CONNECTED" not in line for line in net), net
    assert accepted == []
    # Guard against a probe that cannot succeed: without isolation it does connect.
    logs.clear()
    _hostile(ProcessBackend(unsafe_no_isolation=True), language, code, on_log=logs.append)
    assert any("CONNECTED" in line for line in logs)
    assert accepted


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_sandbox_sees_no_secrets_and_leaves_nothing_behind(
    backend: ProcessBackend, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMTUI_TOKEN", "tok-must-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-must-not-leak")
    code = {
        "python": "import os\nctx.log('env', sorted(os.environ), 'home', os.environ['HOME'])\n",
        "node": "ctx.log('env', Object.keys(process.env).sort().join(','), 'home', "
        "process.env.HOME);\n",
    }[language]
    logs: list[str] = []
    _hostile(backend, language, code, on_log=logs.append)
    line = next(line for line in logs if " env " in line)
    assert "leak" not in "\n".join(logs)
    assert "SIMTUI_TOKEN" not in line and "AWS_SECRET_ACCESS_KEY" not in line
    home = Path(line.rsplit("home ", 1)[1])
    assert home.name.startswith("simtui-sbx-")
    assert not home.exists()  # the private temp dir is gone
    leftovers = []
    for proc in Path("/proc").iterdir():
        try:
            if str(home) in (proc / "cmdline").read_text(errors="replace"):
                leftovers.append(proc.name)
        except OSError:
            continue
    assert leftovers == []


def test_resource_limits_apply(backend: ProcessBackend) -> None:
    memory = _hostile(backend, "python", "x = bytearray(1 << 30)\n")
    assert memory.reasons[0] == "patch raised: MemoryError"
    big = _hostile(backend, "python", "open('big', 'wb').write(b'0' * (32 << 20))\n")
    assert big.reasons[0].startswith("patch raised: OSError: [Errno 27] File too large")


def test_runs_keep_working_after_hostile_ones(
    backend: ProcessBackend, run: Callable[..., Report]
) -> None:
    from simcore.patches import default_patch

    report = run(SCENARIO, "python", default_patch("timeout", "python"))
    assert report.status is RunStatus.SUCCESS
    assert os.getpid() > 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_error_text_from_a_patch_cannot_drive_a_terminal(
    backend: ProcessBackend, language: str
) -> None:
    code = {
        "python": "raise RuntimeError('\\x1b[2J\\x1b[31mHACKED')\n",
        "node": "throw new Error('\\x1b[2J\\x1b[31mHACKED');\n",
    }[language]
    report = _hostile(backend, language, code)
    assert "HACKED" in report.reasons[0]
    assert "\x1b" not in report.to_json() and "\x1b" not in "".join(report.reasons)
