"""A scripted stand-in for a sandbox: plays back fixed runner lines, records what it is sent.

It implements the same ``simcore.sandbox.base.Sandbox`` protocol as the real backends (see
test_sandbox_process.py), which lets the validation tests put exact bytes in front of the
session without relying on an SDK to misbehave on cue.
"""

from __future__ import annotations

import json
from typing import Any

from simcore.gateway.protocol import PROTOCOL_VERSION
from simcore.sandbox.base import SandboxExit


def line(message: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(message, bytes):
        return message
    if isinstance(message, str):
        return message.encode() + b"\n"
    return json.dumps(message).encode() + b"\n"


READY = line(
    {"type": "ready", "protocol": PROTOCOL_VERSION, "language": "python", "patch_error": None}
)


class ScriptedSandbox:
    def __init__(self, *lines: bytes) -> None:
        self.script = list(lines)
        self.sent: list[dict[str, Any]] = []
        self.killed = False
        self.closed = False

    @property
    def deadline_hit(self) -> bool:
        return False

    def send(self, data: bytes) -> None:
        for raw in data.splitlines():
            self.sent.append(json.loads(raw))

    def recv(self) -> bytes:
        return self.script.pop(0) if self.script else b""

    def kill_after(self, seconds: float) -> None:
        pass

    def kill(self) -> None:
        self.killed = True

    def close(self) -> SandboxExit:
        self.closed = True
        return SandboxExit(
            exit_code=0, deadline_hit=False, log_lines=0, log_truncated=False, log_tail=()
        )
