"""The docker sandbox: the SDK runner in a hardened, throw-away container.

One container per run, created from the language's image (``simcore.images``) with the runner
as its command, the same command line the process backend uses. The wire protocol travels
over the container's attached stdin/stdout (one hijacked connection to the engine, stdout and
stderr multiplexed in frames); stderr is the run log, cleaned and capped by ``LogSink``.

Every container, cold or pre-started, is created with the same options:

- ``network_mode=none`` (only a loopback), ``ipc_mode=none`` (no /dev/shm to write to);
- a read-only root file system; the one writable place is a small tmpfs on /tmp, mounted
  ``noexec,nosuid,nodev``; no bind mounts, no volumes;
- ``cap_drop=ALL``, ``no-new-privileges``, the engine's default seccomp profile, user 10001;
- a cgroup memory limit with swap equal to it (``memswap_limit == mem_limit``: no swap),
  a pids limit, a CPU quota, rlimits (open files, file size, CPU seconds as a backstop, no
  core dumps);
- an environment built from an allow-list, never copied from the worker's;
- ``log_config=none``: the engine keeps no copy of the output on the host's disk;
- labels (``simtui.*``) naming the backend, the worker, the owning process and, when known
  at creation, the run.

The runner is killed at ``max_run_time_ms`` (the run ends ``timeout``); a runner killed by
the kernel for memory is reported as such in the log tail; the container is removed when the
sandbox is closed, whatever happened.

Teardown off the run's critical path: the engine ends the attach connection only after it
has deleted the container's task, so by then no process of the container is left, and a run
whose runner left by itself after the worker's ``bye`` has nothing more to wait for. The
engine still takes tens of milliseconds to clean up (its listing says "running" meanwhile),
then to inspect and remove the stopped container; for such a run ``close`` returns at once
and a reaper thread of the backend removes the container (``exit_code`` is then None: nobody
waits for it). Every other end (the runner gone before ``bye``, killed at the deadline, a
protocol violation) is inspected and removed before ``close`` returns, so that its exit
status and an out-of-memory kill reach the report. Closing the backend waits for the reaper;
after a crash, the orphans pass (below) removes what it had not.

Warm pool: starting a container costs a few hundred milliseconds, most of it in the engine.
With ``SIMTUI_DOCKER_WARM_POOL=N`` (default 2, 0 disables) the backend keeps up to N
containers per image already created and started, their runner blocked reading its
``hello``. A pooled container is created with exactly the options above, serves one run and
is destroyed like any other; one older than ``SIMTUI_DOCKER_WARM_MAX_AGE_S`` (default 120), or
made from an image that has since been rebuilt, is discarded unused. A background thread
refills the pool after each run. The pool of a language starts at its second run (or at
``warm_up``), so a one-shot ``simcore run`` never creates containers it will not use.

Orphans: a worker that dies leaves its containers behind. ``remove_orphans`` removes the
containers of a worker id, and those whose owning process (host, pid, start time) is gone;
every ``DockerBackend`` calls it when it is created.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import select as _select
import socket
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.types import LogConfig, Ulimit

from simcore.errors import ConfigError
from simcore.gateway.protocol import MAX_LINE_BYTES
from simcore.images import DockerUnavailable, docker_client, image_for
from simcore.sandbox.base import (
    MAX_RUN_TIME_MS,
    SUPPORTED_LANGUAGES,
    SandboxExit,
    SandboxSpec,
    SandboxStartError,
    SandboxUnavailable,
)
from simcore.sandbox.logs import TAIL_LINES, LogSink
from simcore.sandbox.process import Limits

log = logging.getLogger(__name__)

SANDBOX_UID = 10001
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
SDK_ROOT = "/opt/simtui/sdk"
WORKDIR = "/tmp"

LABEL_BACKEND = "simtui.backend"
LABEL_WORKER = "simtui.worker_id"
LABEL_OWNER = "simtui.owner"
LABEL_RUN = "simtui.run_id"
LABEL_LANGUAGE = "simtui.language"
LABEL_WARM = "simtui.warm"

WARM_POOL_ENV = "SIMTUI_DOCKER_WARM_POOL"
WARM_MAX_AGE_ENV = "SIMTUI_DOCKER_WARM_MAX_AGE_S"
DEFAULT_WARM_POOL = 2
DEFAULT_WARM_MAX_AGE_S = 120.0
# How often the pool looks for containers to retire when nothing wakes it.
POOL_TICK_S = 5.0

# The engine's frame header on a non-tty attach: stream (1 stdout, 2 stderr), 3 zero bytes,
# the payload size as a big-endian uint32.
_FRAME_HEADER = 8
_STDOUT, _STDERR = 1, 2
_CHUNK = 256 * 1024

# Stop waiting for the runner to finish on its own after this long, at close.
_EXIT_GRACE_S = 0.5
_KILLED_DRAIN_S = 5.0
# How long closing a backend waits for the reaper to remove what it was handed.
_REAPER_CLOSE_S = 30.0

# Names the worker may pass through from its own environment (values are read at container
# creation). Nothing else of the worker's environment reaches a container.
ENV_ALLOW: tuple[str, ...] = ("TZ",)


_PROCESS_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class DockerLimits:
    memory_bytes: int = 384 * 1024 * 1024
    """cgroup memory limit; swap is set to the same value, so no swap at all."""
    pids: int = 64
    """Processes and threads together (node starts about ten threads)."""
    nano_cpus: int = 1_000_000_000
    tmpfs_bytes: int = 16 * 1024 * 1024
    open_files: int = 64
    file_size: int = 16 * 1024 * 1024
    node_heap_mb: int = _PROCESS_LIMITS.node_heap_mb
    """V8's heap cap, as in the process backend: the runner's command line is the same."""


def runner_command(language: str, limits: DockerLimits) -> list[str]:
    """The runner's command line inside the image: the process backend's, at its image path."""
    if language == "python":
        return ["python3", "-I", "-S", "-B", f"{SDK_ROOT}/python/runner.py"]
    if language == "node":
        return ["node", f"--max-old-space-size={limits.node_heap_mb}", "--no-warnings",
                f"{SDK_ROOT}/node/runner.js"]  # fmt: skip
    raise SandboxStartError(f"no SDK runner for language {language!r}")


def sandbox_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The container's environment: fixed values plus the allow-listed names, nothing more."""
    source = os.environ if environ is None else environ
    env = {
        "PATH": SAFE_PATH,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": WORKDIR,
        "TMPDIR": WORKDIR,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
    }
    for name in ENV_ALLOW:
        if name in source and name not in env:
            env[name] = source[name]
    return env


