"""A phase played by a forked copy of the worker: the gateway's share of a run on a second core.

A run with a patch plays two phases, each on its own runner. One thread of the worker can
answer both runners, but then it is the bottleneck: it does about three fifths of the run's
work (the gateway: decoding, checking, HMAC, ledger, encoding) while each runner waits for
its answers. A forked copy of the worker plays the baseline phase instead, with its own
runner, and the two phases each go at the speed of one gateway and one runner. On two
cores, over 8 pairs of 20,000-op runs (one thread, then a forked copy), the median pair
gained 17% operations per second with the node runner (5,920 against 5,243 ops/s, medians)
and 18% with python (5,458 against 4,758).

The child is the worker's own code (fork copies the process, nothing is loaded): it stays on
the trusted side, and nothing it reads from its runner reaches the parent except through the
checks of the session it runs. It sends back a ``ChildReport`` (pickled: only this module
writes that pipe, and only this process reads it), and never outlives the parent: it dies
with the thread that forked it (``PR_SET_PDEATHSIG``), which would otherwise leave it and its
runner waiting on each other for good after a ``kill -9`` of the worker.

Fork copies every thread's memory but runs only the calling thread. The child therefore
closes every descriptor but the ones it needs (another run's runner must see its input end
when that run closes it, not when this child exits), takes no lock another thread of the
worker may hold (no logging, no database, no imports), handles no signal the way the worker
does, and leaves with ``os._exit``.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from simcore.gateway.scoring import PhaseScore

COLLECT_TIMEOUT_S = 10.0
"""How long a child whose runner is gone may take to report before it is killed (it needs
milliseconds: scoring what it played and writing it)."""

_PR_SET_PDEATHSIG = 1
_READ_BYTES = 1 << 20

Outcome = Literal["done", "violation", "gone", "crashed"]


@dataclass(frozen=True, slots=True)
class ChildReport:
    """How the child's phase ended, and what the parent needs of it to score the run."""

    outcome: Outcome
    """``done``: played to the end; ``violation``: the runner broke the protocol (``detail``
    says how); ``gone``: the runner's output closed; ``crashed``: a bug in the child."""
    detail: str | None = None
    score: PhaseScore | None = None
    """The phase's score, over the ops it played (None when the child crashed)."""
    error_events: list[dict[str, Any]] = field(default_factory=list)


def _find_prctl() -> Callable[..., int] | None:
    # Looked up in the parent, at import: in the child, dlopen could wait for ever on a
    # loader lock that another thread of the worker held when it forked.
    try:
        return cast(Callable[..., int], ctypes.CDLL(None, use_errno=True).prctl)
    except (OSError, AttributeError):
        return None  # not Linux


_prctl = _find_prctl()


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when the thread that forked it ends; exit now if it has."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _default_signals() -> None:
    """Give back every signal the worker handles in Python to its default action.

    The child shares the worker's process group: a terminal resize (SIGWINCH in the
    dashboard's process), a Ctrl-C or a service manager's SIGTERM reaches it too, and the
    worker's handlers, written for the worker, would run in the middle of the phase. It also
    forgets the worker's wakeup descriptor, which it has closed."""
    try:
        signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for number in signal.valid_signals():
        try:
            if callable(signal.getsignal(number)):
                signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            pass


def _close_all_but(keep: Iterable[int]) -> None:
    """Close every descriptor from 3 up except ``keep`` (standard streams stay as they are)."""
    low = 3
    for fd in sorted(set(keep)):
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ForkedPhase:
    """``play`` run in a forked child of this process; ``collect`` gets what it reports.

    ``keep`` are the descriptors ``play`` needs (its runner's input and output). The child is
    reaped by ``collect``, whatever happens: call it on every path. Raises ``OSError`` when
    there is no process to spare, having left nothing open.
    """

    def __init__(self, play: Callable[[], ChildReport], keep: Iterable[int]) -> None:
        keep = tuple(keep)
        parent = os.getpid()
        read_end, write_end = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: never returns
            code = 0
            try:
                _die_with_parent(parent)
                _default_signals()
                _close_all_but((*keep, write_end))
                try:
                    report = play()
                except Exception as exc:  # our bug: the parent ends the run "error"
                    report = ChildReport("crashed", f"{type(exc).__name__}: {exc}")
                _write_all(write_end, pickle.dumps(report, pickle.HIGHEST_PROTOCOL))
            except BaseException:
                code = 1  # the parent reads no report: it says the child crashed
            finally:
                os._exit(code)
        os.close(write_end)
        self.pid = pid
        self._fd = read_end
        self._chunks: list[bytes] = []
        self._report: ChildReport | None = None

    def fileno(self) -> int:
        """Readable once the child has written its report (or died): poll it, then collect."""
        return self._fd

    def collect(self, timeout: float | None = None) -> ChildReport:
        """Wait for the child's report (at most ``timeout`` seconds, then kill it) and reap it.

        A child that dies without a report, or is killed for taking too long, reports
        ``crashed``. Idempotent: a second call returns the same report.
        """
        if self._report is not None:
            return self._report
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = select.poll()  # not select(): a busy worker's descriptors pass 1024
        poller.register(self._fd, select.POLLIN)
        try:
            while True:
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0 or not poller.poll(left * 1000):
                        os.kill(self.pid, signal.SIGKILL)
                        break
                chunk = os.read(self._fd, _READ_BYTES)
                if not chunk:
                    break
                self._chunks.append(chunk)
        finally:
            os.close(self._fd)
            _, status = os.waitpid(self.pid, 0)
        report = None
        if os.waitstatus_to_exitcode(status) == 0 and self._chunks:
            loaded = pickle.loads(b"".join(self._chunks))
            report = loaded if isinstance(loaded, ChildReport) else None
        self._chunks.clear()
        self._report = report or ChildReport(
            "crashed", f"the baseline's player ended without a report (wait status {status})"
        )
        return self._report
