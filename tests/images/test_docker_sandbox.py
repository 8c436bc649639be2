"""The docker sandbox backend: its hardening seen from the engine during a run, the contract
it shares with the process backend (byte-identical reports), orphans, the warm pool, and the
reasons it gives when it cannot run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from simcore.model import Patch, RunStatus
from simcore.patches import default_patch
from simcore.runner import run_simulation
from simcore.sandbox.base import Sandbox, SandboxBackend, SandboxSpec, SandboxUnavailable
from simcore.sandbox.docker import (
    LABEL_BACKEND,
    LABEL_OWNER,
    LABEL_RUN,
    LABEL_WARM,
    LABEL_WORKER,
    SANDBOX_UID,
    DockerBackend,
    DockerSandbox,
    owner_of,
    remove_orphans,
    sandbox_env,
)
from simcore.sandbox.process import ProcessBackend
from simcore.sandbox.selection import select
from simcore.templates import TEMPLATES
from tests.images.conftest import simcore
from tests.images.sandboxes import (
    LANGUAGES,
    Recording,
    container_exists,
    containers,
    docker_backend,
    leaked_secrets,
    process_backend,
    removed_soon,
    worker_secrets,
)

RUNBOOK_TEMPLATES = ("signature_mismatch", "timeout", "invalid_currency")
SMALL = TEMPLATES["timeout"].scenario.model_copy(update={"total_requests": 3})


@pytest.fixture(scope="module")
def docker(built: str) -> Iterator[DockerBackend]:
    with worker_secrets():
        backend = docker_backend(warm_pool=0)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def process(built: str) -> ProcessBackend:
    return process_backend()


def _good(language: str, template: str = "timeout") -> Patch:
    patch = default_patch(template, language)
    assert patch is not None
    return patch


# -- the contract ----------------------------------------------------------------------------


def test_backend_and_sandbox_keep_the_protocol(docker: DockerBackend) -> None:
    assert isinstance(docker, SandboxBackend)
    assert docker.name == "docker"
    assert docker.check().startswith("docker sandbox (engine ")
    sandbox = docker.start(SandboxSpec("python", 10_000))
    try:
        assert isinstance(sandbox, Sandbox)
        sandbox.send(b'{"type":"hello","protocol":1,"config":{},"patch":null}\n')
        ready = json.loads(sandbox.recv())
        assert ready["type"] == "ready" and ready["sdk"].startswith("simpay-python/")
    finally:
        exit_info = sandbox.close()
    assert exit_info.exit_code == 0  # end of input: the runner left on its own
    assert not exit_info.deadline_hit
    assert sandbox.close() is exit_info  # idempotent
    assert not container_exists(docker, sandbox.container_id)
    with pytest.raises(BrokenPipeError):
        sandbox.send(b"{}\n")
    assert sandbox.recv() == b""


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", RUNBOOK_TEMPLATES)
def test_reports_are_byte_identical_to_the_process_backend(
    docker: DockerBackend, process: ProcessBackend, template: str, language: str
) -> None:
    scenario = TEMPLATES[template].scenario
    patch = _good(language, template)
    in_docker = run_simulation(scenario, language, 7, patch, docker, 60_000)
    in_process = run_simulation(scenario, language, 7, patch, process, 60_000)
    assert in_docker.status is RunStatus.SUCCESS, in_docker.reasons
    assert in_docker.sandbox == "docker" and in_process.sandbox == "process"
    assert in_docker.to_json() == in_process.to_json()


def test_a_runner_killed_at_the_deadline_ends_the_run_in_timeout(docker: DockerBackend) -> None:
    patch = Patch(id=uuid.uuid4(), sdk_language="python", error_signature="timeout",
                  patch_code="import time\ntime.sleep(3600)\n")  # fmt: skip
    recording = Recording(docker)
    scenario = SMALL.model_copy(update={"error_frequency": 1.0})
    report = run_simulation(scenario, "python", 1, patch, recording, 1_000)
    assert report.status is RunStatus.TIMEOUT
    (sandbox,) = recording.started
    info = sandbox.close()
    assert info.deadline_hit and info.exit_code == 137
    assert not container_exists(docker, sandbox.container_id)


def test_a_run_that_ends_normally_leaves_only_a_stopped_container_for_the_reaper(
    engine: Any, built: str
) -> None:
    """The report does not wait for the engine's teardown: by the time it is ready, no process
    of the sandbox is left; the stopped container is removed in the background, and closing
    the backend waits for that."""
    backend = docker_backend(warm_pool=0)
    recording = Recording(backend)
    runner_pids: list[int] = []

    def on_log(line: str) -> None:
        if "timed out after" in line and not runner_pids:  # the patch runs: mid-run
            (sandbox,) = recording.started
            state = engine.api.inspect_container(sandbox.container_id)["State"]
            runner_pids.append(int(state["Pid"]))

    scenario = SMALL.model_copy(update={"error_frequency": 1.0})
    try:
        report = run_simulation(scenario, "python", 1, _good("python"), recording, 30_000,
                                on_log)  # fmt: skip
        assert report.status is RunStatus.SUCCESS, report.reasons
        (pid,) = runner_pids
        assert pid > 0 and not os.path.exists(f"/proc/{pid}")  # the runner, seen from the host
        (sandbox,) = recording.started
        assert isinstance(sandbox, DockerSandbox)
        assert sandbox.close().exit_code is None  # nobody waited for it
    finally:
        backend.close()
    assert engine.api.containers(all=True, filters={"id": sandbox.container_id}) == []


def test_a_missing_language_or_a_closed_backend_cannot_start(built: str) -> None:
    from simcore.sandbox.base import SandboxStartError

    backend = docker_backend(warm_pool=0)
    with pytest.raises(SandboxStartError, match="no SDK runner for language 'php'"):
        backend.start(SandboxSpec("php"))
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(SandboxStartError, match="closed"):
        backend.start(SandboxSpec("python"))


# -- hardening, seen from the engine and from inside, during a run --------------------------

INSIDE = {
    "python": (
        "import os\n"
        "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in l)\n"
        "ctx.log('inside:', os.getuid(), os.getgid(), status['CapEff'].strip(),"
        " status['NoNewPrivs'].strip(), status['Seccomp'].strip())\n"
        "ctx.log('mounts:', [l for l in open('/proc/self/mounts')"
        " if ' / ' in l or ' /tmp ' in l])\n"
        "import time\ntime.sleep(3600)\n"
    ),
    "node": (
        "const fs = process.mainModule.require('fs');\n"
        "const st = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8').split('\\n')"
        ".filter((l) => l.includes(':\\t')).map((l) => l.split(':\\t')));\n"
        "ctx.log('inside: ' + process.getuid() + ' ' + process.getgid() + ' ' + st.CapEff.trim()"
        " + ' ' + st.NoNewPrivs.trim() + ' ' + st.Seccomp.trim());\n"
        "ctx.log('mounts: ' + JSON.stringify(fs.readFileSync('/proc/self/mounts', 'utf8')"
        ".split('\\n').filter((l) => l.includes(' / ') || l.includes(' /tmp '))));\n"
        "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);\n"
    ),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_hardening_setting_is_in_force_during_a_run(
    docker: DockerBackend, language: str
) -> None:
    patch = Patch(id=uuid.uuid4(), sdk_language=language, error_signature="timeout",
                  patch_code=INSIDE[language])  # fmt: skip
    scenario = SMALL.model_copy(update={"error_frequency": 1.0})
    logs: list[str] = []
    inside = threading.Event()

    def on_log(line: str) -> None:
        logs.append(line)
        if "mounts: " in line:
            inside.set()

    recording = Recording(docker)
    done: list[Any] = []
    thread = threading.Thread(
        target=lambda: done.append(
            run_simulation(scenario, language, 1, patch, recording, 5_000, on_log)
        )
    )
    thread.start()
    try:
        assert inside.wait(15), logs
        (found,) = containers(docker, **{LABEL_WARM: "0"})
        attrs = docker.api.inspect_container(found["Id"])
        (sandbox,) = recording.started
        assert isinstance(sandbox, DockerSandbox) and attrs["Id"] == sandbox.container_id
        assert attrs["State"]["Running"]
        host, config = attrs["HostConfig"], attrs["Config"]
        limits = docker.limits
        assert host["NetworkMode"] == "none"
        assert list(attrs["NetworkSettings"]["Networks"]) == ["none"]
        assert host["ReadonlyRootfs"] is True
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
        assert host["SecurityOpt"] == ["no-new-privileges"]
        assert host["Privileged"] is False
        assert host["PidsLimit"] == limits.pids
        assert host["Memory"] == host["MemorySwap"] == limits.memory_bytes
        assert host["NanoCpus"] == limits.nano_cpus
        assert host["IpcMode"] == "none"
        assert host["LogConfig"]["Type"] == "none"  # no copy of the output on the host
        assert config["User"] == f"{SANDBOX_UID}:{SANDBOX_UID}"
        # No host path inside: no binds, no volumes, no mounts but the tmpfs.
        assert not host["Binds"] and not host.get("Mounts") and attrs["Mounts"] == []
        assert host["VolumesFrom"] is None
        assert host["Tmpfs"] == {"/tmp": f"rw,noexec,nosuid,nodev,size={limits.tmpfs_bytes}"}
        ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in host["Ulimits"]}
        assert ulimits["nofile"] == (limits.open_files, limits.open_files)
        assert ulimits["core"] == (0, 0)
        # The environment: the allow-list, plus what the image itself declares.
        image_env = {e.split("=", 1)[0] for e in docker.api.inspect_image(config["Image"])
                     ["Config"].get("Env") or []}  # fmt: skip
        names = {e.split("=", 1)[0] for e in config["Env"]}
        assert names <= set(sandbox_env()) | image_env, names
        assert leaked_secrets("\n".join(config["Env"])) == []
        labels = config["Labels"]
        assert labels[LABEL_BACKEND] == "docker" and labels[LABEL_WORKER] == docker.worker_id
        assert labels[LABEL_OWNER].split(":")[1] == str(os.getpid())
        assert config["Cmd"][-1] == f"/opt/simtui/sdk/{language}/runner." + (
            "py" if language == "python" else "js"
        )
        # And from inside: uid, no capabilities, no_new_privs, seccomp filter, read-only /.
        (line,) = [x for x in logs if "inside: " in x]
        assert line.split("inside: ")[1].split() == ["10001", "10001", "0000000000000000",
                                                     "1", "2"]  # fmt: skip
        (mounts,) = [x for x in logs if "mounts: " in x]
        assert " / " in mounts and "ro," in mounts.split(" / ")[1][:40]
        assert "tmpfs /tmp tmpfs rw,nosuid,nodev,noexec" in mounts
    finally:
        thread.join(30)
    (report,) = done
    assert report.status is RunStatus.TIMEOUT


def test_the_container_carries_the_run_id_when_known(docker: DockerBackend) -> None:
    run_id = str(uuid.uuid4())
    sandbox = docker.start(SandboxSpec("node", 10_000, run_id=run_id))
    try:
        (found,) = containers(docker, **{LABEL_RUN: run_id})
        assert found["Id"] == sandbox.container_id
    finally:
        sandbox.close()


def test_out_of_memory_is_reported_as_such(docker: DockerBackend) -> None:
    code = "x = []\nwhile True:\n    x.append(bytearray(16 << 20))\n"
    patch = Patch(id=uuid.uuid4(), sdk_language="python", error_signature="timeout",
                  patch_code=code)  # fmt: skip
    recording = Recording(docker)
    logs: list[str] = []
    scenario = SMALL.model_copy(update={"error_frequency": 1.0})
    report = run_simulation(scenario, "python", 1, patch, recording, 20_000, logs.append)
    note = f"out of memory: the kernel killed the runner at the {docker.limits.memory_bytes >> 20}"
    assert report.status is RunStatus.FAILED
    assert note in report.reasons[0] and "(exit status 137)" in report.reasons[0]
    assert any(note in line for line in logs)  # in the live log too
    info = recording.started[0].close()
    assert info.exit_code == 137 and note in info.log_tail[-1]


# -- orphans ---------------------------------------------------------------------------------


def _labelled(docker: DockerBackend, worker: str, owner: str) -> str:
    created = docker.api.create_container(
        docker.images["python"], command=["true"], network_disabled=True,
        labels={LABEL_BACKEND: "docker", LABEL_WORKER: worker, LABEL_OWNER: owner},
    )  # fmt: skip
    return str(created["Id"])


def test_orphans_of_dead_owners_and_of_this_worker_id_are_removed(docker: DockerBackend) -> None:
    host = socket.gethostname()
    me = f"orphan-test-{uuid.uuid4().hex[:6]}"
    finished = subprocess.Popen(["true"])
    finished.wait()
    alive = owner_of(os.getpid())
    made = {
        "dead pid": _labelled(docker, "someone", f"{host}:{finished.pid}:1"),
        "reused pid": _labelled(docker, "someone", f"{host}:{os.getpid()}:0"),
        "same id elsewhere": _labelled(docker, me, "elsewhere:1:1"),
        "other id elsewhere": _labelled(docker, "someone", "elsewhere:1:1"),
        "alive": _labelled(docker, "someone", alive),
        "alive, same id": _labelled(docker, me, alive),
    }
    try:
        removed = set(remove_orphans(me, docker.api))
        gone = {name for name, cid in made.items() if cid in removed}
        assert gone == {"dead pid", "reused pid", "same id elsewhere"}
        for name, cid in made.items():
            assert container_exists(docker, cid) is (name not in gone)
    finally:
        for cid in made.values():
            if container_exists(docker, cid):
                docker.api.remove_container(cid, force=True)


def test_a_new_backend_removes_the_containers_of_a_worker_that_died(docker: DockerBackend) -> None:
    # A worker that has a sandbox running and a warm pool, then dies without cleaning up.
    code = (
        "import os\n"
        "from simcore.sandbox.base import SandboxSpec\n"
        "from simcore.sandbox.docker import DockerBackend\n"
        "b = DockerBackend(worker_id='doomed-worker', warm_pool=1)\n"
        "s = b.start(SandboxSpec('python', 60000))\n"
        "assert b.warm_up('python')\n"
        "print(s.container_id, *b.pool.ready_ids('python'), flush=True)\n"
        "os._exit(9)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert done.returncode == 9, done.stderr
    left = done.stdout.split()
    assert len(left) == 2 and all(container_exists(docker, cid) for cid in left)
    again = docker_backend(warm_pool=0)
    try:
        assert not any(container_exists(docker, cid) for cid in left)
    finally:
        again.close()


# -- the warm pool ---------------------------------------------------------------------------


@pytest.fixture
def pooled(built: str) -> Iterator[DockerBackend]:
    backend = docker_backend(warm_pool=2)
    yield backend
    backend.close()
    assert containers(backend) == []  # the pool's containers go with the backend


def test_a_pooled_container_serves_one_run_and_is_destroyed(pooled: DockerBackend) -> None:
    assert pooled.warm_up("python", timeout=60)
    assert pooled.pool is not None
    ready = pooled.pool.ready_ids("python")
    assert len(ready) == 2
    recording = Recording(pooled)
    report = run_simulation(SMALL, "python", 1, _good("python"), recording, 30_000)
    assert report.status is RunStatus.SUCCESS
    (sandbox,) = recording.started
    assert sandbox.container_id == ready[0]
    assert removed_soon(pooled, ready[0])  # used once, then gone
    # Refilled, with new containers only: none is ever used twice.
    assert pooled.warm_up("python", timeout=60)
    now = pooled.pool.ready_ids("python")
    assert len(now) == 2 and ready[0] not in now and ready[1] in now
    second = Recording(pooled)
    run_simulation(SMALL, "python", 2, _good("python"), second, 30_000)
    assert second.started[0].container_id == ready[1]


def test_pooled_and_cold_containers_are_created_alike(pooled: DockerBackend) -> None:
    assert pooled.warm_up("node", timeout=60)
    assert pooled.pool is not None
    warm = pooled.api.inspect_container(pooled.pool.ready_ids("node")[0])
    cold_sandbox = pooled.create("node", None, warm=False)
    try:
        cold = pooled.api.inspect_container(cold_sandbox.id)
    finally:
        cold_sandbox.destroy()
    assert warm["HostConfig"] == cold["HostConfig"]
    for key in ("Image", "Cmd", "Entrypoint", "Env", "User", "WorkingDir", "OpenStdin",
                "StdinOnce", "Tty"):  # fmt: skip
        assert warm["Config"][key] == cold["Config"][key], key
    assert warm["Config"]["Labels"][LABEL_WARM] == "1"
    assert cold["Config"]["Labels"][LABEL_WARM] == "0"


def test_the_pool_starts_at_the_second_run_of_a_language(pooled: DockerBackend) -> None:
    assert pooled.pool is not None
    run_simulation(SMALL, "node", 1, _good("node"), pooled, 30_000)
    time.sleep(0.5)
    assert containers(pooled) == []  # a one-shot `simcore run` never pays for a pool
    run_simulation(SMALL, "node", 1, _good("node"), pooled, 30_000)
    assert pooled.pool.wait_full("node", timeout=60)
    assert len(containers(pooled, **{LABEL_WARM: "1"})) == 2


def test_pooled_containers_older_than_the_max_age_are_discarded(built: str) -> None:
    backend = docker_backend(warm_pool=1, warm_max_age_s=1.0)
    try:
        assert backend.warm_up("python", timeout=60)
        assert backend.pool is not None
        (stale,) = backend.pool.ready_ids("python")
        time.sleep(1.2)
        sandbox = backend.start(SandboxSpec("python", 10_000))
        assert sandbox.container_id != stale  # a cold one, not the stale one
        assert removed_soon(backend, stale)
        sandbox.close()
    finally:
        backend.close()


def test_the_pool_size_comes_from_the_environment(
    built: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIMTUI_DOCKER_WARM_POOL", "0")
    backend = docker_backend()
    try:
        assert backend.pool is None and "no warm pool" in backend.check()
    finally:
        backend.close()
    monkeypatch.setenv("SIMTUI_DOCKER_WARM_POOL", "3")
    backend = docker_backend()
    try:
        assert backend.pool is not None and backend.pool.size == 3
    finally:
        backend.close()


# -- when it cannot run, and choosing a backend ----------------------------------------------


def test_no_engine_is_a_one_line_reason_and_auto_falls_back(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(SandboxUnavailable) as caught:
        DockerBackend()
    assert str(caught.value) == (
        f"docker sandbox unavailable: docker engine not reachable: no socket at "
        f"unix://{tmp_path}/none.sock"
    )
    with pytest.raises(SandboxUnavailable):
        select("docker")
    assert isinstance(select("auto"), ProcessBackend)


def test_a_missing_image_says_how_to_build_it(built: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMTUI_IMAGE_PYTHON", "molam/sim-py:no-such-tag")
    with pytest.raises(SandboxUnavailable) as caught:
        DockerBackend(warm_pool=0)
    assert str(caught.value) == (
        "image molam/sim-py:no-such-tag missing: run simcore images build --offline"
    )
    assert isinstance(select("auto"), ProcessBackend)


def test_auto_picks_docker_when_the_engine_and_images_are_there(built: str) -> None:
    chosen = select("auto")
    try:
        assert isinstance(chosen, DockerBackend)
    finally:
        chosen.close()


def test_simcore_run_says_which_backend_auto_chose(built: str) -> None:
    done = simcore("run", "--template", "timeout", "--sandbox", "auto", "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("simcore: sandbox: docker (auto): docker sandbox (engine "), first
    assert json.loads(done.stdout)["status"] == "success"
