"""The first snapshot, read by a forked child process while the dashboard loads.

A local start waits on two things: the first snapshot, which needs the engine and its
database driver (some 0.3 s of CPU to import, then a connection and six statements), and the
screens, which need Textual (about as much). In one process they take turns on one
interpreter lock; a child process forked at the very start reads the snapshot on the other
core, and pickles it back through a pipe. The dashboard's own process opens its session after
the first screen is drawn.

The child may also ``tell`` something early, before its answer: the dashboard learns that the
settings are good (and which mode they give) as soon as the child has read them, and leaves
pydantic and the settings to after its first screen.

The child reads, answers and leaves with ``os._exit``: none of the parent's exit handlers,
buffers or threads run twice. An answer that cannot be sent (an error that does not pickle,
a child that dies) is no answer, and the dashboard then reads in its own process, where it
reports what goes wrong.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from simcore.snapshot import DashboardSnapshot

_log = logging.getLogger(__name__)

Tell = Callable[[object], None]
"""Sends the child's early word; at most once, before the answer."""
Answer = tuple["DashboardSnapshot | None", "Exception | None"]
"""``(snapshot, None)``, ``(None, error)``, or ``(None, None)`` when there was nothing to read
(API mode: the child leaves that to the dashboard)."""


def can_fork() -> bool:
    """Only from a process with one thread: a fork copies locks that other threads may hold."""
    return hasattr(os, "fork") and threading.active_count() == 1


class ChildPrefetch:
    """A child process reading one snapshot; ``early()`` and ``answer()`` wait for what it
    sends."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self._pid = pid
        self._pipe: BinaryIO | None = os.fdopen(read_fd, "rb")
        self._early: object = None
        self._early_read = False
        self._answer: Answer | None = None
        self._lock = threading.Lock()

    @classmethod
    def fork(
        cls,
        read: Callable[[Tell], DashboardSnapshot | None],
        finish: Callable[[], None] | None = None,
    ) -> ChildPrefetch | None:
        """Fork a child that calls ``read(tell)``, sends its result, then calls ``finish``.

        None if no fork is possible. ``finish`` closes what ``read`` opened, after the answer
        is on its way: its connections end cleanly rather than reset.
        """
        if not can_fork():
            return None
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
        except OSError:  # no process left for this user, no memory: read in-process
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # pragma: no cover - the child; tests/tui/test_prefetch.py runs it
            os.close(read_fd)
            _serve(read, finish, write_fd)
        os.close(write_fd)
        return cls(pid, read_fd)

    def early(self) -> object:
        """What the child told before its answer, once told; None if it told nothing usable."""
        with self._lock:
            self._read_early()
            return self._early

    def answer(self) -> Answer:
        """What the child sent, once it is done; ``(None, None)`` if it sent nothing usable."""
        with self._lock:
            if self._answer is None:
                self._read_early()
                self._answer = self._receive()
            return self._answer

    def cancel(self) -> None:
        """The dashboard will not start: end the child, whatever it is doing, and reap it."""
        with self._lock:
            if self._pipe is not None:
                try:
                    os.kill(self._pid, signal.SIGKILL)
                except ProcessLookupError:  # pragma: no cover - reaped already: not our child
                    pass
                self._close()

    def _load(self) -> object:
        """The next frame; None when the child sent no more (killed, or cut short)."""
        if self._pipe is None:
            return None
        try:
            return pickle.load(self._pipe)
        except Exception:  # EOF, or a frame cut short: the child was killed while it wrote
            _log.debug("the prefetch child sent nothing more", exc_info=True)
            self._close()
            return None

    def _read_early(self) -> None:
        if not self._early_read:
            self._early_read = True
            self._early = self._load()

    def _receive(self) -> Answer:
        try:
            frame = self._load()
        finally:
            self._close()
        if not isinstance(frame, tuple) or len(frame) != 2:
            return None, None
        snapshot, error = frame
        return snapshot, error

    def _close(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None
            os.waitpid(self._pid, 0)


def _frame(value: object) -> bytes:
    """``value`` pickled, or b"" if it would not come back (an error that does not pickle)."""
    try:
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)
    except Exception:
        return b""
    return data


def _serve(  # pragma: no cover - in the child
    read: Callable[[Tell], DashboardSnapshot | None],
    finish: Callable[[], None] | None,
    write_fd: int,
) -> None:
    code = 0
    try:
        # Nothing of the child's may reach the terminal that the dashboard is about to own.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        with os.fdopen(write_fd, "wb") as pipe:
            told = False

            def tell(value: object) -> None:
                nonlocal told
                if not told:
                    told = True
                    pipe.write(_frame(value) or _frame(None))
                    pipe.flush()

            answer: Answer
            try:
                answer = (read(tell), None)
            except Exception as exc:
                answer = (None, exc)
            tell(None)  # nothing told: the early word is None
            pipe.write(_frame(answer))
        if finish is not None:
            finish()
    except BaseException:
        code = 1
    finally:
        os._exit(code)
