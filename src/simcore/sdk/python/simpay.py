"""simpay: the reference Python SDK of the simulated payments API, with self-healing patches.

Standard library only, and it never imports simcore: it runs inside the sandbox, where the
only way out is a ``Transport`` (stdin/stdout JSON lines, see runner.py). The node SDK
(``../node/simpay.js``) mirrors this file line for line: both must send the same requests in
the same order for every patch, so that a patch gets the same verdict in every language.

Patch contract (docs/patches.md): ``patch_code`` is the body of a function of one argument,
``ctx``; it runs when an operation fails with an error whose code equals the patch's
``error_signature`` (at most once per operation). ``rollback_code`` is the body of a function
of ``ctx`` (client, now, log) that restores the client; it runs at once if the patch raises
(the patch is then disabled for the rest of the phase) and when the worker asks at the end of
a failed run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
import types
from collections.abc import Callable
from typing import Any, Protocol

SDK_VERSION = "1.0.0"
MAX_SLEEP_MS = 3_600_000
MAX_TIMEOUT_MS = 600_000


class SdkError(Exception):
    """Raised by the SDK into patch code when a rule of the contract is broken."""


class RetryBudgetExceeded(SdkError):
    pass


class DeadlineExceeded(SdkError):
    pass


class Transport(Protocol):
    """How the SDK reaches the (simulated) network; the runner implements it over stdio."""

    def request(
        self, op_id: str, attempt: int, method: str, path: str, headers: dict[str, str],
        body: str, timeout_ms: int,
    ) -> dict[str, Any]: ...  # fmt: skip

    def sleep(self, op_id: str, ms: int) -> dict[str, Any]: ...

    def event(self, name: str, op_id: str | None, detail: str | None) -> None: ...

    def log(self, line: str) -> None: ...


def sign(secret: str, timestamp: str, method: str, path: str, body: str) -> str:
    message = (timestamp + method + path + body).encode("utf-8")
    return hmac.digest(secret.encode("utf-8"), message, "sha256").hex()


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Signer:
    """``sign`` for one secret, its padded keys hashed once (RFC 2104): every request is
    signed, and setting the key up again each time costs more than the hashing."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, secret: str) -> None:
        key = secret.encode("utf-8")
        if len(key) > 64:  # the SHA-256 block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def sign(self, timestamp: str, method: str, path: str, body: str) -> str:
        inner = self._inner.copy()
        inner.update((timestamp + method + path + body).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def compact_json(*, ensure_ascii: bool, check_circular: bool) -> Callable[[Any], str]:
    """``JSONEncoder(separators=(",", ":"), ...).encode``, same bytes and same errors, without
    building a new C encoder on every call (``encode`` does): the runner encodes one or two
    messages per request, and a body is encoded for every request. With ``check_circular``
    (patch code builds the body) the memo is emptied when encoding fails half-way, as
    ``encode`` would start afresh."""
    encoder = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=ensure_ascii, check_circular=check_circular
    )
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    markers: dict[int, Any] | None = {} if check_circular else None
    strings = json.encoder
    string = strings.encode_basestring_ascii if ensure_ascii else strings.encode_basestring
    try:
        iterencode = make(markers, encoder.default, string, None, ":", ",", False, False, True)
    except TypeError:  # another signature in some other version
        return encoder.encode
    join = "".join

    def dumps(value: Any) -> str:
        if type(value) is not dict:
            return encoder.encode(value)
        try:
            return join(iterencode(value, 0))
        except BaseException:
            if markers is not None:
                markers.clear()
            raise

    return dumps


_body_json = compact_json(ensure_ascii=False, check_circular=True)


def describe(exc: BaseException) -> str:
    text = str(exc)
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:400]


class Response:
    """One answer: an HTTP response, or a request the client gave up on (``timed_out``)."""

    __slots__ = ("body", "elapsed_ms", "headers", "status", "timed_out")

    def __init__(self, message: dict[str, Any]) -> None:
        self.timed_out: bool = bool(message.get("timed_out"))
        self.status: int | None = None if self.timed_out else message.get("status")
        self.headers: dict[str, str] = message.get("headers") or {}
        body = message.get("body")
        self.body: dict[str, Any] = body if isinstance(body, dict) else {}
        self.elapsed_ms: int = message.get("elapsed_ms") or 0

    @property
    def ok(self) -> bool:
        return not self.timed_out and self.status is not None and 200 <= self.status < 300

    @property
    def error_code(self) -> str | None:
        if self.ok:
            return None
        if self.timed_out:
            return "timeout"
        error = self.body.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), str):
            return str(error["code"])
        return f"http_{self.status}"


