"""The process sandbox: the SDK runner as a namespaced, unprivileged, rlimited subprocess.

For hosts without a Docker engine. Isolation, strongest first, probed once per process:

- ``bwrap``: bubblewrap with every namespace unshared and a read-only view of the host.
- ``unshare`` (root): new network, pid, mount, IPC and UTS namespaces; the runner then drops
  to uid/gid 65534 (``setpriv``) so it cannot write what root owns.
- ``userns`` (not root): the same namespaces inside a new user namespace (``unshare -Ur``).

In every case: only the loopback of an empty network namespace (down), resource limits
(CPU seconds, address space, processes, file size, open files, no core dumps), an environment
built from an allow-list, and private temporary folders. The host's world-writable folders
(``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/run/lock``) are shared by every user of the host, so
uid 65534 alone does not keep a patch out of them: inside the sandbox's own mount namespace
each is replaced by a fresh, size-capped tmpfs (``nosuid,nodev,noexec``) before the runner
starts. The runner's home and working directory is a folder of that private ``/tmp``, with
the SDK bind-mounted read-only into it. What the runner writes there is never on the host's
disks nor visible to the host's processes, and it is freed with the namespace, when the last
process of the sandbox ends. Elsewhere it may write what its user may: nothing under
``unshare`` (uid 65534 owns nothing); under ``userns`` it is the calling user, whose own
files stay writable (``bwrap``'s read-only view of the host closes that). The runner is
killed at ``max_run_time_ms``, with its whole process group (and, in a pid namespace,
everything it started).

The limits are applied by ``prlimit(1)`` in the exec chain rather than in a ``preexec_fn``:
the worker is multi-threaded, and Python code between fork and exec can deadlock there. For
the same reason the private mounts are made by a short ``sh`` script run as (namespace) root
between ``unshare`` and ``setpriv``.

A mechanism counts as available only when the whole chain works here, private mounts
included: a host where ``unshare`` may create a network namespace but not mount a tmpfs
(a container without ``CAP_SYS_ADMIN``, user namespaces disabled) gets no process sandbox.
When no isolation works the backend refuses to run and says why (``simcore doctor`` shows
the same reason); ``unsafe_no_isolation`` (development only) runs the runner with the limits,
the allow-listed environment and a private directory of the host's ``/tmp``, but in the
host's namespaces and as the calling user.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from simcore.gateway.protocol import MAX_LINE_BYTES
from simcore.sandbox.base import (
    SUPPORTED_LANGUAGES,
    SandboxExit,
    SandboxSpec,
    SandboxStartError,
    SandboxUnavailable,
)
from simcore.sandbox.logs import LogSink

SDK_DIR = Path(__file__).resolve().parent.parent / "sdk"
NOBODY = 65534
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
MECHANISMS = ("bwrap", "unshare", "userns")
HOME_PREFIX = "simtui-sbx-"
# /tmp holds the runner's home; the others are only there so that nothing is shared.
PRIVATE_TMP = "/tmp"
SCRATCH_DIRS = ("/var/tmp", "/dev/shm", "/run/lock")

# The most ``recv`` returns at once: enough to tell a line is too long, no more.
_LINE_LIMIT = MAX_LINE_BYTES + 1
# One read of the runner's stdout: a line at most, usually many.
_READ_BYTES = _LINE_LIMIT
_NS_FLAGS = ["--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child",
             "--mount-proc"]  # fmt: skip
_probe_cache: dict[str, str | None] = {}
_probe_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Limits:
    cpu_seconds: int | None = None  # None: derived from max_run_time_ms
    python_address_space: int = 512 * 1024 * 1024
    # V8 reserves large virtual ranges up front; its heap is capped separately (below).
    node_address_space: int = 1024 * 1024 * 1024
    node_heap_mb: int = 192
    processes: int = 256
    file_size: int = 16 * 1024 * 1024
    open_files: int = 64
    # tmpfs pages are memory outside every rlimit above: each private folder is capped.
    tmp_bytes: int = 64 * 1024 * 1024
    scratch_bytes: int = 8 * 1024 * 1024
    tmp_inodes: int = 4096


def _scratch_dirs() -> list[str]:
    """The host's other world-writable folders that exist here, each once (``/var/lock``
    and ``/dev/shm`` are symbolic links on some systems)."""
    found: list[str] = []
    for path in SCRATCH_DIRS:
        real = os.path.realpath(path)
        if real != os.path.realpath(PRIVATE_TMP) and os.path.isdir(real) and real not in found:
            found.append(real)
    return found


def _setup_script(home: str, sdk: Path, limits: Limits, drop: bool) -> str:
    """What runs as (namespace) root in the sandbox's new mount namespace, before the runner:
    private tmpfs folders over the host's shared ones, the runner's home in the private /tmp,
    the SDK read-only inside it. ``exec "$@"`` then becomes the runner's exec chain."""
    q = shlex.quote
    common = "nosuid,nodev,noexec,mode=1777"
    mounts = [(PRIVATE_TMP, limits.tmp_bytes)] + [(d, limits.scratch_bytes)
                                                   for d in _scratch_dirs()]  # fmt: skip
    # The SDK may itself sit under the host's /tmp (a checkout there), hidden once the
    # private /tmp is mounted: the shell's working directory keeps hold of it, and the bind
    # mount reaches it through /proc/self/cwd (-c: as that link, not as the hidden path).
    lines = ["set -eu", "umask 022", f"cd {q(str(sdk))}"]
    for path, size in mounts:
        options = f"{common},size={size},nr_inodes={limits.tmp_inodes}"
        lines.append(f"mount -t tmpfs -o {options} simtui-private {q(path)}")
    lines += [
        f"mkdir -m 0700 {q(home)} {q(home + '/sdk')}",
        # Every restricting flag at once: a bind mount in a user namespace may add flags
        # but never drop one the host's mount has.
        f"mount -c --bind -o ro,nosuid,nodev,noexec /proc/self/cwd {q(home + '/sdk')}",
    ]
    if drop:
        lines.append(f"chown {NOBODY}:{NOBODY} {q(home)}")
    # cd exports PWD and OLDPWD: the runner's environment is the allow-list, nothing more.
    lines += [f"cd {q(home)}", "unset OLDPWD PWD", 'exec "$@"']
    return "\n".join(lines)


