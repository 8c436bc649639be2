"""The sandbox side of protocol v2 for the Python SDK: JSON lines on stdin/stdout, log on stderr.

Run as ``python -I -S runner.py`` inside the sandbox. Standard library only; never imports
simcore. Anything unexpected from the worker ends the process with status 3 (the worker then
reports the run as failed): a confused runner must not guess.

Messages to the worker are collected and written in one go when the runner is about to wait
for the worker (and before it exits): a ``done`` and the first ``req`` of the next op then
cost one write and one wake-up of the worker instead of two. Protocol 1 is still spoken: it
is protocol 2 without ``next``, which the runner then simply never receives.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import simpay

PROTOCOLS = (1, 2)
_string = json.encoder.encode_basestring_ascii  # a JSON string literal, as the encoder writes it


class ProtocolError(Exception):
    pass


class StdioTransport:
    """``simpay.Transport`` over stdin/stdout (protocol messages) and stderr (log)."""

    def __init__(self) -> None:
        self._readline = sys.stdin.buffer.readline
        # Messages are trees of fresh dicts and lists: no cycle to look for.
        self._dumps = simpay.compact_json(ensure_ascii=True, check_circular=False)
        # The worker is trusted and writes no whitespace around its lines: raw_decode skips
        # the whitespace handling of decode().
        self._raw_decode = json.JSONDecoder().raw_decode
        self._out: list[str] = []
        self.upcoming: dict[str, Any] | None = None
        """The ``next`` op of the worker's last ``resp`` or ``slept``: the op to run as soon
        as the one in flight is done, without waiting for an ``op`` message."""

    def write(self, message: dict[str, Any]) -> None:
        self._out.append(self._dumps(message))

    def flush(self) -> None:
        if not self._out:
            return
        self._out.append("")
        data = "\n".join(self._out).encode("utf-8")
        self._out.clear()
        view = memoryview(data)
        while view:
            view = view[os.write(1, view) :]

    def read(self) -> dict[str, Any]:
        self.flush()
        line = self._readline()
        if not line:
            raise EOFError
        message = self._raw_decode(line.decode("utf-8"))[0]
        if type(message) is not dict:
            raise ProtocolError("message is not an object")
        return message

    def _expect(self, kind: str, op_id: str) -> dict[str, Any]:
        message = self.read()
        if message.get("type") != kind or message.get("op_id") != op_id:
            raise ProtocolError(f"expected {kind} for {op_id}, got {message.get('type')}")
        upcoming = message.get("next")
        if upcoming is not None and (type(upcoming) is not dict or upcoming.get("type") != "op"):
            raise ProtocolError(f"{kind}.next is not an op")
        self.upcoming = upcoming
        return message

    def request(
        self, op_id: str, attempt: int, method: str, path: str, headers: dict[str, str],
        body: str, timeout_ms: int,
    ) -> dict[str, Any]:  # fmt: skip
        # Written out by hand: one per request, and most of it is the body, escaped once.
        string = _string
        self._out.append(
            f'{{"type":"req","op_id":{string(op_id)},"attempt":{attempt},'
            f'"method":{string(method)},"path":{string(path)},"headers":{self._dumps(headers)},'
            f'"body":{string(body)},"timeout_ms":{timeout_ms}}}'
        )
        return self._expect("resp", op_id)

    def done(self, message: dict[str, Any]) -> None:
        """``simpay.execute``'s result, written out by hand: one per op."""
        string, payment_id, error = _string, message["payment_id"], message["error"]
        self._out.append(
            f'{{"type":"done","op_id":{string(message["op_id"])},'
            f'"ok":{"true" if message["ok"] else "false"},'
            f'"payment_id":{"null" if payment_id is None else string(payment_id)},'
            f'"error":{"null" if error is None else string(error)}}}'
        )

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
    protocol = hello.get("protocol")
    if hello.get("type") != "hello" or protocol not in PROTOCOLS:
        raise ProtocolError("expected hello for protocol 1 or 2")
    config = hello["config"]
    patch = simpay.Patch(hello.get("patch"))
    transport.write({"type": "ready", "protocol": protocol, "language": "python",
                     "sdk": f"simpay-python/{simpay.SDK_VERSION}",
                     "patch_error": patch.compile_error})  # fmt: skip
    client: simpay.Client | None = None
    last_clock = 0
    while True:
        message = transport.read()
        kind = message.get("type")
        if kind == "op" and client is not None:
            op: dict[str, Any] | None = message
            while op is not None:
                last_clock = int(op["now_ms"])
                transport.upcoming = None
                transport.done(simpay.execute(client, op, patch))
                op = transport.upcoming  # protocol 2: the next op came with the last answer
        elif kind == "phase":
            client = simpay.Client(config, transport)
            patch.start_phase(bool(message.get("patch")))
            transport.log(f"phase {message.get('name')} started")
        elif kind == "bye":
            if message.get("rollback") and client is not None:
                patch.rollback(client, None, last_clock)
            transport.flush()
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
