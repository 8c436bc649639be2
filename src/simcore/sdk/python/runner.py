"""The sandbox side of protocol v1 for the Python SDK: JSON lines on stdin/stdout, log on stderr.

Run as ``python -I -S runner.py`` inside the sandbox. Standard library only; never imports
simcore. Anything unexpected from the worker ends the process with status 3 (the worker then
reports the run as failed): a confused runner must not guess.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import simpay

PROTOCOL = 1


class ProtocolError(Exception):
    pass


class StdioTransport:
    """``simpay.Transport`` over stdin/stdout (protocol messages) and stderr (log)."""

    def __init__(self) -> None:
        self._readline = sys.stdin.buffer.readline
        self._dumps = json.JSONEncoder(separators=(",", ":")).encode
        self._loads = json.JSONDecoder().decode

    def write(self, message: dict[str, Any]) -> None:
        data = (self._dumps(message) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]

    def read(self) -> dict[str, Any]:
        line = self._readline()
        if not line:
            raise EOFError
        message = self._loads(line.decode("utf-8"))
        if not isinstance(message, dict):
            raise ProtocolError("message is not an object")
        return message

    def _expect(self, kind: str, op_id: str) -> dict[str, Any]:
        message = self.read()
        if message.get("type") != kind or message.get("op_id") != op_id:
            raise ProtocolError(f"expected {kind} for {op_id}, got {message.get('type')}")
        return message

    def request(
        self, op_id: str, attempt: int, method: str, path: str, headers: dict[str, str],
        body: str, timeout_ms: int,
    ) -> dict[str, Any]:  # fmt: skip
        self.write({"type": "req", "op_id": op_id, "attempt": attempt, "method": method,
                    "path": path, "headers": headers, "body": body,
                    "timeout_ms": timeout_ms})  # fmt: skip
        return self._expect("resp", op_id)

    def sleep(self, op_id: str, ms: int) -> dict[str, Any]:
        self.write({"type": "sleep", "op_id": op_id, "ms": ms})
        return self._expect("slept", op_id)

    def event(self, name: str, op_id: str | None, detail: str | None) -> None:
        self.write({"type": "event", "name": name, "op_id": op_id, "detail": detail})

    def log(self, line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def serve(transport: StdioTransport) -> None:
    hello = transport.read()
    if hello.get("type") != "hello" or hello.get("protocol") != PROTOCOL:
        raise ProtocolError("expected hello for protocol 1")
    config = hello["config"]
    patch = simpay.Patch(hello.get("patch"))
    transport.write({"type": "ready", "protocol": PROTOCOL, "language": "python",
                     "sdk": f"simpay-python/{simpay.SDK_VERSION}",
                     "patch_error": patch.compile_error})  # fmt: skip
    client: simpay.Client | None = None
    last_clock = 0
    while True:
        message = transport.read()
        kind = message.get("type")
        if kind == "op" and client is not None:
            last_clock = int(message["now_ms"])
            transport.write(simpay.execute(client, message, patch))
        elif kind == "phase":
            client = simpay.Client(config, transport)
            patch.start_phase(bool(message.get("patch")))
            transport.log(f"phase {message.get('name')} started")
        elif kind == "bye":
            if message.get("rollback") and client is not None:
                patch.rollback(client, None, last_clock)
            return
        else:
            raise ProtocolError(f"unexpected {kind}")


def main() -> None:
    # print() in a patch must reach the protocol stream at once, as console.log does in node,
    # so the worker sees it (and rejects it) instead of it vanishing in a buffer.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    status = 0
    try:
        serve(StdioTransport())
    except EOFError:
        status = 0
    except (ProtocolError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"simpay runner: protocol error: {exc}\n")
        status = 3
    sys.stderr.flush()
    # os._exit: threads or handlers a patch left behind must not keep the runner alive.
    os._exit(status)


if __name__ == "__main__":
    main()