def _probe(mechanism: str, limits: Limits) -> str | None:
    """None when ``mechanism`` works here, else why not (cached; runs ``true`` once in a
    sandbox made exactly as a run's is, private mounts and all)."""
    with _probe_lock:
        if mechanism in _probe_cache:
            return _probe_cache[mechanism]
        tool = "bwrap" if mechanism == "bwrap" else "unshare"
        needed = [tool] if mechanism == "bwrap" else [tool, "mount", "sh"]
        missing = [t for t in needed if shutil.which(t, path=SAFE_PATH) is None]
        if missing:
            result: str | None = f"{missing[0]} not found"
        else:
            home = f"{PRIVATE_TMP}/{HOME_PREFIX}probe"
            argv = [*_isolation_argv(mechanism, home, SDK_DIR / "python", limits, drop=False),
                    "true"]  # fmt: skip
            try:
                done = subprocess.run(
                    argv, capture_output=True, timeout=10, env={"PATH": SAFE_PATH}, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                result = f"{tool} failed: {exc}"
            else:
                # mount(8) spreads one error over several lines: keep them all, on one.
                err = " ".join(done.stderr.decode("utf-8", "replace").split())[:300]
                result = None if done.returncode == 0 else (err or "failed")
        _probe_cache[mechanism] = result
        return result


def _isolation_argv(mechanism: str, home: str, sdk: Path, limits: Limits, drop: bool) -> list[str]:
    if mechanism == "bwrap":
        argv = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                "--perms", "1777", "--size", str(limits.tmp_bytes),
                "--tmpfs", PRIVATE_TMP]  # fmt: skip
        for path in _scratch_dirs():
            argv += ["--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", path]
        argv += ["--perms", "0700", "--dir", home, "--ro-bind", str(sdk), f"{home}/sdk",
                 "--chdir", home]  # fmt: skip
        if drop:
            argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
        return [*argv, "--"]
    if mechanism == "unshare":
        script = _setup_script(home, sdk, limits, drop)
        argv = ["unshare", *_NS_FLAGS, "--", "sh", "-c", script, "simtui-sandbox"]
        if drop:
            argv += ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                     "--no-new-privs", "--"]  # fmt: skip
        return argv
    if mechanism == "userns":
        script = _setup_script(home, sdk, limits, drop=False)
        return ["unshare", "--user", "--map-root-user", *_NS_FLAGS, "--", "sh", "-c", script,
                "simtui-sandbox"]  # fmt: skip
    raise ValueError(mechanism)