# --- owners and orphans ---------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (ticks since boot): with the pid, a process identity
    that survives pid reuse. None when the process does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 else "?"


def owner_of(pid: int) -> str:
    """The ``simtui.owner`` label of process ``pid`` on this host: host, pid, start time."""
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or '?'}"


def _owner_alive(owner: str) -> bool | None:
    """Whether the process an owner label names still runs: None when it is on another host
    (this worker cannot tell)."""
    host, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname():
        return None
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if os.path.isdir("/proc/self"):
        return _start_time(pid) == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _remove(api: Any, container_id: str, attempts: int = 3) -> None:
    """Remove a container, running or not; gone already is fine."""
    for attempt in range(attempts):
        try:
            api.remove_container(container_id, force=True)
            return
        except NotFound:
            return
        except APIError as exc:
            if exc.status_code == 409 and "already in progress" in str(exc):
                return
            # A busy engine (a device still mounted, a slow kill) usually lets go at once.
            if attempt + 1 == attempts:
                raise
            time.sleep(0.2 * (attempt + 1))


def remove_orphans(worker_id: str, api: Any | None = None) -> list[str]:
    """Remove the sandbox containers left by a dead worker; return their ids.

    A container is an orphan when its owning process (``simtui.owner``: host, pid, start
    time) is gone from this host, or when it carries ``worker_id`` but was made on another
    host (a worker id belongs to one live worker, so that one is dead). Containers of live
    processes, this one included, are left alone, as are other hosts' containers.
    """
    own_client = None
    if api is None:
        own_client = _client()
        api = own_client.api
    removed: list[str] = []
    try:
        for info in api.containers(all=True, filters={"label": LABEL_BACKEND}):
            labels = info.get("Labels") or {}
            owner = labels.get(LABEL_OWNER, "")
            alive = _owner_alive(owner) if owner else None
            if alive is False or (alive is None and labels.get(LABEL_WORKER) == worker_id):
                try:
                    _remove(api, info["Id"])
                except DockerException as exc:
                    log.warning("could not remove orphan sandbox %s: %s", info["Id"][:12], exc)
                    continue
                removed.append(str(info["Id"]))
    finally:
        if own_client is not None:
            own_client.close()
    if removed:
        log.info("removed %d orphaned sandbox container(s)", len(removed))
    return removed


