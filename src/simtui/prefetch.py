"""The first snapshot, read by a forked child process while the dashboard loads.

A local start waits on two things: the first snapshot, which needs the engine and its
database driver (some 0.3 s of CPU to import, then a connection and six statements), and the
screens, which need Textual (about as much). In one process they take turns on one
interpreter lock; a child process forked at the very start reads the snapshot on the other
core, and pickles it back through a pipe. The dashboard's own process opens its session after
the first screen is drawn.

The child reads, answers and leaves with ``os._exit``: none of the parent's exit handlers,
buffers or threads run twice. An answer that cannot be sent (an error that does not pickle,
a child that dies) is no answer, and the dashboard then reads in its own process, where it
reports what goes wrong.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simcore.snapshot import DashboardSnapshot

_log = logging.getLogger(__name__)

Answer = tuple["DashboardSnapshot | None", "Exception | None"]
"""``(snapshot, None)``, ``(None, error)``, or ``(None, None)`` when there was nothing to read
(API mode: the child leaves that to the dashboard)."""


def can_fork() -> bool:
    """Only from a process with one thread: a fork copies locks that other threads may hold."""
    return hasattr(os, "fork") and threading.active_count() == 1


class ChildPrefetch:
    """A child process reading one snapshot; ``answer()`` waits for what it sends."""

    def __init__(self, pid: int, read_fd: int) -> None:
        self._pid = pid
        self._read_fd = read_fd
        self._answer: Answer | None = None
        self._lock = threading.Lock()

    @classmethod
    def fork(
        cls,
        read: Callable[[], DashboardSnapshot | None],
        finish: Callable[[], None] | None = None,
    ) -> ChildPrefetch | None:
        """Fork a child that calls ``read``, sends its result, then calls ``finish``.

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

    def answer(self) -> Answer:
        """What the child sent, once it is done; ``(None, None)`` if it sent nothing usable."""
        with self._lock:
            if self._answer is None:
                self._answer = self._receive()
            return self._answer

    def _receive(self) -> Answer:
        try:
            with os.fdopen(self._read_fd, "rb") as pipe:
                data = pipe.read()
        finally:
            os.waitpid(self._pid, 0)
        if not data:
            return None, None
        try:
            snapshot, error = pickle.loads(data)
        except Exception:  # cut short: the child was killed while it wrote
            _log.debug("the prefetch child's answer could not be read", exc_info=True)
            return None, None
        return snapshot, error


def _serve(  # pragma: no cover - in the child
    read: Callable[[], DashboardSnapshot | None],
    finish: Callable[[], None] | None,
    write_fd: int,
) -> None:
    code = 0
    try:
        # Nothing of the child's may reach the terminal that the dashboard is about to own.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        answer: Answer
        try:
            answer = (read(), None)
        except Exception as exc:
            answer = (None, exc)
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            pickle.loads(data)
        except Exception:  # an error that cannot come back is not sent
            data = b""
        with os.fdopen(write_fd, "wb") as pipe:
            pipe.write(data)
        if finish is not None:
            finish()
    except BaseException:
        code = 1
    finally:
        os._exit(code)