def _readable_by_others(path: Path) -> bool:
    """Whether uid 65534 can execute ``path``: every directory on the way must be o+x."""
    real = path.resolve()
    try:
        if not real.stat().st_mode & stat.S_IXOTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in real.parents)
    except OSError:
        return False


def _hidden(path: str) -> bool:
    """Whether ``path`` lies in a folder the sandbox covers with its private tmpfs."""
    covered = [os.path.realpath(PRIVATE_TMP), *_scratch_dirs()]
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in covered)


def _interpreter(language: str, drop: bool, private_tmp: bool = False) -> str:
    if language == "python":
        candidates = [sys.executable, shutil.which("python3", path=SAFE_PATH)]
    else:
        candidates = [shutil.which("node", path=SAFE_PATH), shutil.which("node")]
    for candidate in candidates:
        if not candidate:
            continue
        if private_tmp:
            # A virtualenv under /tmp (a checkout there) is hidden by the private /tmp: run
            # the interpreter it links to. The runner uses the standard library only (-I -S),
            # so the virtualenv's packages are never needed.
            candidate = os.path.realpath(candidate)
            if _hidden(candidate):
                continue
        if not drop or _readable_by_others(Path(candidate)):
            return candidate
    what = "python3" if language == "python" else "node"
    extra = " that uid 65534 can execute" if drop else ""
    raise SandboxStartError(f"no {what} interpreter{extra} found for the {language} SDK runner")


