"""The hostile-patch corpus in both sandbox backends, process and docker, python and node.

Each case ends with the status and reason it should, leaves nothing on the host (no process,
no file, no container), shows no secret of the worker, and the next run on the same backend
instance succeeds. The probes are in ``tests/core/hostile_corpus.py``.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simcore.model import Patch, RunStatus
from simcore.patches import default_patch
from simcore.runner import Report, run_simulation
from simcore.sandbox.docker import DockerBackend, DockerSandbox, sandbox_env
from simcore.sandbox.logs import MAX_LOG_LINES
from simcore.sandbox.process import ProcessBackend
from tests.core.hostile_corpus import DONE_REASONS, PROBES, SCENARIO, SHORT_MS, SLEEPER, fill
from tests.images.sandboxes import (
    BACKENDS,
    LANGUAGES,
    Recording,
    docker_backend,
    host_processes,
    leaked_secrets,
    process_backend,
    removed_soon,
    worker_secrets,
)

FOLLOW_UP = SCENARIO.model_copy(update={"total_requests": 2})
FLOOD_MS = 60_000
# Names the docker runtime or the images add to the allow-listed environment.
DOCKER_ADDED_ENV = {"HOSTNAME", "PYTHONUNBUFFERED"}


@pytest.fixture(scope="module")
def secrets_in_env() -> Iterator[None]:
    """Secrets in the worker's environment while this module's sandboxes exist (the docker
    pool's containers are created from it too)."""
    with worker_secrets():
        yield


@pytest.fixture(scope="module")
def process_sandbox(secrets_in_env: None) -> ProcessBackend:
    return process_backend()


@pytest.fixture(scope="module")
def docker_sandbox(secrets_in_env: None, built: str) -> Iterator[DockerBackend]:
    backend = docker_backend(warm_pool=2)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[int, list[str], list[str]]]:
    """A TCP server on every address of the host; records the connections it accepts.
    Yields its port, the host addresses to try, and the accepted peers."""
    server = socket.create_server(("0.0.0.0", 0))
    server.settimeout(0.05)
    port = server.getsockname()[1]
    hosts = ["127.0.0.1"]
    # The host seen from the default docker bridge, and the host's own outward address.
    for target in ("172.17.0.1", "192.0.2.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 9))
                hosts.append(probe.getsockname()[0])
            except OSError:
                continue
    hosts = list(dict.fromkeys(hosts))
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
    for host in hosts:  # each address does accept a connection from the host itself
        socket.create_connection((host, port), timeout=2).close()
    deadline = time.monotonic() + 2
    while len(accepted) < len(hosts) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(accepted) == len(hosts), (hosts, accepted)
    accepted.clear()
    yield port, hosts, accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


def _patch(language: str, code: str) -> Patch:
    return Patch(id=uuid.uuid4(), sdk_language=language, error_signature="timeout",
                 patch_code=code, rollback_code="")  # fmt: skip


class Outcome:
    def __init__(self, report: Report, logs: list[str], seconds: float) -> None:
        self.report = report
        self.logs = logs
        self.seconds = seconds
        self.text = "\n".join(logs)

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.logs if prefix in line]


def play(
    backend: ProcessBackend | DockerBackend, language: str, code: str, max_run_time_ms: int
) -> tuple[Outcome, Any]:
    recording = Recording(backend)
    logs: list[str] = []
    started = time.monotonic()
    report = run_simulation(SCENARIO, language, 1, _patch(language, code), recording,
                            max_run_time_ms, logs.append)  # fmt: skip
    outcome = Outcome(report, logs, time.monotonic() - started)
    assert len(recording.started) == 1
    return outcome, recording.started[0]


def assert_patch_ran_once(outcome: Outcome) -> None:
    report = outcome.report
    assert report.status is RunStatus.FAILED, (report.reasons, outcome.text[-2000:])
    assert report.reasons[0] in DONE_REASONS, report.reasons
    assert report.events["counts"]["patched"]["patch_error"] == 1


