"""The process sandbox backend: refusing without isolation, the contract, the log caps."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest

import simcore.sandbox.process as process_module
from simcore.config import Settings
from simcore.doctor import check_process_isolation
from simcore.errors import InvalidInput
from simcore.gateway.protocol import MAX_LINE_BYTES
from simcore.model import Patch, RunStatus
from simcore.patches import default_patch
from simcore.runner import run_simulation
from simcore.sandbox.base import (
    Sandbox,
    SandboxBackend,
    SandboxSpec,
    SandboxStartError,
    SandboxUnavailable,
)
from simcore.sandbox.logs import MAX_LOG_LINES, clean_line
from simcore.sandbox.process import ProcessBackend
from simcore.templates import TEMPLATES

SCENARIO = TEMPLATES["timeout"].scenario.model_copy(update={"total_requests": 5})


def test_backend_and_sandbox_keep_the_protocol(backend: ProcessBackend) -> None:
    assert isinstance(backend, SandboxBackend)
    sandbox = backend.start(SandboxSpec("python", 10_000))
    try:
        assert isinstance(sandbox, Sandbox)
        sandbox.send(b'{"type":"hello","protocol":1,"config":{},"patch":null}\n')
        ready = json.loads(sandbox.recv())
        assert ready["type"] == "ready" and ready["sdk"].startswith("simpay-python/")
    finally:
        exit_info = sandbox.close()
    assert not exit_info.deadline_hit
    assert sandbox.close() is exit_info  # idempotent


def test_isolation_that_is_not_there_is_refused_with_the_reason() -> None:
    if shutil.which("bwrap"):
        pytest.skip("bubblewrap is installed here")
    backend = ProcessBackend(isolation="bwrap")
    with pytest.raises(SandboxUnavailable, match=r"bwrap: bwrap not found.*--unsafe-no-isolation"):
        backend.check()
    with pytest.raises(SandboxUnavailable):
        run_simulation(SCENARIO, "python", 1, None, backend)


def test_a_host_that_refuses_the_private_tmp_gets_no_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Namespaces alone are not enough: where the sandbox's private /tmp cannot be mounted
    (a container without CAP_SYS_ADMIN, say), runs are refused, and doctor says why."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("unshare", "sh", "mkdir", "chown", "setpriv", "prlimit", "true"):
        found = shutil.which(tool, path=process_module.SAFE_PATH)
        if found is None:
            pytest.skip(f"{tool} is not installed")
        (tools / tool).symlink_to(found)
    mount = tools / "mount"
    mount.write_text("#!/bin/sh\necho 'mount: /tmp: permission denied.' >&2\nexit 32\n")
    mount.chmod(0o755)
    monkeypatch.setattr(process_module, "SAFE_PATH", str(tools))
    monkeypatch.setattr(process_module, "_probe_cache", {})
    mechanism = "unshare" if os.geteuid() == 0 else "userns"

    backend = ProcessBackend(isolation=mechanism)
    with pytest.raises(SandboxUnavailable, match=rf"{mechanism}: mount: /tmp: permission denied"):
        backend.check()
    with pytest.raises(SandboxUnavailable, match="private tmpfs on /tmp"):
        run_simulation(SCENARIO, "python", 1, None, backend)
    doctor = check_process_isolation(Settings(sandbox="process"))
    assert not doctor.ok and doctor.required
    assert "mount: /tmp: permission denied" in doctor.detail
    assert "refuse to run" in doctor.detail


def test_unknown_isolation_and_language_are_refused() -> None:
    with pytest.raises(SandboxUnavailable, match="unknown isolation 'chroot'"):
        ProcessBackend(isolation="chroot")
    with pytest.raises(SandboxStartError, match="no SDK runner for language 'php'"):
        ProcessBackend().start(SandboxSpec("php"))


def test_unsafe_mode_says_so() -> None:
    assert "WITHOUT isolation" in ProcessBackend(unsafe_no_isolation=True).check()


def test_languages_without_a_runner_end_in_error_not_an_exception(backend: ProcessBackend) -> None:
    report = run_simulation(SCENARIO, "php", 1, None, backend)
    assert report.status is RunStatus.ERROR
    assert report.reasons == ("no SDK runner for php yet",)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"seed": 2**63}, "seed"),
        ({"language": "cobol"}, "language"),
        ({"patch": default_patch("timeout", "node")}, "patch"),
        ({"max_run_time_ms": 0}, "max_run_time_ms"),
    ],
)
def test_bad_arguments_name_the_field(
    backend: ProcessBackend, kwargs: dict[str, object], field: str
) -> None:
    args: dict[str, object] = {"scenario": SCENARIO, "language": "python", "seed": 1,
                               "patch": None, "backend": backend}  # fmt: skip
    args.update(kwargs)
    with pytest.raises(InvalidInput) as caught:
        run_simulation(**args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_log_lines_are_cleaned() -> None:
    assert clean_line(b"\x1b[31mred\x1b[0m\ttab\r\n") == "\ufffd[31mred\ufffd[0m    tab"
    assert len(clean_line(b"x" * 10_000)) == 2_000


def test_a_flood_on_stderr_is_capped_and_the_run_goes_on(backend: ProcessBackend) -> None:
    code = "import sys\nsys.stderr.write('spam\\n' * 50000)\nctx.retry()\n"
    patch = Patch(id=uuid.uuid4(), sdk_language="python", error_signature="timeout",
                  patch_code=code)  # fmt: skip
    lines: list[str] = []
    scenario = SCENARIO.model_copy(update={"error_frequency": 1.0, "total_requests": 2})
    report = run_simulation(scenario, "python", 1, patch, backend, on_log=lines.append)
    assert report.status is RunStatus.SUCCESS
    assert report.log_truncated
    assert len(lines) == MAX_LOG_LINES + 1 and lines[-1].startswith("[log truncated")


def test_an_interpreter_under_tmp_is_replaced_by_the_one_it_links_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A checkout (and its virtualenv) under /tmp is hidden by the sandbox's private /tmp:
    # the runner must be started with the real interpreter, outside every covered folder.
    real = os.path.realpath(process_module.sys.executable)
    link = Path("/tmp") / f"simtui-venv-{uuid.uuid4().hex[:8]}" / "python"
    link.parent.mkdir()
    try:
        link.symlink_to(real)
        monkeypatch.setattr(process_module.sys, "executable", str(link))
        chosen = process_module._interpreter("python", drop=False, private_tmp=True)
        assert chosen == real
        assert not chosen.startswith("/tmp/")
        # Without a private /tmp (unsafe mode) the virtualenv's own interpreter is fine.
        assert process_module._interpreter("python", drop=False) == str(link)
    finally:
        shutil.rmtree(link.parent, ignore_errors=True)


def _raw_sandbox(tmp_path: Path, script: str) -> process_module.ProcessSandbox:
    """A ProcessSandbox around a plain python process writing ``script``'s output: the line
    reading alone, without isolation."""
    argv = [sys.executable, "-I", "-c", script]
    return process_module.ProcessSandbox(
        argv, {}, str(tmp_path), None, SandboxSpec("python", 10_000)
    )


def test_recv_reads_lines_as_readline_with_the_size_cap(tmp_path: Path) -> None:
    limit = MAX_LINE_BYTES + 1
    script = (
        "import os, time\n"
        "os.write(1, b'one\\ntwo\\n')\n"
        "time.sleep(0.2)\n"
        f"os.write(1, b'x' * {limit + 10} + b'\\n' + b'half')\n"
        "time.sleep(0.2)\n"
        "os.write(1, b' and the rest\\nlast, no newline')\n"
    )
    sandbox = _raw_sandbox(tmp_path, script)
    try:
        assert sandbox.recv() == b"one\n"
        assert sandbox.recv_nowait() == b"two\n"  # read with the first
        assert sandbox.recv() == b"x" * limit  # an oversized line: its first bytes only
        assert sandbox.recv() == b"x" * 10 + b"\n"
        assert sandbox.recv() == b"half and the rest\n"  # a line split over two writes
        assert sandbox.recv() == b"last, no newline"  # what is left at the end
        assert sandbox.recv_nowait() == b""  # the end of output: no waiting
        assert sandbox.recv() == b""
        assert sandbox.recv() == b""
    finally:
        sandbox.close()
    assert sandbox.recv() == b""  # closed: never reads a descriptor that may be reused


def test_recv_nowait_does_not_wait_for_the_runner(tmp_path: Path) -> None:
    sandbox = _raw_sandbox(tmp_path, "import sys; sys.stdin.read()")
    try:
        started = time.monotonic()
        assert sandbox.recv_nowait() is None
        assert time.monotonic() - started < 1
    finally:
        sandbox.close()
