"""The run log: a sandbox's stderr, read on a thread, cleaned and capped.

The runner's stderr is hostile like everything else it writes: lines are cut to a length,
control characters (terminal escapes that could repaint an operator's screen) are replaced,
and once the caps are reached one marker line is emitted and the rest is drained unread so
the runner never blocks on a full pipe.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from typing import IO

from simcore.sandbox.base import LogCallback

MAX_LOG_LINES = 20_000
MAX_LOG_BYTES = 2 * 1024 * 1024
MAX_LINE_CHARS = 2_000
TAIL_LINES = 20
TRUNCATED = f"[log truncated after {MAX_LOG_LINES} lines or {MAX_LOG_BYTES} bytes]"
"""The one line said where a run log stops."""

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_line(raw: bytes) -> str:
    text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
    text = _CONTROL.sub("\ufffd", text.replace("\t", "    "))
    return text[:MAX_LINE_CHARS]


class LogSink:
    def __init__(self, stream: IO[bytes], on_log: LogCallback | None) -> None:
        self._stream = stream
        self._on_log = on_log
        self.lines = 0
        self.bytes = 0
        self.truncated = False
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._thread = threading.Thread(target=self._pump, name="sandbox-log", daemon=True)
        self._thread.start()

    def _emit(self, line: str) -> None:
        self.tail.append(line)
        if self._on_log is not None:
            try:
                self._on_log(line)
            except Exception:
                # A broken log consumer must not stop the drain (the runner would block).
                self._on_log = None

    def _pump(self) -> None:
        readline = self._stream.readline
        while True:
            try:
                raw = readline(MAX_LINE_CHARS * 4)
            except (OSError, ValueError):
                return
            if not raw:
                return
            if self.truncated:
                continue
            self.lines += 1
            self.bytes += len(raw)
            if self.lines > MAX_LOG_LINES or self.bytes > MAX_LOG_BYTES:
                self.truncated = True
                self._emit(TRUNCATED)
                continue
            self._emit(clean_line(raw))

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()