def assert_killed_at_deadline(outcome: Outcome) -> None:
    assert outcome.report.status is RunStatus.TIMEOUT, outcome.report.reasons
    assert outcome.report.reasons == ("run exceeded max_run_time_ms (killed)",)
    # The deadline counts from the runner's start; a cold container takes a moment to start.
    assert SHORT_MS / 1000 <= outcome.seconds < SHORT_MS / 1000 + 5


def assert_nothing_left(backend_name: str, backend: Any, sandbox: Any) -> None:
    assert host_processes(SLEEPER) == []
    if backend_name == "docker":
        assert isinstance(sandbox, DockerSandbox)
        assert removed_soon(backend, sandbox.container_id)
    else:
        # The runner's home was in its private /tmp: never a folder of the host's.
        assert sandbox.host_dir is None
        assert not Path(sandbox.home).exists()


def assert_next_run_succeeds(backend: Any, language: str) -> None:
    report = run_simulation(FOLLOW_UP, language, 1, default_patch("timeout", language), backend,
                            30_000)  # fmt: skip
    assert report.status is RunStatus.SUCCESS, report.reasons


# -- the cases -------------------------------------------------------------------------------


def check_network(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)
    seen = o.lines("net: ")
    assert len(seen) == len(ctx["hosts"]), o.text
    assert all("blocked" in line and "CONNECTED" not in line for line in seen), seen
    assert ctx["accepted"] == []


def check_dns(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)
    seen = o.lines("dns: ")
    assert seen and all("dns: failed" in line for line in seen), o.text


def check_fork_bomb(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)
    (line,) = o.lines("fork: ")
    assert "stopped after" in line, line
    started = int(line.split("stopped after ")[1].split()[0])
    limit = ctx["backend"].limits.pids if ctx["name"] == "docker" else 256
    assert started < limit


def check_memory(o: Outcome, ctx: dict[str, Any]) -> None:
    report = o.report
    assert report.status is RunStatus.FAILED
    if ctx["name"] == "docker":
        # The cgroup limit: the kernel kills the runner, and the log says why.
        limit = ctx["backend"].limits.memory_bytes >> 20
        assert report.reasons[0].startswith("protocol_violation: the SDK runner exited")
        assert "(exit status 137)" in report.reasons[0]
        assert (
            f"out of memory: the kernel killed the runner at the {limit} MiB limit"
            in (report.reasons[0])
        )
    else:
        # Address-space rlimit: the allocation fails inside the patch.
        assert report.reasons[0] in (
            "patch raised: MemoryError",
            "patch raised: RangeError: Array buffer allocation failed",
        )