def error_view(response: Response) -> types.SimpleNamespace | None:
    """``ctx.error``: the failure a patch reacts to (None once a retry succeeded)."""
    if response.ok:
        return None
    error = response.body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return types.SimpleNamespace(
        code=response.error_code,
        status=response.status,
        message=message if isinstance(message, str) else "",
        body=response.body,
        headers=response.headers,
        timed_out=response.timed_out,
    )


class Client:
    """The SDK client. ``state`` is what patches may change (timeout, clock offset)."""

    def __init__(self, config: dict[str, Any], transport: Transport) -> None:
        self.api_key_id = str(config["api_key_id"])
        self.secret = str(config["secret"])
        self.signer = Signer(self.secret)
        self.max_attempts = int(config["max_attempts"])
        self.transport = transport
        self.state = types.SimpleNamespace(
            timeout_ms=int(config["timeout_ms"]),
            clock_offset_ms=int(config.get("clock_offset_ms") or 0),
        )


class Operation:
    """One payment being created: its request, its attempts, its (virtual) clock."""

    def __init__(self, client: Client, message: dict[str, Any]) -> None:
        self.client = client
        self.op_id = str(message["op_id"])
        self.clock = int(message["now_ms"])
        self.deadline_at = self.clock + int(message["deadline_ms"])
        self.attempts = 0
        self.request = types.SimpleNamespace(
            method="POST",
            path="/v1/payments",
            headers={"Content-Type": "application/json", "Idempotency-Key": "idem_" + self.op_id},
            body=dict(message["payment"]),
        )

    def send(self) -> Response:
        client, request = self.client, self.request
        if self.attempts >= client.max_attempts:
            raise RetryBudgetExceeded(f"attempt budget of {client.max_attempts} exhausted")
        if self.clock >= self.deadline_at:
            raise DeadlineExceeded("the operation deadline has passed")
        timeout = client.state.timeout_ms
        if type(timeout) is not int or not 1 <= timeout <= MAX_TIMEOUT_MS:
            raise SdkError(f"client.timeout_ms must be an integer in [1, {MAX_TIMEOUT_MS}]")
        offset = client.state.clock_offset_ms
        if type(offset) is not int:
            raise SdkError("client.clock_offset_ms must be an integer")
        self.attempts += 1
        method, path = str(request.method), str(request.path)
        body = _body_json(request.body)
        stamp = str(self.clock + offset)
        headers = {str(k): str(v) for k, v in request.headers.items()}
        headers["X-Api-Key"] = client.api_key_id
        headers["X-Timestamp"] = stamp
        headers["X-Signature"] = client.signer.sign(stamp, method, path, body)
        message = client.transport.request(
            self.op_id, self.attempts, method, path, headers, body, timeout
        )
        self.clock = int(message["now_ms"])
        return Response(message)

    def sleep(self, ms: int) -> None:
        if type(ms) is not int or not 0 <= ms <= MAX_SLEEP_MS:
            raise SdkError(f"sleep takes an integer number of ms in [0, {MAX_SLEEP_MS}]")
        message = self.client.transport.sleep(self.op_id, ms)
        self.clock = int(message["now_ms"])


class Context:
    """``ctx``: what a patch sees and may do."""

    def __init__(self, operation: Operation, response: Response) -> None:
        self._operation = operation
        self.client = operation.client.state
        self.request = operation.request
        self.response = response
        self.error = error_view(response)
        self.op_id = operation.op_id
        self.max_attempts = operation.client.max_attempts

    @property
    def attempt(self) -> int:
        return self._operation.attempts

    def retry(self) -> Response:
        """Send ``ctx.request`` again, re-signed with the current clock and offset."""
        self.response = self._operation.send()
        self.error = error_view(self.response)
        return self.response

    def sleep(self, ms: int) -> None:
        """Wait ``ms`` milliseconds of virtual time."""
        self._operation.sleep(ms)

    def now(self) -> int:
        """The client host's clock (ms), without the client's clock offset."""
        return self._operation.clock

    def log(self, *parts: object) -> None:
        text = " ".join(str(p) for p in parts)
        self._operation.client.transport.log(f"[patch {self.op_id}] {text}")