def _one_line(exc: BaseException) -> str:
    """The engine's errors nest HTTP and socket errors over several lines: one short line."""
    return " ".join(str(exc).split())[:300]


def _is_bye(data: bytes) -> bool:
    """Whether ``data`` (what the worker sent) is its last message, ``bye``."""
    try:
        message = json.loads(data)
    except ValueError:
        return False
    return isinstance(message, dict) and message.get("type") == "bye"


def _client() -> Any:
    try:
        return docker_client(timeout=60)
    except DockerUnavailable as exc:
        raise SandboxUnavailable(f"docker sandbox unavailable: {exc}") from None


# --- one attached container -----------------------------------------------------------------


class _Attached:
    """A started container and the hijacked connection to its stdin/stdout/stderr."""

    def __init__(self, api: Any, container_id: str, language: str, image_id: str) -> None:
        self.api = api
        self.id = container_id
        self.language = language
        self.image_id = image_id
        self.created = time.monotonic()
        # Attached before the start, so not a byte of output can be missed.
        stream = api.attach_socket(
            container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        )
        self._stream = stream
        self.sock: socket.socket = getattr(stream, "_sock", stream)
        # The client's timeout bounds API calls; this connection idles as long as a patch
        # thinks, and the deadline timer (not a read timeout) decides when that is too long.
        self.sock.settimeout(None)

    def start(self) -> None:
        self.api.start(self.id)

    def quiet(self) -> bool:
        """True while the runner, blocked on its ``hello``, has neither written nor exited."""
        try:
            readable, _, _ = _select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close_connection(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._stream.close()
        with contextlib.suppress(OSError):
            self.sock.close()
        response = getattr(self._stream, "_response", None)
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()

    def destroy(self) -> None:
        self.close_connection()
        try:
            _remove(self.api, self.id)
        except (DockerException, OSError) as exc:
            log.warning("could not remove sandbox %s: %s", self.id[:12], exc)


class DockerSandbox:
    """A running runner in a container; see ``simcore.sandbox.base.Sandbox``."""

    def __init__(
        self,
        attached: _Attached,
        spec: SandboxSpec,
        limits: DockerLimits,
        on_closed: Callable[[], None] | None = None,
        discard: Callable[[_Attached], None] | None = None,
    ) -> None:
        self._c = attached
        self._api = attached.api
        self._sock = attached.sock
        self._spec = spec
        self._limits = limits
        self._on_closed = on_closed
        self._discard = discard
        self._said_bye = False
        self._killed = False
        self._frames = bytearray()
        self._out = bytearray()
        self._scanned = 0
        self._eof = False
        self._drop_stdout = False
        # One receive buffer for the whole run: a fresh one per read of this size would be
        # a mapping made and unmade by the allocator on every message.
        self._chunk = bytearray(_CHUNK)
        self._chunk_view = memoryview(self._chunk)
        # stderr reaches LogSink through a pipe: the same reader, cleaning and caps as the
        # process backend's, fed with the frames this sandbox sorts.
        log_read, self._log_fd = os.pipe()
        self._log_file = os.fdopen(log_read, "rb")
        self._log = LogSink(self._log_file, spec.on_log)
        self._log_open = True
        self._deadline_hit = False
        self._closed: SandboxExit | None = None
        self._close_lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._arm(spec.max_run_time_ms / 1000, deadline=True)

    @property
    def container_id(self) -> str:
        return self._c.id

    # -- timers ------------------------------------------------------------------------------

    def _arm(self, seconds: float, deadline: bool) -> None:
        timer = threading.Timer(seconds, self._expire, args=(deadline,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _expire(self, deadline: bool) -> None:
        if self._eof or self._closed is not None:
            return
        if deadline:
            self._deadline_hit = True
        self.kill()

    @property
    def deadline_hit(self) -> bool:
        return self._deadline_hit

    # -- the wire ----------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise BrokenPipeError(f"the sandbox is gone: {exc}") from None
        if not self._said_bye and b'"bye"' in data:
            self._said_bye = _is_bye(data)

    def recv(self) -> bytes:
        limit = MAX_LINE_BYTES + 1
        out = self._out
        while True:
            newline = out.find(b"\n", self._scanned, limit)
            if newline >= 0:
                cut = newline + 1
            elif len(out) >= limit:
                cut = limit
            elif self._eof:
                cut = len(out)
            else:
                self._scanned = len(out)
                self._pump()
                continue
            line = bytes(out[:cut])
            del out[:cut]
            self._scanned = 0
            return line

    def _pump(self) -> None:
        """Read what the engine sent and sort it: stdout to the line buffer, stderr to the log.

        Sets ``_eof`` when the connection ends (the container exited or was killed).
        """
        try:
            size = self._sock.recv_into(self._chunk)
        except TimeoutError:
            raise  # _drain's bound, not the end of the stream
        except OSError:
            size = 0
        if not size:
            self._eof = True
            self._end_log()
            return
        frames = self._frames
        frames += self._chunk_view[:size]
        start, end = 0, len(frames)
        while end - start >= _FRAME_HEADER:
            stop = start + _FRAME_HEADER + int.from_bytes(frames[start + 4 : start + 8], "big")
            if stop > end:
                break
            kind = frames[start]
            if kind == _STDOUT:
                if not self._drop_stdout:
                    self._out += frames[start + _FRAME_HEADER : stop]
            elif kind == _STDERR:
                self._to_log(frames[start + _FRAME_HEADER : stop])
            start = stop
        if start:
            del frames[:start]

    def _to_log(self, payload: bytearray) -> None:
        # Past the caps the sink discards everything anyway: drop it here, unread.
        if not self._log_open or self._log.truncated:
            return
        view = memoryview(payload)
        try:
            while view:
                view = view[os.write(self._log_fd, view) :]
        except OSError:
            self._end_log()
        finally:
            view.release()

    def _end_log(self) -> None:
        if self._log_open:
            self._log_open = False
            with contextlib.suppress(OSError):
                os.close(self._log_fd)

    def _drain(self, seconds: float) -> None:
        """Read (and sort) output until the connection ends or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        try:
            while not self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._sock.settimeout(left)
                self._pump()
        except TimeoutError:
            return
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(None)

    # -- life and death ----------------------------------------------------------------------

    def kill_after(self, seconds: float) -> None:
        self._arm(seconds, deadline=False)

    def kill(self) -> None:
        self._killed = True
        try:
            self._api.kill(self._c.id)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 409:  # 409: not running any more
                self._cut(exc)
        except (DockerException, OSError) as exc:
            self._cut(exc)

    def _cut(self, exc: Exception) -> None:
        # The engine did not kill it: cut the connection so that a reader blocked on it
        # returns and the run ends; the container goes at close, or with the orphans.
        log.warning("could not kill sandbox %s: %s", self._c.id[:12], exc)
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = self._api.inspect_container(self._c.id)["State"]
        except (DockerException, OSError, KeyError):
            return {}
        if state.get("Running"):
            # Its output is closed but it lives on (a patch closed fd 1 and 2): kill it.
            self.kill()
            with contextlib.suppress(DockerException, OSError):
                self._api.wait(self._c.id, timeout=10)
            with contextlib.suppress(DockerException, OSError, KeyError):
                state = self._api.inspect_container(self._c.id)["State"]
        return state

    def close(self) -> SandboxExit:
        with self._close_lock:
            if self._closed is not None:
                return self._closed
            for timer in self._timers:
                timer.cancel()
            self._drop_stdout = True
            self._out.clear()
            # End of input (the container is StdinOnce) lets a runner still reading exit.
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)
            self._drain(_EXIT_GRACE_S)
            # The runner finished the run and left by itself: no process of the container is
            # left, and its exit status no longer matters to the report (module docstring).
            finished = self._eof and self._said_bye and not self._killed
            if not self._eof:
                self.kill()
                self._drain(_KILLED_DRAIN_S)
            state: dict[str, Any] = {}
            if finished and self._discard is not None:
                self._discard(self._c)
            else:
                state = self._state()
                self._c.destroy()
            self._end_log()
            self._log.join(timeout=2)
            # A reader still running (its callback blocks) keeps its stream; see process.py.
            if self._log.finished:
                with contextlib.suppress(OSError):
                    self._log_file.close()
            tail = list(self._log.tail)
            if state.get("OOMKilled"):
                # The runner gets no chance to say it: the kernel's SIGKILL comes first.
                note = (
                    "[sandbox] out of memory: the kernel killed the runner at the "
                    f"{self._limits.memory_bytes >> 20} MiB limit"
                )
                tail.append(note)
                if self._spec.on_log is not None:
                    with contextlib.suppress(Exception):
                        self._spec.on_log(note)
            code = state.get("ExitCode")
            self._closed = SandboxExit(
                exit_code=code if isinstance(code, int) else None,
                deadline_hit=self._deadline_hit,
                log_lines=self._log.lines,
                log_truncated=self._log.truncated,
                log_tail=tuple(tail[-TAIL_LINES:]),
            )
        if self._on_closed is not None:
            self._on_closed()
        return self._closed


# --- the warm pool --------------------------------------------------------------------------


class _WarmPool:
    """Pre-started containers per language, each handed out once; refilled on a thread."""

    def __init__(self, backend: DockerBackend, size: int, max_age_s: float) -> None:
        self.backend = backend
        self.size = size
        self.max_age_s = max_age_s
        self._ready: dict[str, deque[_Attached]] = {}
        self._requests: dict[str, int] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._busy = False
        self._failures = 0
        self._thread: threading.Thread | None = None

    def activate(self, language: str) -> None:
        """Keep ``language`` warm from now on; the first refill follows the next run."""
        with self._lock:
            if language in self._ready or self._stop.is_set():
                return
            self._ready[language] = deque()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="docker-warm-pool", daemon=True
                )
                self._thread.start()

    def requested(self, language: str) -> None:
        """Count a run: the second one of a language activates its pool."""
        with self._lock:
            self._requests[language] = seen = self._requests.get(language, 0) + 1
        if seen >= 2:
            self.activate(language)

    def take(self, language: str, max_run_time_ms: int) -> _Attached | None:
        if max_run_time_ms > MAX_RUN_TIME_MS:
            return None  # made with the default CPU backstop; a longer run starts cold
        stale: list[_Attached] = []
        chosen = None
        with self._lock:
            ready = self._ready.get(language)
            while ready:
                candidate = ready.popleft()
                if self._fresh(candidate) and candidate.quiet():
                    chosen = candidate
                    break
                stale.append(candidate)
            self._changed.notify_all()
        for container in stale:  # not on the way of the run that is starting
            self.backend.discard(container)
        return chosen

    def refill(self) -> None:
        self._wake.set()

    def _fresh(self, container: _Attached) -> bool:
        if time.monotonic() - container.created > self.max_age_s:
            return False
        return self.backend.image_ids.get(container.language) == container.image_id

    def ready_ids(self, language: str) -> list[str]:
        with self._lock:
            return [c.id for c in self._ready.get(language, ())]

    def wait_full(self, language: str, timeout: float) -> bool:
        """Block until ``language`` has ``size`` containers ready (for tests and benchmarks)."""
        self.activate(language)
        self.refill()
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                full = len(self._ready.get(language, ())) >= self.size and not self._busy
                left = deadline - time.monotonic()
                if full or left <= 0:
                    return full
                self._changed.wait(min(left, 0.2))

    def _loop(self) -> None:
        while not self._stop.is_set():
            pause = min(30.0, 0.5 * 2**self._failures) if self._failures else POOL_TICK_S
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self._cycle()
                self._failures = 0
            except Exception as exc:
                # The pool is an optimisation: its failures must never reach a run (which
                # then starts cold and reports the real problem, if any).
                log.warning("docker warm pool: refill failed: %s", exc)
                self._failures += 1

    def _cycle(self) -> None:
        self.backend.refresh_image_ids()
        retired: list[_Attached] = []
        with self._lock:
            self._busy = True
            for ready in self._ready.values():
                keep = [c for c in ready if self._fresh(c) and c.quiet()]
                retired += [c for c in ready if c not in keep]
                ready.clear()
                ready.extend(keep)
            languages = list(self._ready)
        try:
            for container in retired:
                container.destroy()
            for language in languages:
                while not self._stop.is_set():
                    with self._lock:
                        if len(self._ready[language]) >= self.size:
                            break
                    container = self.backend.create(language, None, warm=True)
                    with self._lock:
                        if not self._stop.is_set():
                            self._ready[language].append(container)
                            self._changed.notify_all()
                            continue
                    container.destroy()
        finally:
            with self._lock:
                self._busy = False
                self._changed.notify_all()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        with self._lock:
            leftovers = [c for ready in self._ready.values() for c in ready]
            for ready in self._ready.values():
                ready.clear()
        for container in leftovers:
            container.destroy()


# --- the reaper -----------------------------------------------------------------------------


class _Reaper:
    """Removes the stopped containers of finished runs on a thread of its own."""

    def __init__(self) -> None:
        self._queue: deque[_Attached] = deque()
        self._cond = threading.Condition()
        self._busy = 0
        self._closed = False
        self._thread: threading.Thread | None = None

    def submit(self, container: _Attached) -> bool:
        """Queue ``container`` for removal; False once closed (the caller removes it)."""
        with self._cond:
            if self._closed:
                return False
            self._queue.append(container)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="docker-reaper", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                container = self._queue.popleft()
                self._busy += 1
            try:
                container.destroy()
            except Exception as exc:  # the thread must outlive one bad removal
                log.warning("could not remove sandbox %s: %s", container.id[:12], exc)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until everything queued so far is removed; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = _REAPER_CLOSE_S) -> None:
        """Remove what is queued, then stop (idempotent)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        with self._cond:
            leftovers = list(self._queue)
            self._queue.clear()
        for container in leftovers:
            container.destroy()


# --- the backend ----------------------------------------------------------------------------

_live_backends: weakref.WeakSet[DockerBackend] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Pooled containers belong to this process: they go when it exits normally (after an
    # abnormal exit they are orphans, removed by the next backend's remove_orphans).
    for backend in list(_live_backends):
        with contextlib.suppress(Exception):
            backend.close()


def _env_number(name: str, default: float, *, integer: bool) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name}: {raw!r} is not {kind}") from None
    if value < 0 or not math.isfinite(value):
        raise ConfigError(f"{name}: must be zero or more")
    return value


class DockerBackend:
    """See the module docstring.

    Raises ``SandboxUnavailable`` (one line that says what to do) when no engine answers or
    an image is missing. ``warm_pool``: containers kept ready per image (None: from
    ``SIMTUI_DOCKER_WARM_POOL``, default 2; 0: no pool).
    """

    name = "docker"

    def __init__(
        self,
        *,
        worker_id: str | None = None,
        limits: DockerLimits | None = None,
        warm_pool: int | None = None,
        warm_max_age_s: float | None = None,
    ) -> None:
        self.worker_id = worker_id or default_worker_id()
        self.limits = limits or DockerLimits()
        self.images = {language: image_for(language) for language in SUPPORTED_LANGUAGES}
        size = warm_pool
        if size is None:
            size = int(_env_number(WARM_POOL_ENV, DEFAULT_WARM_POOL, integer=True))
        max_age = warm_max_age_s
        if max_age is None:
            max_age = _env_number(WARM_MAX_AGE_ENV, DEFAULT_WARM_MAX_AGE_S, integer=False)
        self._owner = owner_of(os.getpid())
        self._client = _client()
        self.api: Any = self._client.api
        # A backend dropped without close() still releases its engine connections (at exit,
        # _close_all does it, pool included).
        self._release = weakref.finalize(self, self._client.close)
        self._release.atexit = False
        self.image_ids: dict[str, str] = {}
        self._closed = False
        try:
            self.engine_version = str(self.api.version().get("Version", "?"))
            self.refresh_image_ids(strict=True)
            remove_orphans(self.worker_id, self.api)
        except SandboxUnavailable:
            self._release()
            raise
        except (DockerException, OSError) as exc:
            self._release()
            raise SandboxUnavailable(f"docker sandbox unavailable: {_one_line(exc)}") from None
        self.pool = _WarmPool(self, size, max_age) if size > 0 else None
        self._reaper = _Reaper()
        _live_backends.add(self)

    # -- images ------------------------------------------------------------------------------

    def refresh_image_ids(self, strict: bool = False) -> None:
        """Note the id each image name points to now (a rebuild moves the tag)."""
        for language, image in self.images.items():
            try:
                self.image_ids[language] = str(self.api.inspect_image(image)["Id"])
            except ImageNotFound:
                if strict:
                    raise SandboxUnavailable(
                        f"image {image} missing: run simcore images build --offline"
                    ) from None
                self.image_ids.pop(language, None)

    # -- SandboxBackend ----------------------------------------------------------------------

    def check(self) -> str:
        try:
            self.api.ping()
            self.refresh_image_ids(strict=True)
        except (DockerException, OSError) as exc:
            raise SandboxUnavailable(f"docker sandbox unavailable: {_one_line(exc)}") from None
        lim = self.limits
        pool = f"warm pool {self.pool.size} per image" if self.pool else "no warm pool"
        return (
            f"docker sandbox (engine {self.engine_version}: network none, read-only root, "
            f"cap-drop ALL, no-new-privileges, uid {SANDBOX_UID}, pids {lim.pids}, "
            f"memory {lim.memory_bytes >> 20} MiB, {lim.nano_cpus / 1e9:g} CPU; {pool})"
        )

    def start(self, spec: SandboxSpec) -> DockerSandbox:
        if spec.language not in self.images:
            raise SandboxStartError(f"no SDK runner for language {spec.language!r}")
        if self._closed:
            raise SandboxStartError("the docker backend was closed")
        attached = None
        if self.pool is not None:
            self.pool.requested(spec.language)
            attached = self.pool.take(spec.language, spec.max_run_time_ms)
        if attached is None:
            attached = self.create(spec.language, spec.run_id, warm=False,
                                   max_run_time_ms=spec.max_run_time_ms)  # fmt: skip
        return DockerSandbox(attached, spec, self.limits, on_closed=self._after_run,
                             discard=self.discard)  # fmt: skip

    def _after_run(self) -> None:
        if self.pool is not None:
            self.pool.refill()

    def discard(self, container: _Attached) -> None:
        """Remove a container no run needs any more, in the background when possible."""
        container.close_connection()
        if not self._reaper.submit(container):
            container.destroy()

    def wait_removals(self, timeout: float = 10.0) -> bool:
        """Block until the containers of the runs closed so far are removed (the reaper's
        work); False when that takes longer than ``timeout``."""
        return self._reaper.wait_idle(timeout)

    def warm_up(self, language: str, timeout: float = 30.0) -> bool:
        """Fill the pool of ``language`` now and wait for it; False without a pool or when
        it is not full in time."""
        if self.pool is None or language not in self.images:
            return False
        return self.pool.wait_full(language, timeout)

    # -- containers --------------------------------------------------------------------------

    def create_options(
        self, language: str, run_id: str | None, warm: bool, max_run_time_ms: int
    ) -> dict[str, Any]:
        """Everything ``create_container`` receives: the isolation, in one place."""
        lim = self.limits
        # A backstop for a worker that died with its timer: with at most one CPU, CPU seconds
        # never exceed wall seconds, so this cannot fire before the deadline does.
        cpu_seconds = math.ceil(max(max_run_time_ms, MAX_RUN_TIME_MS) / 1000) + 5
        labels = {
            LABEL_BACKEND: self.name,
            LABEL_WORKER: self.worker_id,
            LABEL_OWNER: self._owner,
            LABEL_LANGUAGE: language,
            LABEL_WARM: "1" if warm else "0",
        }
        if run_id is not None:
            labels[LABEL_RUN] = str(run_id)
        host_config = self.api.create_host_config(
            network_mode="none",
            ipc_mode="none",
            read_only=True,
            tmpfs={WORKDIR: f"rw,noexec,nosuid,nodev,size={lim.tmpfs_bytes}"},
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            pids_limit=lim.pids,
            mem_limit=lim.memory_bytes,
            memswap_limit=lim.memory_bytes,
            nano_cpus=lim.nano_cpus,
            ulimits=[
                Ulimit(name="nofile", soft=lim.open_files, hard=lim.open_files),
                Ulimit(name="fsize", soft=lim.file_size, hard=lim.file_size),
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="cpu", soft=cpu_seconds, hard=cpu_seconds),
            ],
            log_config=LogConfig(type="none"),
            privileged=False,
        )
        return {
            "image": self.images[language],
            "command": runner_command(language, lim),
            "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
            "stdin_open": True,  # with attach: StdinOnce, so closing our side ends its input
            "tty": False,
            "environment": sandbox_env(),
            "working_dir": WORKDIR,
            "hostname": "sandbox",
            "labels": labels,
            "host_config": host_config,
        }

    def create(
        self,
        language: str,
        run_id: str | None,
        *,
        warm: bool,
        max_run_time_ms: int = MAX_RUN_TIME_MS,
    ) -> _Attached:
        """Create, attach and start one container."""
        image = self.images[language]
        options = self.create_options(language, run_id, warm, max_run_time_ms)
        try:
            container_id = str(self.api.create_container(**options)["Id"])
        except ImageNotFound:
            raise SandboxStartError(
                f"image {image} missing: run simcore images build --offline"
            ) from None
        except (DockerException, OSError) as exc:
            raise SandboxStartError(
                f"cannot create the {language} sandbox: {_one_line(exc)}"
            ) from None
        attached: _Attached | None = None
        try:
            attached = _Attached(self.api, container_id, language,
                                 self.image_ids.get(language, ""))  # fmt: skip
            attached.start()
        except (DockerException, OSError) as exc:
            if attached is not None:
                attached.destroy()
            else:
                with contextlib.suppress(DockerException, OSError):
                    _remove(self.api, container_id)
            raise SandboxStartError(
                f"cannot start the {language} sandbox: {_one_line(exc)}"
            ) from None
        return attached

    def close(self) -> None:
        """Stop the pool, remove its containers, close the engine connection (idempotent).

        Sandboxes still running keep working; each removes its container when closed.
        """
        if self._closed:
            return
        self._closed = True
        if self.pool is not None:
            self.pool.close()
        self._reaper.close()
        _live_backends.discard(self)
        self._release()