def check_deadline(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_killed_at_deadline(o)


def check_stderr_flood(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)  # it wrote its gigabyte and carried on
    assert o.report.log_truncated
    assert len(o.logs) <= MAX_LOG_LINES + 1
    assert o.logs[-1].startswith("[log truncated after")


def check_write_outside(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)
    results = {line.split("write: ")[1].rsplit(" ", 2)[0]: line for line in o.lines("write: ")}
    assert len(results) == len(ctx["targets"]) + 1, o.text
    (mine,) = (line for path, line in results.items() if path not in ctx["targets"])
    assert "WRITTEN" in mine  # its own temporary folder is writable
    created = [t for t in ctx["new_targets"] if Path(t).exists()]
    for target in created:  # only files the probe made: none of them existed before
        Path(target).unlink()
    # Nothing reached the host: every folder it could write is the sandbox's own tmpfs.
    assert created == []
    written = [t for t in ctx["targets"] if "WRITTEN" in results[t]]
    shared = ctx["shared_tmp"]
    if ctx["name"] == "docker":
        # The container's only writable place is its /tmp (and /dev/shm does not exist).
        assert written == [t for t in shared if t.startswith("/tmp/")], results
    else:
        # A private tmpfs over each of the host's shared folders that exists here.
        assert written == [t for t in shared if Path(t).parent.is_dir()], results


def check_env_secrets(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)
    (env_line,) = o.lines("env: ")
    assert leaked_secrets(o.text) == []
    assert leaked_secrets(o.report.to_json()) == []
    allowed = set(sandbox_env()) | (DOCKER_ADDED_ENV if ctx["name"] == "docker" else set())
    names = set(json.loads(env_line.split("env: ", 1)[1]))
    assert names <= allowed, names - allowed


def check_host_files(o: Outcome, ctx: dict[str, Any]) -> None:
    assert_patch_ran_once(o)
    reads = o.lines("read: ")
    assert len(reads) == len(ctx["reads"]) and all("refused" in line for line in reads), reads
    assert ctx["marker"] not in o.text
    lists = o.lines("list: ")
    assert len(lists) == len(ctx["lists"])
    if ctx["name"] == "docker":
        # Nothing of the host's file system is there at all.
        assert all("refused" in line for line in lists), lists
    else:
        # The process sandbox sees the host read-only (listing allowed, 0600 files not).
        assert all("refused" in line or "secret.txt" in line for line in lists), lists


def check_forged(detail: str) -> Any:
    def check(o: Outcome, ctx: dict[str, Any]) -> None:
        report = o.report
        assert report.status is RunStatus.FAILED
        assert report.reasons[0].startswith("protocol_violation: ")
        assert detail in report.reasons[0]
        assert report.metrics["success_rate"] == 0.0  # nothing forged counts

    return check


CASES: dict[str, tuple[Any, int]] = {
    "network": (check_network, 20_000),
    "dns": (check_dns, 20_000),
    "fork_bomb": (check_fork_bomb, 20_000),
    "memory": (check_memory, 20_000),
    "spin": (check_deadline, SHORT_MS),
    "sleep": (check_deadline, SHORT_MS),
    "stderr_flood": (check_stderr_flood, FLOOD_MS),
    "write_outside": (check_write_outside, 20_000),
    "env_secrets": (check_env_secrets, 20_000),
    "host_files": (check_host_files, 20_000),
    "forged_done": (check_forged("while 'op-000002' is in flight"), 20_000),
    "forged_report": (check_forged("unknown message type 'report'"), 20_000),
    "garbage": (check_forged("not a JSON protocol message"), 20_000),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_hostile_patch(
    request: pytest.FixtureRequest,
    listener: tuple[int, list[str], list[str]],
    tmp_path: Path,
    backend_name: str,
    language: str,
    case: str,
) -> None:
    backend = request.getfixturevalue(f"{backend_name}_sandbox")
    port, hosts, accepted = listener
    # The worker's own files: a folder only its owner may write, a secret only it may read.
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    worker_dir.chmod(0o755)
    marker = f"sk_live_file_{uuid.uuid4().hex[:8]}"
    secret = worker_dir / "secret.txt"
    secret.write_text(marker)
    secret.chmod(0o600)
    tag = uuid.uuid4().hex[:8]
    shared_tmp = [f"/tmp/simtui-intruder-{tag}", f"/var/tmp/simtui-intruder-{tag}",
                  f"/dev/shm/simtui-intruder-{tag}"]  # fmt: skip
    new_targets = [str(worker_dir / "intruder"), f"/etc/simtui-intruder-{tag}",
                   f"/simtui-intruder-{tag}", f"/opt/simtui/sdk/{language}/intruder",
                   *shared_tmp]  # fmt: skip
    assert not any(Path(t).exists() for t in new_targets)
    # Files that exist, never on the host: the container's own hosts file (the engine's
    # bind mount, a classic hole in a read-only root).
    targets = new_targets + (["/etc/hosts"] if backend_name == "docker" else [])
    ctx: dict[str, Any] = {
        "name": backend_name, "backend": backend, "lang": language, "hosts": hosts,
        "accepted": accepted, "targets": targets, "new_targets": new_targets,
        "shared_tmp": shared_tmp, "marker": marker,
        "reads": ["/etc/shadow", str(secret)],
        "lists": [str(worker_dir), f"/proc/{os.getpid()}/cwd"],
    }  # fmt: skip
    code = fill(PROBES[case][language], HOSTS=hosts, PORT=port, TARGETS=targets,
                WORKER_PID=os.getpid(), READS=ctx["reads"], LISTS=ctx["lists"])  # fmt: skip
    check, max_run_time_ms = CASES[case]

    outcome, sandbox = play(backend, language, code, max_run_time_ms)

    try:
        check(outcome, ctx)
        assert leaked_secrets(outcome.text + outcome.report.to_json()) == []
    finally:
        assert_nothing_left(backend_name, backend, sandbox)
    assert_next_run_succeeds(backend, language)


# -- what a patch leaves in the shared temporary folders -------------------------------------

LEAVE_FILES = {
    "python": (
        "for path in TARGETS:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write(MARK)\n"
        "        with open(path) as f:\n"
        "            ctx.log('kept:', path, f.read())\n"
        "    except OSError as exc:\n"
        "        ctx.log('kept:', path, 'refused', type(exc).__name__)\n"
        "raise RuntimeError('done')\n"
    ),
    "node": (
        "const fs = process.mainModule.require('fs');\n"
        "for (const p of TARGETS) {\n"
        "  try { fs.writeFileSync(p, MARK); ctx.log('kept: ' + p + ' ' + "
        "fs.readFileSync(p, 'utf8')); }\n"
        "  catch (e) { ctx.log('kept: ' + p + ' refused ' + e.code); }\n"
        "}\n"
        "throw new Error('done');\n"
    ),
}
LOOK_FOR_FILES = {
    "python": (
        "import os\n"
        "for path in TARGETS:\n"
        "    ctx.log('previous:', path, 'PRESENT' if os.path.exists(path) else 'absent')\n"
        "ctx.retry()\n"
    ),
    "node": (
        "const fs = process.mainModule.require('fs');\n"
        "for (const p of TARGETS) "
        "ctx.log('previous: ' + p + ' ' + (fs.existsSync(p) ? 'PRESENT' : 'absent'));\n"
        "ctx.retry();\n"
    ),
}


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("backend_name", BACKENDS)
def test_files_a_patch_leaves_in_tmp_never_reach_the_host_or_the_next_run(
    request: pytest.FixtureRequest, backend_name: str, language: str
) -> None:
    backend = request.getfixturevalue(f"{backend_name}_sandbox")
    mark = f"left-behind-{uuid.uuid4().hex[:8]}"
    targets = [f"{folder}/simtui-left-{mark}" for folder in ("/tmp", "/var/tmp", "/dev/shm")]
    on_host_during_run: list[str] = []

    def watch(line: str) -> None:
        # Called while the sandbox still runs, right after the patch read its file back.
        if "kept: " in line:
            on_host_during_run.extend(t for t in targets if os.path.exists(t))

    logs: list[str] = []
    code = fill(LEAVE_FILES[language], TARGETS=targets, MARK=mark)
    report = run_simulation(SCENARIO, language, 1, _patch(language, code), backend, 20_000,
                            lambda line: (logs.append(line), watch(line)))  # fmt: skip
    assert report.reasons[0] in DONE_REASONS, (report.reasons, logs[-5:])
    kept = [line for line in logs if "kept: " in line and line.endswith(mark)]
    assert any(f"kept: {targets[0]} " in line for line in kept), logs  # /tmp was writable
    assert on_host_during_run == []
    assert [t for t in targets if os.path.exists(t)] == []

    # The next run on the same worker starts clean, and succeeds.
    logs.clear()
    look = fill(LOOK_FOR_FILES[language], TARGETS=targets)
    report = run_simulation(FOLLOW_UP, language, 1, _patch(language, look), backend, 30_000,
                            logs.append)  # fmt: skip
    assert report.status is RunStatus.SUCCESS, report.reasons
    seen = [line for line in logs if "previous: " in line]
    assert seen and all(line.endswith(" absent") for line in seen), seen