class ProcessSandbox:
    """A running runner; see ``simcore.sandbox.base.Sandbox``."""

    def __init__(
        self, argv: list[str], env: dict[str, str], home: str, host_dir: Path | None,
        spec: SandboxSpec,
    ) -> None:  # fmt: skip
        self.home = home
        """The runner's home and working directory, as the runner sees it."""
        self.host_dir = host_dir
        """The folder on the host that backs ``home``: None when it lives in the sandbox's
        private /tmp (every isolated mechanism); removed at close otherwise."""
        try:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd=host_dir or "/",
                start_new_session=True,
                close_fds=True,
                bufsize=MAX_LINE_BYTES * 2,
            )
        except OSError as exc:
            if host_dir is not None:
                shutil.rmtree(host_dir, ignore_errors=True)
            raise SandboxStartError(f"cannot start {argv[0]}: {exc.strerror}") from None
        assert self._proc.stdin and self._proc.stdout and self._proc.stderr
        self._stdin_fd = self._proc.stdin.fileno()
        self._stdout_fd = self._proc.stdout.fileno()
        # Unread output is _buffer[_start:]. Lines are cut out of it here rather than by the
        # pipe's BufferedReader so that ``recv_nowait`` can tell, without blocking, whether
        # the next line is already in: the session then serves whichever runner is ready.
        self._buffer = b""
        self._start = 0
        self._eof = False
        self._log = LogSink(self._proc.stderr, spec.on_log)
        self._deadline_hit = False
        self._closed: SandboxExit | None = None
        self._timers: list[threading.Timer] = []
        self._owner = os.getpid()
        self._arm(spec.max_run_time_ms / 1000, deadline=True)

    def _arm(self, seconds: float, deadline: bool) -> None:
        timer = threading.Timer(seconds, self._expire, args=(deadline,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _expire(self, deadline: bool) -> None:
        # Only the process that started the runner can tell whether it has exited (a forked
        # copy playing a phase on it is not its parent); the runner's pid cannot be reused
        # before that process reaps it.
        if os.getpid() == self._owner and self._proc.poll() is not None:
            return
        if deadline:
            self._deadline_hit = True
        self.kill()

    @property
    def deadline_hit(self) -> bool:
        return self._deadline_hit

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._stdin_fd, view)
            view = view[written:]

    def fileno(self) -> int:
        """The runner's stdout, to wait on (``select.poll``) before ``pull``."""
        return self._stdout_fd

    def descriptors(self) -> tuple[int, ...]:
        """The runner's stdin and stdout: what a forked copy of this process needs to drive it
        (``kill`` and ``kill_after`` need none)."""
        return (self._stdin_fd, self._stdout_fd)

    def recv(self) -> bytes:
        """As ``BufferedReader.readline(MAX_LINE_BYTES + 1)``: one line with its newline, the
        first ``MAX_LINE_BYTES + 1`` bytes of a longer one, what is left at end of output
        (without a newline), and then ``b""``."""
        line = self.recv_nowait()
        while line is None:
            self.pull()
            line = self.recv_nowait()
        return line

    def recv_nowait(self) -> bytes | None:
        """What ``recv`` would return, if it is in already; None if it has to wait."""
        buffer, start = self._buffer, self._start
        newline = buffer.find(b"\n", start, start + _LINE_LIMIT)
        if newline >= 0:
            end = newline + 1
        elif len(buffer) - start >= _LINE_LIMIT:
            end = start + _LINE_LIMIT  # too long a line: its first bytes tell the session
        elif self._eof:
            end = len(buffer)  # what is left, then b"" ever after
        else:
            return None
        self._start = end
        return buffer[start:end]

    def pull(self) -> None:
        """Read what the runner wrote, waiting until it writes, or note the end of output."""
        if self._eof:
            return
        chunk = b""
        if self._closed is None:  # once closed, its descriptor may belong to another file
            try:
                chunk = os.read(self._stdout_fd, _READ_BYTES)
            except OSError:
                pass
        if chunk:
            self._buffer = self._buffer[self._start :] + chunk
            self._start = 0
        else:
            self._eof = True

    def kill_after(self, seconds: float) -> None:
        self._arm(seconds, deadline=False)

    def kill(self) -> None:
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._proc.kill()
        except ProcessLookupError:
            pass

    def close(self) -> SandboxExit:
        if self._closed is not None:
            return self._closed
        for timer in self._timers:
            timer.cancel()
        try:
            # End of input lets a runner that is still reading exit on its own.
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        except OSError:
            pass
        try:
            code: int | None = self._proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            code = None
        # Whatever the runner left behind (children, a held pipe) goes with its group.
        self.kill()
        if code is None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        self._log.join(timeout=2)
        # A stderr still being read (something escaped the kill and holds the pipe) stays
        # with its daemon reader: closing it under the reader would block on its lock.
        streams = [self._proc.stdout] + ([self._proc.stderr] if self._log.finished else [])
        for stream in streams:
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        if self.host_dir is not None:
            shutil.rmtree(self.host_dir, ignore_errors=True)
        self._closed = SandboxExit(
            exit_code=code,
            deadline_hit=self._deadline_hit,
            log_lines=self._log.lines,
            log_truncated=self._log.truncated,
            log_tail=tuple(self._log.tail),
        )
        return self._closed


class ProcessBackend:
    """See the module docstring. ``isolation`` is ``auto`` or one of ``MECHANISMS``."""

    name = "process"
    parallel_phases = True
    """A run with a patch gets two runners, its phases side by side (see gateway.session):
    a runner here starts in milliseconds, and the two overlap on two cores."""

    def __init__(
        self,
        *,
        isolation: str = "auto",
        unsafe_no_isolation: bool = False,
        limits: Limits | None = None,
        env_allow: tuple[str, ...] = ("TZ",),
    ) -> None:
        if isolation != "auto" and isolation not in MECHANISMS:
            raise SandboxUnavailable(
                f"unknown isolation {isolation!r} (use auto, {', '.join(MECHANISMS)})"
            )
        self.isolation = isolation
        self.unsafe_no_isolation = unsafe_no_isolation
        self.limits = limits or Limits()
        self.env_allow = env_allow

    @property
    def drops_privileges(self) -> bool:
        """Whether the runner runs as uid 65534 (root's mechanisms); in a user namespace it
        is the calling user, mapped to root there."""
        if self.unsafe_no_isolation or os.geteuid() != 0:
            return False
        return self.mechanism() != "userns"

    def mechanism(self) -> str | None:
        """The isolation that will be used (None in unsafe mode), or raise why there is none."""
        if self.unsafe_no_isolation:
            return None
        wanted: tuple[str, ...] = MECHANISMS if self.isolation == "auto" else (self.isolation,)
        if os.geteuid() == 0:
            wanted = tuple(m for m in wanted if m != "userns") or wanted
        else:
            wanted = tuple(m for m in wanted if m != "unshare") or wanted
        failures = []
        for mechanism in wanted:
            problem = _probe(mechanism, self.limits)
            if problem is None:
                return mechanism
            failures.append(f"{mechanism}: {problem}")
        raise SandboxUnavailable(
            "the process sandbox cannot isolate the SDK runner here ("
            + "; ".join(failures)
            + "). It needs new network, pid and mount namespaces and a private tmpfs on /tmp: "
            "install bubblewrap or util-linux (unshare, mount), enable user namespaces for "
            "non-root users, or use the docker sandbox; --unsafe-no-isolation is for "
            "development only"
        )

    def check(self) -> str:
        mechanism = self.mechanism()
        tools = ["prlimit"]
        if mechanism == "unshare" and self.drops_privileges:
            tools.append("setpriv")
        for tool in tools:
            if shutil.which(tool, path=SAFE_PATH) is None:
                raise SandboxUnavailable(f"{tool} (util-linux) not found: cannot sandbox")
        if mechanism is None:
            return "process sandbox WITHOUT isolation (unsafe, development only): rlimits only"
        who = f"uid {NOBODY}" if self.drops_privileges else "the calling user in a user namespace"
        private = ", ".join([PRIVATE_TMP, *_scratch_dirs()])
        return (
            f"process sandbox ({mechanism}: no network, own pid/mount/ipc namespaces, {who}, "
            f"private tmpfs on {private}, rlimits)"
        )

    def _limits_argv(self, language: str, max_run_time_ms: int) -> list[str]:
        lim = self.limits
        cpu = lim.cpu_seconds or max(1, -(-max_run_time_ms // 1000) + 1)
        space = lim.python_address_space if language == "python" else lim.node_address_space
        return ["prlimit", f"--cpu={cpu}", f"--as={space}", f"--nproc={lim.processes}",
                f"--fsize={lim.file_size}", f"--nofile={lim.open_files}", "--core=0",
                "--"]  # fmt: skip

    def _env(self, home: str) -> dict[str, str]:
        env = {
            "PATH": SAFE_PATH,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": home,
            "TMPDIR": home,
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONIOENCODING": "utf-8",
        }
        for name in self.env_allow:
            if name in os.environ and name not in env:
                env[name] = os.environ[name]
        return env

    def _unsafe_home(self, language: str) -> Path:
        """Without namespaces there is no private /tmp: a fresh folder of the host's, with a
        copy of the SDK, removed at close."""
        host_dir = Path(tempfile.mkdtemp(prefix=HOME_PREFIX))
        try:
            shutil.copytree(SDK_DIR / language, host_dir / "sdk",
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))  # fmt: skip
        except OSError as exc:
            shutil.rmtree(host_dir, ignore_errors=True)
            raise SandboxStartError(f"cannot prepare the sandbox directory: {exc}") from None
        return host_dir

    def start(self, spec: SandboxSpec) -> ProcessSandbox:
        if spec.language not in SUPPORTED_LANGUAGES:
            raise SandboxStartError(f"no SDK runner for language {spec.language!r}")
        self.check()
        mechanism = self.mechanism()
        drop = self.drops_privileges
        interpreter = _interpreter(spec.language, drop, private_tmp=mechanism is not None)
        host_dir: Path | None = None
        if mechanism is None:
            host_dir = self._unsafe_home(spec.language)
            home = str(host_dir)
        else:
            # Made inside the sandbox's own /tmp: the name only has to be unique there.
            home = f"{PRIVATE_TMP}/{HOME_PREFIX}{uuid.uuid4().hex[:12]}"
        sdk = f"{home}/sdk"
        if spec.language == "python":
            runner = [interpreter, "-I", "-S", "-B", f"{sdk}/runner.py"]
        else:
            runner = [interpreter, f"--max-old-space-size={self.limits.node_heap_mb}",
                      "--no-warnings", f"{sdk}/runner.js"]  # fmt: skip
        argv = self._limits_argv(spec.language, spec.max_run_time_ms) + runner
        if mechanism is not None:
            argv = _isolation_argv(mechanism, home, SDK_DIR / spec.language, self.limits,
                                   drop) + argv  # fmt: skip
        return ProcessSandbox(argv, self._env(home), home, host_dir, spec)
