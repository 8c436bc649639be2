"""Wire protocol v2 between the worker (gateway) and the sandbox (SDK runner).

JSON lines over the sandbox's stdin/stdout; its stderr is the run log. ``docs/protocol.md``
is the reference. Everything the sandbox sends is hostile until proven otherwise: each line
is size-capped, parsed, and checked field by field before the gateway acts on it. The checks
are plain ``type() is`` tests on purpose: they run on every message of the hot path.

Lines are parsed by ``pydantic_core.from_json`` (already a dependency through pydantic): it
is about twice as fast as the standard library's decoder, it refuses invalid UTF-8 and lone
surrogates (so every string it returns can be encoded again, e.g. to check a signature), and
its nesting limit turns ``[[[[...`` into a plain parse error where the standard library's
recursive decoder raises ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from pydantic_core import from_json

PROTOCOL_VERSION = 2
MAX_LINE_BYTES = 64 * 1024

SANDBOX_TYPES = frozenset({"ready", "req", "sleep", "event", "done"})
EVENT_NAMES = frozenset({"patch_applied", "patch_error", "rollback", "rollback_error"})
METHODS = frozenset({"GET", "POST"})
MAX_HEADERS = 64
MAX_HEADER_BYTES = 8 * 1024
MAX_PATH = 2048
MAX_TIMEOUT_MS = 600_000
MAX_SLEEP_MS = 3_600_000
MAX_DETAIL = 500

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_encoder = json.JSONEncoder(separators=(",", ":"))


def _make_encode_json() -> Callable[[Any], str]:
    """``_encoder.encode`` without its set-up per call: ``JSONEncoder.encode`` builds a new C
    encoder for every value, which costs more than encoding a small message. The C encoder is
    made once, without cycle detection: it only ever sees the worker's own trees of dicts,
    lists, strings and numbers. Same bytes as ``_encoder.encode``."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # an interpreter without the C accelerator
        return _encoder.encode
    iterencode = make(None, _encoder.default, json.encoder.encode_basestring_ascii, None,
                      ":", ",", False, False, True)  # fmt: skip
    join = "".join

    def encode_json(value: Any) -> str:
        if type(value) is str:  # the C encoder wants a container at the top
            return _encoder.encode(value)
        return join(iterencode(value, 0))

    return encode_json


encode_json = _make_encode_json()
# JSON string literals, ASCII-only, as ``encode_json`` writes them (the C implementation).
encode_str: Callable[[str], str] = json.encoder.encode_basestring_ascii


class ProtocolViolation(Exception):
    """The sandbox broke the protocol; the run ends ``failed`` with this detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def encode(message: dict[str, Any]) -> bytes:
    """One worker -> sandbox line."""
    return (encode_json(message) + "\n").encode()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decode(line: bytes) -> dict[str, Any]:
    """Parse one sandbox line into a message with a known ``type``, or raise."""
    if len(line) - line.endswith(b"\n") > MAX_LINE_BYTES:
        raise ProtocolViolation(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        # Keys repeat on every message (type, op_id, ...): caching them saves allocations;
        # values are mostly unique and are not cached.
        message = from_json(line, cache_strings="keys")
    except ValueError:  # invalid JSON or UTF-8, trailing data, nesting too deep
        preview = line[:60].decode("utf-8", "replace").strip()
        raise ProtocolViolation(
            f"not a JSON protocol message: {preview!r} (patches must log with ctx.log, "
            "not print to stdout)"
        ) from None
    if type(message) is not dict:
        raise ProtocolViolation(f"message is not a JSON object: {_show(message)}")
    kind = message.get("type")
    if kind not in SANDBOX_TYPES:
        raise ProtocolViolation(f"unknown message type {_show(kind)}")
    return message


def need_str(message: dict[str, Any], field: str, limit: int = MAX_PATH) -> str:
    value = message.get(field)
    if type(value) is not str or len(value) > limit:
        raise ProtocolViolation(f"{message['type']}.{field} must be a string: {_show(value)}")
    return value


def need_int(message: dict[str, Any], field: str, lo: int, hi: int) -> int:
    value = message.get(field)
    if type(value) is not int or not lo <= value <= hi:
        raise ProtocolViolation(
            f"{message['type']}.{field} must be an integer in [{lo}, {hi}]: {_show(value)}"
        )
    return value


def need_method(message: dict[str, Any]) -> str:
    method = message.get("method")
    if method not in METHODS:
        raise ProtocolViolation(f"req.method {_show(method)} not supported")
    return str(method)


def need_headers(message: dict[str, Any]) -> dict[str, str]:
    headers = message.get("headers")
    if type(headers) is not dict or len(headers) > MAX_HEADERS:
        raise ProtocolViolation(f"req.headers must be an object of at most {MAX_HEADERS} entries")
    for key, value in headers.items():
        if type(value) is not str or len(key) + len(value) > MAX_HEADER_BYTES:
            raise ProtocolViolation(f"req.headers[{_show(key)}] must be a short string")
    return headers


def optional_str(message: dict[str, Any], field: str, limit: int) -> str | None:
    """A short text from the sandbox, cut to ``limit`` and with control characters replaced:
    it ends up in reasons and reports that people read in a terminal."""
    value = message.get(field)
    if value is None:
        return None
    if type(value) is not str:
        raise ProtocolViolation(f"{message['type']}.{field} must be a string or null")
    value = value[:limit]
    if value.isascii() and value.isprintable():  # the usual case: nothing to replace
        return value
    return _CONTROL.sub("\ufffd", value)