class RollbackContext:
    """``ctx`` of rollback code: the client to restore, the clock, the log."""

    def __init__(self, client: Client, clock: int) -> None:
        self._client = client
        self._clock = clock
        self.client = client.state

    def now(self) -> int:
        return self._clock

    def log(self, *parts: object) -> None:
        self._client.transport.log("[rollback] " + " ".join(str(p) for p in parts))


def function_source(code: str, name: str) -> str:
    """``code`` as the body of ``def name(ctx)``: line N of the body is line N + 1 here."""
    return f"def {name}(ctx):\n" + textwrap.indent(code if code.strip() else "pass", "    ") + "\n"


def compile_body(code: str, name: str) -> Callable[[Any], Any]:
    """``code`` as the body of ``def name(ctx)``; raises SyntaxError like any Python code."""
    namespace: dict[str, Any] = {"__name__": "patch"}
    exec(compile(function_source(code, name), "<" + name + ">", "exec"), namespace)
    function: Callable[[Any], Any] = namespace[name]
    return function


class Patch:
    """A registry patch as the SDK runs it."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        self.signature: str | None = None
        self.function: Callable[[Any], Any] | None = None
        self.rollback_function: Callable[[Any], Any] | None = None
        self.compile_error: str | None = None
        self.active = False
        if spec is None:
            return
        self.signature = str(spec["error_signature"])
        for field, name in (("code", "patch"), ("rollback", "rollback")):
            try:
                function = compile_body(str(spec.get(field) or ""), name)
            except SyntaxError as exc:
                self.function = None
                where = f"line {(exc.lineno or 2) - 1}" + (
                    " of rollback" if field != "code" else ""
                )
                self.compile_error = f"SyntaxError: {exc.msg} ({where})"
                return
            except (MemoryError, RecursionError):
                # CPython's answer to deeply nested code, which no SyntaxError describes.
                self.function = None
                self.compile_error = "too deeply nested to compile" + (
                    " (rollback)" if field != "code" else ""
                )
                return
            if field == "code":
                self.function = function
            else:
                self.rollback_function = function

    def start_phase(self, enabled: bool) -> None:
        self.active = enabled and self.function is not None

    def run(self, operation: Operation, response: Response) -> Response:
        """Apply the patch to a failed operation; returns the operation's last response."""
        transport = operation.client.transport
        transport.event("patch_applied", operation.op_id, self.signature)
        transport.log(f"patch_applied op={operation.op_id} error={self.signature}")
        ctx = Context(operation, response)
        try:
            assert self.function is not None
            self.function(ctx)
        except (Exception, SystemExit) as exc:
            transport.event("patch_error", operation.op_id, describe(exc))
            transport.log(f"patch_error op={operation.op_id} {describe(exc)}")
            self.rollback(operation.client, operation.op_id, operation.clock)
            self.active = False
        return ctx.response

    def rollback(self, client: Client, op_id: str | None, clock: int) -> None:
        transport = client.transport
        try:
            if self.rollback_function is not None:
                self.rollback_function(RollbackContext(client, clock))
        except (Exception, SystemExit) as exc:
            transport.event("rollback_error", op_id, describe(exc))
            transport.log(f"rollback_error {describe(exc)}")
            return
        transport.event("rollback", op_id, "client restored")
        transport.log("rollback: patch disabled, client restored")


def execute(client: Client, message: dict[str, Any], patch: Patch) -> dict[str, Any]:
    """Run one operation to completion and return its ``done`` message."""
    operation = Operation(client, message)
    try:
        response = operation.send()
    except SdkError as exc:
        # A patch left the client unusable (say, timeout_ms = "10s"): the op fails, the
        # runner goes on, and the gateway scores the harm.
        client.transport.log(f"sdk_error op={operation.op_id} {describe(exc)}")
        return {"type": "done", "op_id": operation.op_id, "ok": False, "payment_id": None,
                "error": "sdk_error"}  # fmt: skip
    if not response.ok and patch.active and response.error_code == patch.signature:
        response = patch.run(operation, response)
    payment_id = response.body.get("id") if response.ok else None
    return {
        "type": "done",
        "op_id": operation.op_id,
        "ok": response.ok,
        "payment_id": payment_id if isinstance(payment_id, str) else None,
        "error": response.error_code,
    }


__all__: list[str] = [
    "Client", "Context", "DeadlineExceeded", "Operation", "Patch", "Response",
    "RetryBudgetExceeded", "SdkError", "Signer", "Transport", "execute", "sign",
]  # fmt: skip
