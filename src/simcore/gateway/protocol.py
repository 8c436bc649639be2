"""Wire protocol v1 between the worker (gateway) and the sandbox (SDK runner).

JSON lines over the sandbox's stdin/stdout; its stderr is the run log. ``docs/protocol.md``
is the reference. Everything the sandbox sends is hostile until proven otherwise: each line
is size-capped, parsed, and checked field by field before the gateway acts on it. The checks
are plain ``type() is`` tests on purpose: they run on every message of the hot path.
"""

from __future__ import annotations

import json
import re
from typing import Any

PROTOCOL_VERSION = 1
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
encode_json = _encoder.encode
_raw_decode = json.JSONDecoder().raw_decode


class ProtocolViolation(Exception):
    """The sandbox broke the protocol; the run ends ``failed`` with this detail."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def encode(message: dict[str, Any]) -> bytes:
    """One worker -> sandbox line."""
    return (_encoder.encode(message) + "\n").encode()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def decode(line: bytes) -> dict[str, Any]:
    """Parse one sandbox line into a message with a known ``type``, or raise."""
    if len(line) - line.endswith(b"\n") > MAX_LINE_BYTES:
        raise ProtocolViolation(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        text = line.decode()
        # raw_decode skips the whitespace regexes of decode(); trailing text is checked below.
        message, end = _raw_decode(text)
        if end != len(text) and text[end:].strip():
            raise ValueError("trailing data")
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
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
    return _CONTROL.sub("\ufffd", value[:limit])
